"""documents-probe: a second subscriber of `eventfn.document.text.extracted.v1` (fan-out test).

Appends what it received (subject, event id, source and the data's text key) to
`<EVENTFN_STATE_DIR>/documents-probe.jsonl`, one JSON object per delivery.
"""

from __future__ import annotations

import json

from eventfn import App, Context, Event

app = App("documents-probe")


@app.on("eventfn.document.text.extracted.v1", idempotent=False)
def extracted(event: Event, ctx: Context) -> None:
    """Record the delivery."""
    line = {
        "subject": event.subject,
        "event_id": event.id,
        "source": event.source,
        "text_key": event.data.get("text_key"),
        "chars": event.data.get("chars"),
    }
    with (ctx.settings.state_dir / "documents-probe.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
