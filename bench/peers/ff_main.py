"""Google functions-framework peer (runs in bench/.venvs/ff, cloudevents 1.x).

`echo` is the `--signature-type cloudevent` function: functions-framework ignores its return
value and always answers 200 "OK", so the reply event is built and encoded (the same work as
the other peers) but cannot be sent back. `echo_http` (`--signature-type http`) is the shape a
functions-framework user needs to actually reply with a CloudEvent.
"""

from __future__ import annotations

import uuid
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent, from_http, to_binary

REPLY_TYPE = "bench.echo.replied.v1"
SOURCE = "/bench/functions-framework"


def _reply(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    reply = CloudEvent(
        {"type": REPLY_TYPE, "source": SOURCE, "id": str(uuid.uuid4())},
        event.data,
    )
    headers, body = to_binary(reply)
    return dict(headers), bytes(body)


@functions_framework.cloud_event
def echo(event: CloudEvent) -> None:
    """Build the reply event; functions-framework answers 200 "OK" regardless."""
    _reply(event)


@functions_framework.http
def echo_http(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Parse the request as a CloudEvent and reply with a binary-mode CloudEvent."""
    event = from_http(request.headers, request.get_data())
    headers, body = _reply(event)
    return body, 200, headers
