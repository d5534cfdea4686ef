"""echo: the smallest real eventfn function.

Consumes `eventfn.echo.requested.v1`, records the message in the SQL store inside the event's
transaction (so a redelivered event never records twice), emits `eventfn.echo.recorded.v1`
to the broker and replies with `eventfn.echo.replied.v1`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import insert

from eventfn import App, Context, Event, Reply
from eventfn._tables import echo_messages

app = App("echo")


@app.on("eventfn.echo.requested.v1", reply_type="eventfn.echo.replied.v1")
def echo(event: Event, ctx: Context) -> Reply:
    """Echo the message back, `repeat` times."""
    data: dict[str, Any] = event.data
    message = " ".join([data["message"]] * int(data.get("repeat", 1)))
    message_id = hashlib.sha256(f"{event.source}\x1f{event.id}".encode()).hexdigest()[:32]
    if ctx.tx is not None:
        ctx.tx.execute(
            insert(echo_messages).values(
                message_id=message_id,
                source_event=f"{event.source}/{event.id}"[:512],
                message=message,
                length=len(message),
                received_at=event.time or "",
            )
        )
    ctx.emit(
        "eventfn.echo.recorded.v1",
        {"message_id": message_id, "source_event": f"{event.source}/{event.id}"},
        subject=event.subject,
    )
    return Reply({"message": message, "length": len(message), "received_at": _now()})


def _now() -> str:
    from eventfn._event import utc_now_rfc3339

    return utc_now_rfc3339()
