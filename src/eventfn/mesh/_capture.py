"""The webhook capture endpoint of `eventfn dev`: a stand-in for Teams and Slack.

A threaded loopback HTTP server that accepts JSON POSTs on `/teams` and `/slack`, keeps every
message per channel, optionally appends it to a JSON-lines file, and reports a one-line summary
of each through a callback (the mesh prints it). It answers like the real services: Teams
(Workflows webhooks) 202 with an empty body, Slack 200 `ok`; a body that is not a JSON object
gets Slack's 400 `invalid_payload`, an unknown path 404. `launch_env()` gives the notifier the
webhook URLs to use instead of its Secrets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eventfn.mesh._supervisor import LOOPBACK, LaunchSpec

CHANNELS = ("teams", "slack")
ENV_TEAMS_URL = "NOTIFIER_TEAMS_WEBHOOK_URL"
ENV_SLACK_URL = "NOTIFIER_SLACK_WEBHOOK_URL"
CHANNEL_ENV = {"teams": ENV_TEAMS_URL, "slack": ENV_SLACK_URL}
NOTIFIER_FUNCTION = "notifier"
MAX_BODY_BYTES = 1024 * 1024
SUMMARY_LENGTH = 120
_ANSWERS = {"teams": (202, b""), "slack": (200, b"ok")}


@dataclass(frozen=True)
class CapturedMessage:
    """One message received on a channel."""

    channel: str
    at: float
    body: dict[str, Any]

    @property
    def title(self) -> str:
        """The message's headline: the Adaptive Card's first TextBlock, or Slack's text."""
        return message_title(self.channel, self.body)

    def line(self) -> str:
        """The one-line summary the mesh prints."""
        return f"✉ {self.channel:<5} {self.title}"

    def record(self) -> dict[str, Any]:
        """The JSON record (`kind: notification` in `eventfn dev --json`)."""
        return {"channel": self.channel, "at": self.at, "title": self.title, "body": self.body}


def message_title(channel: str, body: Mapping[str, Any]) -> str:
    """A short headline of a Teams or Slack payload ("?" when it has none)."""
    title: Any = None
    if channel == "teams":
        for attachment in body.get("attachments") or []:
            content = attachment.get("content") if isinstance(attachment, dict) else None
            blocks = content.get("body") if isinstance(content, dict) else None
            for block in blocks or []:
                if isinstance(block, dict) and block.get("type") == "TextBlock":
                    title = block.get("text")
                    break
            if title is not None:
                break
    else:
        title = body.get("text")
    text = " ".join(str(title).split()) if title else "?"
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


@dataclass
class WebhookCapture:
    """The capture server; `start()` returns its base URL, `stop()` shuts it down."""

    on_message: Callable[[CapturedMessage], None] | None = None
    log_path: Path | None = None
    host: str = LOOPBACK
    port: int = 0
    _messages: list[CapturedMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no path); empty before `start()`."""
        if self._server is None:
            return ""
        return f"http://{self.host}:{self._server.server_address[1]}"

    def channel_url(self, channel: str) -> str:
        """The webhook URL of one channel."""
        return f"{self.url}/{channel}"

    def start(self) -> str:
        """Listen on a loopback port; returns the base URL."""
        if self._server is not None:
            return self.url
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="webhook-capture",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening (safe to call twice)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def messages(self, channel: str | None = None) -> list[CapturedMessage]:
        """What was received so far (of one channel, or all), oldest first."""
        with self._lock:
            return [m for m in self._messages if channel is None or m.channel == channel]

    def env(self) -> dict[str, str]:
        """The notifier's webhook variables pointing here."""
        return {CHANNEL_ENV[channel]: self.channel_url(channel) for channel in CHANNELS}

    def receive(self, channel: str, body: dict[str, Any]) -> CapturedMessage:
        """Record one message (called by the HTTP handler)."""
        message = CapturedMessage(channel, time.time(), body)
        with self._lock:
            self._messages.append(message)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                line = json.dumps(message.record(), ensure_ascii=False)
                with self.log_path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
        if self.on_message is not None:
            self.on_message(message)
        return message


def _handler_class(capture: WebhookCapture) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            channel = self.path.split("?", 1)[0].strip("/")
            if channel not in CHANNELS:
                self._answer(404, b"no such webhook")
                return
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, b"too large")
                return
            try:
                body = json.loads(self.rfile.read(length))
            except (ValueError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                self._answer(400, b"invalid_payload")
                return
            capture.receive(channel, body)
            self._answer(*_ANSWERS[channel])

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def with_capture_env(
    launches: Mapping[str, LaunchSpec], capture: WebhookCapture
) -> dict[str, LaunchSpec]:
    """The launch specs with the webhook URLs of every notifier process (a Service running the
    notifier function, or one whose env names a webhook variable) pointing at `capture`."""
    names = set(CHANNEL_ENV.values())
    updated: dict[str, LaunchSpec] = {}
    for name, spec in launches.items():
        if spec.function == NOTIFIER_FUNCTION or names & set(spec.env):
            env = {**spec.env, **capture.env()}
            updated[name] = LaunchSpec(spec.service, spec.function, env, spec.min_scale)
        else:
            updated[name] = spec
    return updated
