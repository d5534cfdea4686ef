"""dlq-handler: the dead-letter sink of every Trigger.

Knative re-sends an event that a subscriber finally refused (or that never got through) to
this function, in binary mode and with `knativeerrordest` / `knativeerrorcode` /
`knativeerrordata`. Any type is accepted and its data is NOT validated against the schema
registry (the event may be dead-lettered precisely because it is invalid; even data that does
not parse as its content type is stored, as bytes). The event, its decoded error extensions,
the trace id and the time go to `dead_letters` in the event's transaction; then
`eventfn.deadletter.recorded.v1` is emitted (subject: the dead event's type).

Loop guard: a dead letter of `eventfn.deadletter.recorded.v1` itself (a notifier that could not
post it) is stored but not announced again, so a failing consumer of the announcement cannot
feed this function forever. This function's own failures are never dead-lettered (a
dead-letter delivery has no dead-letter sink of its own).
"""

from __future__ import annotations

from typing import Any

from eventfn import App, Context, Event, InternalError
from eventfn._deadletters import ERROR_DEST, DeadLetter, from_event, upsert
from eventfn._event import utc_now_rfc3339

RECORDED = "eventfn.deadletter.recorded.v1"
ARRIVAL_EXTENSION = "knativearrivaltime"

app = App("dlq-handler")


def dead_letter_key(event: Event) -> str:
    """Deduplication key: the dead letter's row (source, id, failed destination) plus the time
    the event entered the broker. A dead letter redelivered to this sink keeps its arrival time
    and is a duplicate; the same event dead-lettered again after a replay went through the
    broker again, has a new arrival time, and is recorded (and announced) again."""
    extensions = event.extensions
    parts = (event.source, event.id, extensions.get(ERROR_DEST, ""))
    return "\x1f".join((*parts, extensions.get(ARRIVAL_EXTENSION, "")))


@app.on_any(validate=False, key=dead_letter_key)
def record(event: Event, ctx: Context) -> None:
    """Store the dead letter and announce it."""
    tx = ctx.tx
    if tx is None:
        raise InternalError("dlq-handler needs its SQL store")
    letter = from_event(event, trace_id=ctx.trace.trace_id, received_at=utc_now_rfc3339())
    first = upsert(tx, letter)
    ctx.logger.info(
        "dead letter %s: %s from %s, code %s at %s",
        letter.id,
        event.type,
        event.source,
        letter.error_code,
        letter.error_dest,
    )
    if event.type == RECORDED:
        ctx.logger.warning("stored a dead %s without announcing it (loop guard)", RECORDED)
        return
    ctx.emit(RECORDED, recorded_data(letter, repeated=not first), subject=event.type)


def recorded_data(letter: DeadLetter, *, repeated: bool) -> dict[str, Any]:
    """The data of `eventfn.deadletter.recorded.v1`."""
    summary = letter.summary()
    keys = (
        "id",
        "event_id",
        "event_type",
        "event_source",
        "subject",
        "error_code",
        "error_dest",
        "error_excerpt",
        "attempts",
        "trace_id",
        "received_at",
    )
    return {**{key: summary[key] for key in keys}, "repeated": repeated}
