"""The benchmark's request: a binary-mode CloudEvent with small JSON data, unique id per call."""

from __future__ import annotations

import http.client
import json

EVENT_TYPE = "bench.echo.requested.v1"
REPLY_TYPE = "bench.echo.replied.v1"
SOURCE = "/bench/load"
TIME = "2026-01-01T00:00:00Z"
DATA = {"message": "hello, bench", "count": 3, "tags": ["a", "b"]}
BODY = json.dumps(DATA, separators=(",", ":")).encode()
INVALID_JSON_BODY = b'{"message": "unterminated'


def event_headers(event_id: str) -> dict[str, str]:
    """The binary-mode headers of one request (content-length not included)."""
    return {
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": SOURCE,
        "ce-id": event_id,
        "ce-time": TIME,
        "content-type": "application/json",
    }


def raw_request(event_id: str, host: str = "127.0.0.1", body: bytes = BODY) -> bytes:
    """The full HTTP/1.1 request bytes (keep-alive) for the asyncio load client."""
    lines = ["POST / HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in event_headers(event_id).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post_event(port: int, event_id: str, body: bytes = BODY, timeout: float = 5.0) -> int:
    """POST one event to 127.0.0.1:`port` on a fresh connection; the HTTP status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/", body=body, headers=event_headers(event_id))
        response = connection.getresponse()
        response.read()
        return int(response.status)
    finally:
        connection.close()
