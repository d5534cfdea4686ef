"""Knative func-python peer (runs in bench/.venvs/func): the `cloudevents` template shape.

`new()` returns the function instance; its `handle(scope, receive, send)` finds the decoded
event in `scope["event"]` and replies with `send.binary(...)`. Served by hypercorn on
LISTEN_ADDRESS, exactly as the template's generated `main` does.
"""

from __future__ import annotations

import uuid
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from func_python.cloudevent import serve

REPLY_TYPE = "bench.echo.replied.v1"
SOURCE = "/bench/func-python"


class Function:
    """Echo the incoming data as a reply of another type."""

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        event = scope["event"]
        reply = CloudEvent(
            attributes={"type": REPLY_TYPE, "source": SOURCE, "id": str(uuid.uuid4())},
            data=event.get_data(),
        )
        await send.binary(reply)


def new() -> Function:
    """The template's constructor."""
    return Function()


if __name__ == "__main__":
    serve(new)
