"""Demo inputs of the workflow family: the two example workflows of functions/workflow, run by
the workflow engine whose `function:workflow-tasks` calls reach workflow-tasks at its local
address (the activator of `eventfn dev`). Deterministic: fixed ids and readings, no clock.

- telemetry-readings: JSON lines uploaded under telemetry/ start telemetry-pipeline
  (ValidateInput -> TransformData -> BackupRawFile via s3:copyObject -> LoadToWarehouse);
- order-workflow-shipped: order-processing for an order the carrier serves -> succeeded;
- order-workflow-refunded: an order to a country the carrier does not serve -> Ship fails,
  the Catch refunds the payment (compensation) and the execution fails -> the notifier posts
  it to Teams and Slack (the local webhook capture shows both).
"""

from __future__ import annotations

import json
from typing import Any

from make_inputs import DemoInput

CREATED = "eventfn.storage.object.created.v1"
START = "eventfn.workflow.start.v1"
STARTED = "eventfn.workflow.execution.started.v1"
SUCCEEDED = "eventfn.workflow.execution.succeeded.v1"
FAILED = "eventfn.workflow.execution.failed.v1"
REQUIRES = ("workflow", "workflow-tasks")
DEVICES = ("pump-1", "pump-2", "valve-7")


def telemetry_readings() -> DemoInput:
    """Sixty readings of three devices, one JSON object per line."""
    readings = [
        {"device_id": DEVICES[i % 3], "seq": i, "value": round(20 + (i * 7 % 13) * 0.5, 2)}
        for i in range(60)
    ]
    content = "".join(json.dumps(reading) + "\n" for reading in readings).encode()
    return DemoInput(
        name="telemetry-readings",
        kind="upload",
        file="uploads/telemetry-2026-11-28.jsonl",
        content=content,
        description="telemetry under telemetry/ -> telemetry-pipeline workflow -> warehouse/",
        expect=(CREATED, STARTED, SUCCEEDED),
        requires=("storage-source", *REQUIRES),
        key="telemetry/plant-a/2026-11-28.jsonl",
        content_type="application/x-ndjson",
    )


def _start(order_id: str, country: str) -> bytes:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "type": START,
        "source": "/eventfn/demo/shop",
        "id": f"demo-start-{order_id}",
        "subject": order_id,
        "datacontenttype": "application/json",
        "data": {
            "workflow": "order-processing",
            "execution_name": f"demo-{order_id}",
            "input": {
                "order_id": order_id,
                "items": [{"sku": "MUG-1", "quantity": 2, "price": 12.5}],
                "address": {"country": country, "city": "Example City"},
            },
        },
    }
    return (json.dumps(event, indent=2) + "\n").encode()


def order_workflow_shipped() -> DemoInput:
    """Validate -> Charge -> Ship: the happy path."""
    return DemoInput(
        name="order-workflow-shipped",
        kind="event",
        file="events/order-workflow-shipped.json",
        content=_start("SO-2001", "DE"),
        description="order-processing workflow: validated, charged, shipped -> succeeded",
        expect=(START, STARTED, SUCCEEDED),
        requires=REQUIRES,
    )


def order_workflow_refunded() -> DemoInput:
    """Ship is rejected (destination not served): the Catch refunds the charge, then fails."""
    return DemoInput(
        name="order-workflow-refunded",
        kind="event",
        file="events/order-workflow-refunded.json",
        content=_start("SO-2002", "AQ"),
        description="order-processing workflow: shipping rejected -> refund -> failed, notified",
        expect=(START, STARTED, FAILED),
        requires=REQUIRES,
    )
