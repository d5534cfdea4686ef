"""probe: a tiny function the mesh tests run as a real process.

- consumes `eventfn.storage.object.created.v1` and appends what it saw (subject, event id, the
  trace of the HTTP request and the event's distributed-tracing extension) to
  `<EVENTFN_STATE_DIR>/probe.jsonl`;
- `GET /probe/env?names=A,B` answers its pid, its gunicorn master's pid and those environment
  variables, so tests can check what the supervisor passed to the process.
"""

from __future__ import annotations

import json
import os

from eventfn import App, Context, Event
from eventfn._pipeline import Response
from eventfn._routes import HttpRequest, Route, RouteContext, json_response

app = App("probe")


@app.on("eventfn.storage.object.created.v1")
def created(event: Event, ctx: Context) -> None:
    """Record the delivery."""
    line = {
        "subject": event.subject,
        "event_id": event.id,
        "source": event.source,
        "trace_id": ctx.trace.trace_id,
        "ce_traceparent": event.extensions.get("traceparent"),
        "pid": os.getpid(),
    }
    with (ctx.settings.state_dir / "probe.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def environment(request: HttpRequest, ctx: RouteContext) -> Response:
    """The pid and the environment variables named in `?names=A,B`."""
    names = [name for name in request.query.get("names", "").split(",") if name]
    env = {name: os.environ.get(name) for name in names}
    return json_response(200, {"pid": os.getpid(), "master": os.getppid(), "env": env})


app.add_route(Route("/probe/env", ("GET",), environment))
