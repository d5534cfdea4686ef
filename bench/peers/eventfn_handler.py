"""The benchmark function for eventfn: echo the data back as a reply of another type.

bench/runtime.py copies this file to `<tmp>/functions/benchecho/handler.py` and runs
`eventfn serve benchecho` on it. No emit, no SQL of its own: only the runtime is measured.
"""

from __future__ import annotations

from typing import Any

from eventfn import App, Context, Event

app = App("benchecho")


@app.on("bench.echo.requested.v1", reply_type="bench.echo.replied.v1")
def echo(event: Event, ctx: Context) -> Any:
    """Reply with the incoming data unchanged."""
    return event.data
