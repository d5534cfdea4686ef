"""workflow-tasks: the small task functions the two example workflows call.

Every handler takes `eventfn.workflow.task.requested.v1` (sent by the workflow engine; the
subject is the calling state's name) and replies `eventfn.workflow.task.completed.v1` whose data
is the task's result. A Rejected (422) answer is a permanent `States.TaskFailed` for the engine.

- telemetry-pipeline: ValidateInput, TransformData, LoadToWarehouse (objects in the bucket).
- order-processing: Validate, Charge, Ship, RefundPayment (pure, deterministic simulations).
"""

from __future__ import annotations

from collections.abc import Callable

from eventfn import App, Context, Event, Reply

from ._orders import charge, refund, ship, validate_order
from ._telemetry import load_to_warehouse, transform, validate_telemetry

TASK = "eventfn.workflow.task.requested.v1"
DONE = "eventfn.workflow.task.completed.v1"

app = App("workflow-tasks")


TaskHandler = Callable[[Event, Context], Reply]


def _task(state: str) -> Callable[[TaskHandler], TaskHandler]:
    return app.on(TASK, subject_prefix=state, reply_type=DONE, validate=False)


@_task("ValidateInput")
def validate_input(event: Event, ctx: Context) -> Reply:
    """Check the raw telemetry object: every reading has a device and a numeric value."""
    return Reply(validate_telemetry(ctx.objects, event.data))


@_task("TransformData")
def transform_data(event: Event, ctx: Context) -> Reply:
    """Aggregate the readings per device into processed/<key>.json."""
    return Reply(transform(ctx.objects, event.data))


@_task("LoadToWarehouse")
def load(event: Event, ctx: Context) -> Reply:
    """Append the per-device aggregates to the warehouse partition."""
    return Reply(load_to_warehouse(ctx.objects, event.data))


@_task("Validate")
def validate(event: Event, ctx: Context) -> Reply:
    """Validate an order and compute its total."""
    return Reply(validate_order(event.data))


@_task("Charge")
def charge_payment(event: Event, ctx: Context) -> Reply:
    """Charge the order's total (declined above the limit)."""
    return Reply(charge(event.data))


@_task("Ship")
def ship_order(event: Event, ctx: Context) -> Reply:
    """Ship the items (fails for destinations the carrier does not serve)."""
    return Reply(ship(event.data))


@_task("RefundPayment")
def refund_payment(event: Event, ctx: Context) -> Reply:
    """The compensation of Charge."""
    return Reply(refund(event.data))
