"""Fixtures of the notifier tests: a scripted loopback webhook, and notifier posting to it.

Puts this folder at the end of sys.path (where its modules shadow nothing) so that the tests
import `notifier_testing` by name, run from the root or on this folder alone.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent))
from notifier_testing import Served, Webhook, serving


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.received.append((self.path, headers, body))
            queued = state.script.get(self.path) or []
            status, extra = queued.pop(0) if queued else (200, {})
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook) -> Iterator[Served]:
    with serving(tmp_path, monkeypatch, webhook) as handle:
        yield handle
