"""`eventfn invoke`: send one CloudEvent to a URL or to a function run in-process."""

from __future__ import annotations

import json
from typing import Any

import urllib3

from eventfn._codec import decode_http, encode_binary, encode_structured
from eventfn._errors import EventfnError
from eventfn._event import Event


def invoke(
    target: str,
    *,
    event_type: str,
    data: Any = None,
    source: str = "/eventfn/cli",
    subject: str | None = None,
    event_id: str | None = None,
    structured: bool = False,
) -> tuple[int, str]:
    """Send the event; return the HTTP status and a printable description of the answer."""
    extra: dict[str, Any] = {"subject": subject}
    if event_id:
        extra["id"] = event_id
    event = Event.new(event_type, source, data, **extra)
    headers, body = encode_structured(event) if structured else encode_binary(event)
    if target.startswith(("http://", "https://")):
        status, reply_headers, reply_body = _post(target, headers, body)
    else:
        status, reply_headers, reply_body = _in_process(target, headers, body)
    return status, describe(status, reply_headers, reply_body)


def describe(status: int, headers: dict[str, str], body: bytes) -> str:
    """Status line plus the reply event (attributes and data) or the problem body."""
    lines = [f"HTTP {status}"]
    lowered = {k.lower(): v for k, v in headers.items()}
    if any(k.startswith("ce-") for k in lowered):
        try:
            reply = decode_http(lowered, body)
        except EventfnError:
            lines.append(body.decode(errors="replace"))
            return "\n".join(lines)
        document = {**reply.attributes(), "data": _printable(reply.data)}
        lines.append(json.dumps(document, indent=2, ensure_ascii=False))
    elif body:
        lines.append(body.decode(errors="replace"))
    return "\n".join(lines)


def _printable(data: Any) -> Any:
    if isinstance(data, bytes):
        return f"<{len(data)} bytes>"
    return data


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    response = urllib3.request("POST", url, body=body, headers=headers, timeout=30.0)
    return int(response.status), dict(response.headers), bytes(response.data)


def _in_process(
    function: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    from eventfn._factory import create_app

    wsgi = create_app(function)
    try:
        response = wsgi.test_client().post("/", data=body, headers=headers)
        return response.status_code, dict(response.headers), response.get_data()
    finally:
        wsgi.close()
