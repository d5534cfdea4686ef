"""Fixtures for driving real function folders through the WSGI test client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary, encode_structured
from eventfn._tracing import Tracer
from eventfn._wsgi import FunctionWSGI

ROOT = Path(__file__).resolve().parents[2]
MODES = ("binary", "structured")


@dataclass
class Sink:
    """A loopback HTTP server standing in for the broker: records what it receives."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def sink() -> Iterator[Sink]:
    state = Sink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 202
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/eventfn/default"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def settings_for(tmp_path: Path, sink: Sink | None, **overrides: object) -> Settings:
    base = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state",
        sink=sink.url if sink else None,
    )
    return base.with_overrides(**overrides)


@pytest.fixture
def echo_wsgi(tmp_path: Path, sink: Sink) -> Iterator[FunctionWSGI]:
    wsgi = create_app(
        "echo",
        settings=settings_for(tmp_path, sink),
        tracer=Tracer("echo", enabled=False),
        env={},
    )
    yield wsgi
    wsgi.close()


@pytest.fixture
def client(echo_wsgi: FunctionWSGI) -> Client:
    return echo_wsgi.test_client()


def encode(event: Event, mode: str) -> tuple[dict[str, str], bytes]:
    return encode_binary(event) if mode == "binary" else encode_structured(event)


def post(client: Client, event: Event, mode: str) -> TestResponse:
    headers, body = encode(event, mode)
    return client.post("/", data=body, headers=headers)


def problem(response: TestResponse) -> dict[str, object]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = json.loads(response.get_data())
    return body


def echo_event(message: object = "hello", **attrs: object) -> Event:
    data = {"message": message}
    return Event.new("eventfn.echo.requested.v1", "/tests/echo", data, **attrs)
