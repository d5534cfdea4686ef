"""Loopback stand-ins the function tests serve against: a recording HTTP sink (the broker, a
subscriber) and a real S3 API (moto's server).

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3

from eventfn import Event
from eventfn._codec import decode_http

BROKER_PATH = "/eventfn/default"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """`handler` served on a loopback port (yielded) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Sink:
    """A loopback HTTP server that records every POST and answers `statuses` in turn, then
    `default`."""

    url: str = ""
    default: int = 202
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self, type_: str | None = None) -> list[Event]:
        decoded = [decode_http(headers, body) for headers, body in list(self.received)]
        return [event for event in decoded if type_ is None or event.type == type_]


@contextmanager
def sink_server(default: int = 202, path: str = BROKER_PATH) -> Iterator[Sink]:
    """A recording Sink whose URL ends in `path` (by default the broker's)."""
    state = Sink(default=default)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else state.default
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    with serving(Handler) as port:
        state.url = f"http://127.0.0.1:{port}{path}"
        yield state


@contextmanager
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on a loopback port, emptied first; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        # every server of this process shares moto's in-memory store: start from an empty one
        reset = urllib3.request("POST", f"{endpoint}/moto-api/reset", timeout=10.0)
        assert reset.status == 200, reset.data
        yield endpoint
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
