"""Helpers shared by the broker tests: a scriptable loopback subscriber and a clock driver.

Imported by name (tests/conftest.py puts this directory on sys.path).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")
WAIT = 10.0  # generous bound for anything a test waits on; never a sleep


@dataclass(frozen=True)
class Request:
    """One request a Subscriber received."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # the broker clock's time when it arrived

    @property
    def ce(self) -> dict[str, str]:
        """The CloudEvents binary-mode attributes (`ce-` stripped)."""
        return {k[3:]: v for k, v in self.headers.items() if k.startswith("ce-")}


Answer = tuple[int, Mapping[str, str], bytes]
Script = Callable[[Request, int], Answer]  # (request, zero-based call number) -> answer


def no_content(request: Request, call: int) -> Answer:
    return 204, {}, b""


@dataclass
class Subscriber:
    """A threaded loopback HTTP/1.1 server that records requests and answers from a script."""

    script: Script = no_content
    now: Callable[[], float] = lambda: 0.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self.release = threading.Event()  # for scripts that stall until the test lets them go
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.path, headers, body, recorder.now())
                with recorder._changed:
                    call = len(recorder.requests)
                    recorder.requests.append(request)
                    recorder._changed.notify_all()
                status, answer_headers, answer = recorder.script(request, call)
                try:
                    self.send_response(status)
                    for name, value in answer_headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the caller gave up (timeout, killed broker)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        """True once `predicate()` holds (checked whenever a request arrives)."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def drive(broker: Any, clock: Any, limit: int = 1000) -> int:
    """Run every scheduled delivery of `broker` by advancing its ManualClock; steps taken."""
    for step in range(limit):
        due = broker.wait_quiet(WAIT)
        if due is None:
            return step
        clock.advance_to(due)
    raise AssertionError("deliveries never settled")


def binary_headers(event_type: str, event_id: str, **extra: str) -> dict[str, str]:
    """Minimal binary-mode headers of a JSON CloudEvent."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/mesh",
        "ce-type": event_type,
        "content-type": "application/json",
    }
    headers.update(extra)
    return headers
