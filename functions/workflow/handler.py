"""workflow: the durable workflow engine (Amazon States Language subset) as a function.

- `eventfn.workflow.start.v1` {workflow, input, execution_name?} starts an execution whose id is
  derived from the event (or from `execution_name`), so a redelivery never starts it twice, and
  steps it until it waits or ends.
- `dev.knative.sources.ping` (a PingSource tick) fires due timers (Wait, retry backoff),
  resumes executions a killed pod left mid-way (those not checkpointed for
  `WORKFLOW_RESUME_AFTER_SECONDS`, default 300 = the request timeout: a live request may be
  stepping younger ones) and re-sends final events not sent yet.
- Any other type listed in `WORKFLOW_TRIGGERS` (JSON list of {type, workflow, subject_prefix?})
  starts that workflow with {id, source, type, subject, data} of the event as input.

Emits `eventfn.workflow.execution.{started,succeeded,failed}.v1` (subject: the execution id; id
derived from execution, kind and redrive count) right after the checkpoint that decides them.
The handlers are not wrapped in an idempotency record: the engine itself is idempotent
(deterministic ids, optimistic checkpoints), and its own transactions must not wait behind one.
"""

from __future__ import annotations

import os
from typing import Any

from eventfn import App, Context, Event
from eventfn._errors import SchemaViolation, UnknownEventType

from ._service import Workflows

START = "eventfn.workflow.start.v1"
TICK = "dev.knative.sources.ping"
EVENT_PREFIX = "eventfn.workflow.execution."

app = App("workflow")
workflows = Workflows()


@app.on_start
def _configure() -> None:
    workflows.configure(os.environ)


app.on_stop(workflows.stop)


@app.on(START, idempotent=False)
def start(event: Event, ctx: Context) -> None:
    """Start (once) and run an execution of the named workflow."""
    data: dict[str, Any] = event.data
    if not isinstance(data, dict) or not isinstance(data.get("workflow"), str):
        raise SchemaViolation("the start request needs a workflow name", field="workflow")
    engine = workflows.engine(ctx)
    ident = engine.start(
        data["workflow"],
        data.get("input", {}),
        name=data.get("execution_name"),
        trigger=f"{event.source} {event.id}",
        trace_id=ctx.trace.trace_id,
    )
    ctx.logger.info(
        "execution %s of %s is %s", ident, data["workflow"], engine.describe(ident)["status"]
    )


@app.on(TICK, idempotent=False, validate=False)
def tick(event: Event, ctx: Context) -> None:
    """Fire due timers and resume executions left ready by a crash."""
    engine = workflows.engine(ctx)
    fired = engine.run_due()
    resumed = engine.resume(idle_for=workflows.resume_after)
    announced = engine.announce_pending()
    ctx.logger.info(
        "tick: %d timer(s) fired, %d execution(s) resumed, %d event(s) re-sent",
        fired, resumed, announced,
    )  # fmt: skip


@app.on_any(idempotent=False, validate=False)
def triggered(event: Event, ctx: Context) -> None:
    """Start the workflow mapped to this event type (and subject prefix)."""
    workflow = workflows.trigger_for(event)
    if workflow is None or event.type.startswith(EVENT_PREFIX):
        raise UnknownEventType(f"no workflow is triggered by {event.type!r}", field="type")
    payload = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "data": event.data if not isinstance(event.data, bytes) else None,
    }
    ident = workflows.engine(ctx).start(
        workflow, payload, trigger=f"{event.source} {event.id}", trace_id=ctx.trace.trace_id
    )
    ctx.logger.info("event %s started execution %s of %s", event.id, ident, workflow)
