"""The broker's keep-alive HTTP client against a real loopback HTTP/1.1 server.

The server's behaviour per request is scripted: answer and keep the connection, answer with
`Connection: close` (gunicorn's sync worker), answer and then close silently (a keep-alive
timeout on the server side), drop the request unanswered, hold it until released, or frame the
answer differently (chunked, until the connection closes, after a `100 Continue`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eventfn.mesh._sender import Sender

WAIT = 10.0
KEEP, CLOSE, SILENT_CLOSE, DROP, HOLD = "keep", "close", "silent-close", "drop", "hold"
CHUNKED, UNTIL_CLOSE, INTERIM = "chunked", "until-close", "interim"
ANSWER = b"ok"


@dataclass
class Server:
    """Records (connection number, body) per request; `script(n)` picks the behaviour."""

    script: Callable[[int], str] = lambda n: KEEP
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        recorder = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with lock:
                    recorder.connections += 1
                    self.number = recorder.connections

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with lock:
                    call = len(recorder.requests)
                    recorder.requests.append((self.number, body))
                behaviour = recorder.script(call)
                recorder.arrived.set()
                if behaviour == DROP:
                    self.close_connection = True
                    return
                if behaviour == HOLD:
                    recorder.release.wait(WAIT)
                if behaviour == INTERIM:
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n")
                self.send_response(200)
                self.send_header("ce-id", body.decode())
                if behaviour == CHUNKED:
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"1;ext=1\r\no\r\n1\r\nk\r\n0\r\nx-trailer: 1\r\n\r\n")
                    return
                if behaviour != UNTIL_CLOSE:
                    self.send_header("content-length", str(len(ANSWER)))
                if behaviour == CLOSE:
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(ANSWER)
                self.close_connection = behaviour in (CLOSE, SILENT_CLOSE, UNTIL_CLOSE)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/path?q=1"

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def sender() -> Iterator[Sender]:
    client = Sender()
    yield client
    client.close()


def serve(script: Callable[[int], str]) -> Server:
    return Server(script)


def post(sender: Sender, server: Server, body: bytes, timeout: float = WAIT) -> int | None:
    return sender.post(server.url, {"ce-id": body.decode()}, body, timeout).status


def test_requests_of_one_thread_share_a_keep_alive_connection(sender: Sender) -> None:
    server = serve(lambda n: KEEP)
    try:
        assert [post(sender, server, b"%d" % n) for n in range(3)] == [200, 200, 200]
        assert server.connections == 1
        assert [body for _, body in server.requests] == [b"0", b"1", b"2"]
    finally:
        server.close()


def test_connection_close_answers_get_a_new_connection_each(sender: Sender) -> None:
    server = serve(lambda n: CLOSE)  # what gunicorn's sync worker does
    try:
        assert [post(sender, server, b"%d" % n) for n in range(3)] == [200, 200, 200]
        assert server.connections == 3 and len(server.requests) == 3
    finally:
        server.close()


def test_a_connection_the_server_closed_while_idle_is_replaced(sender: Sender) -> None:
    server = serve(lambda n: SILENT_CLOSE)  # a keep-alive timeout: closed without saying so
    try:
        assert [post(sender, server, b"%d" % n) for n in range(3)] == [200, 200, 200]
        assert server.requests == [(1, b"0"), (2, b"1"), (3, b"2")]  # each sent once
    finally:
        server.close()


def test_a_request_lost_on_a_reused_connection_is_sent_once_more(sender: Sender) -> None:
    server = serve(lambda n: DROP if n == 1 else KEEP)
    try:
        assert post(sender, server, b"a") == 200
        assert post(sender, server, b"b") == 200  # dropped on connection 1, answered on 2
        assert server.requests == [(1, b"a"), (1, b"b"), (2, b"b")]  # at-least-once
    finally:
        server.close()


def test_a_request_lost_on_a_fresh_connection_is_a_network_error(sender: Sender) -> None:
    server = serve(lambda n: DROP)
    try:
        attempt = sender.post(server.url, {}, b"x", WAIT)
        assert attempt.status is None and attempt.error == "ClosedWithoutAnswer"
        assert len(server.requests) == 1
    finally:
        server.close()


def test_the_timeout_bounds_the_whole_request(sender: Sender) -> None:
    server = serve(lambda n: HOLD)
    try:
        started = time.monotonic()
        attempt = sender.post(server.url, {}, b"x", 0.3)
        assert attempt.status is None and attempt.error == "TimeoutError"
        assert 0.3 <= time.monotonic() - started < WAIT
    finally:
        server.close()


def test_abort_cuts_requests_in_flight_and_refuses_new_ones(sender: Sender) -> None:
    server = serve(lambda n: HOLD)
    results: list[int | None] = []
    worker = threading.Thread(target=lambda: results.append(post(sender, server, b"x")))
    try:
        worker.start()
        assert server.arrived.wait(WAIT)
        sender.abort()
        worker.join(WAIT)
        assert not worker.is_alive() and results == [None]
        assert sender.post(server.url, {}, b"y", WAIT).error == "Aborted"
        assert len(server.requests) == 1
    finally:
        server.close()


@pytest.mark.parametrize("framing", [CHUNKED, UNTIL_CLOSE, INTERIM])
def test_every_body_framing_is_read(sender: Sender, framing: str) -> None:
    server = serve(lambda n: framing)
    try:
        for n in range(2):
            attempt = sender.post(server.url, {"ce-id": str(n)}, b"%d" % n, WAIT)
            assert (attempt.status, attempt.body, attempt.headers["ce-id"]) == (200, ANSWER, str(n))
        expected = 2 if framing == UNTIL_CLOSE else 1  # a body ending at EOF ends its connection
        assert server.connections == expected
    finally:
        server.close()


def test_a_header_with_a_line_break_is_not_sent(sender: Sender) -> None:
    server = serve(lambda n: KEEP)
    try:
        attempt = sender.post(server.url, {"ce-id": "a\r\nx-injected: 1"}, b"x", WAIT)
        assert attempt.status is None and attempt.error == "ValueError"
        assert server.requests == []
    finally:
        server.close()


def test_a_url_that_is_not_http_is_a_failed_attempt(sender: Sender) -> None:
    attempt = sender.post("ftp://127.0.0.1/x", {}, b"", 1.0)
    assert attempt.status is None and attempt.error == "ValueError"
