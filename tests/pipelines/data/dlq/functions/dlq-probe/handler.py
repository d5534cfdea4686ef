"""dlq-probe: a subscriber that is "broken" until it is "fixed" (a switch file).

Consumes `eventfn.test.poison.v1`. While `<EVENTFN_STATE_DIR>/dlq-probe.fixed` does not exist it
refuses every event with a 400 problem (permanent: Knative does not retry it and dead-letters
it); afterwards it appends each event it takes to `<EVENTFN_STATE_DIR>/dlq-probe.jsonl`.
"""

from __future__ import annotations

import json

from eventfn import App, Context, Event, PermanentError

SWITCH = "dlq-probe.fixed"
TAKEN = "dlq-probe.jsonl"

app = App("dlq-probe")


class PoisonRefused(PermanentError):
    """The probe is still broken."""

    code = "poison-refused"
    title = "Poison refused"


@app.on("eventfn.test.poison.v1")
def take(event: Event, ctx: Context) -> None:
    """Refuse until fixed, then record."""
    state = ctx.settings.state_dir
    if not (state / SWITCH).exists():
        raise PoisonRefused("dlq-probe is broken until dlq-probe.fixed exists")
    line = {"id": event.id, "source": event.source, "data": event.data}
    with (state / TAKEN).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
