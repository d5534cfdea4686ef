"""The practical limit: a bare WSGI callable (gunicorn, 1 sync worker) doing the minimum.

It checks the required ce- headers, parses the JSON data, and replies with a binary-mode
CloudEvent of another type carrying the same data. No framework, no SDK.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

REPLY_TYPE = "bench.echo.replied.v1"
SOURCE = "/bench/raw-wsgi"
_REQUIRED = ("HTTP_CE_ID", "HTTP_CE_SOURCE", "HTTP_CE_TYPE", "HTTP_CE_SPECVERSION")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _answer(start: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
    start(status, [("content-type", "text/plain"), ("content-length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Echo a binary-mode CloudEvent."""
    if environ.get("REQUEST_METHOD") != "POST":
        return _answer(start_response, "405 Method Not Allowed", b"")
    if any(name not in environ for name in _REQUIRED):
        return _answer(start_response, "400 Bad Request", b"missing ce- headers")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        data = json.loads(environ["wsgi.input"].read(length)) if length else None
    except ValueError:
        return _answer(start_response, "400 Bad Request", b"data is not JSON")
    body = json.dumps(data).encode()
    start_response(
        "200 OK",
        [
            ("ce-specversion", "1.0"),
            ("ce-type", REPLY_TYPE),
            ("ce-source", SOURCE),
            ("ce-id", "reply-" + environ["HTTP_CE_ID"]),
            ("ce-time", datetime.now(UTC).isoformat()),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ],
    )
    return [body]
