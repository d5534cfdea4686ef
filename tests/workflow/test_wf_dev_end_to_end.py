"""Both example workflows end to end inside `eventfn dev`, on the chart's own manifests (k8s/).

The workflow function calls `function:workflow-tasks` at its in-cluster URL
(`WORKFLOW_FUNCTION_URL_WORKFLOW_TASKS=http://workflow-tasks.eventfn.svc.cluster.local`); the
mesh points that at workflow-tasks' local address, whose activator cold-starts it. A PingSource
added to the manifests ticks every 2 s and reaches the workflow function through its Trigger.

- telemetry/… uploaded -> storage-source -> Trigger workflow-telemetry-created -> workflow:
  ValidateInput -> TransformData -> BackupRawFile (s3:copyObject) -> LoadToWarehouse;
- eventfn.workflow.start.v1 (order-processing) -> Validate -> Charge -> Ship -> succeeded;
- the same for a destination the carrier does not serve -> Ship rejected -> RefundPayment
  (the compensating Catch) -> failed ShipmentFailed -> notifier -> Teams and Slack.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dev_testing import ROOT, WAIT, DevProcess, clean_env, run_eventfn, running_dev

STARTED = "eventfn.workflow.execution.started.v1"
SUCCEEDED = "eventfn.workflow.execution.succeeded.v1"
FAILED = "eventfn.workflow.execution.failed.v1"
FAST_TICK = """\
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: test-fast-tick
  namespace: eventfn
spec:
  schedule: "*/2 * * * * *"
  contentType: application/json
  data: '{"reason": "test"}'
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def _eventfn(state: Path, *args: str) -> str:
    result = run_eventfn(*args, env=clean_env(EVENTFN_STATE_DIR=str(state)), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    """One `eventfn dev --json` over k8s/ plus a fast PingSource, for the whole module."""
    base = tmp_path_factory.mktemp("wf-dev")
    manifests = base / "manifests"
    shutil.copytree(ROOT / "k8s", manifests)
    (manifests / "test-fast-tick.yaml").write_text(FAST_TICK, encoding="utf-8")
    with running_dev(base, manifests, idle_seconds=300) as handle:
        handle.wait_for("ready", WAIT)
        yield handle


def _publish_start(dev: DevProcess, event_id: str, workflow: str, data: dict[str, Any]) -> str:
    """Publish a start request on a fresh trace; returns the trace id."""
    ingress = dev.info()["brokers"]["eventfn/default"]
    trace_id = os.urandom(16).hex()
    body = json.dumps({"workflow": workflow, "input": data}).encode()
    headers = {
        "content-type": "application/json", "ce-specversion": "1.0",
        "ce-type": "eventfn.workflow.start.v1", "ce-source": "/tests/wf-dev", "ce-id": event_id,
        "traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01",
    }  # fmt: skip
    request = urllib.request.Request(ingress, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
    return trace_id


def _outcome(dev: DevProcess, kind: str, **match: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The execution event of `kind` accepted by the broker (fields equal to `match`), and the
    execution as `eventfn wf describe` shows it."""
    hop = dev.wait_for("hop", WAIT, event_type=kind, outcome="accepted", **match)
    described = json.loads(_eventfn(dev.state_dir, "wf", "describe", hop["subject"]))
    return hop, described


def _history_states(dev: DevProcess, execution: str) -> list[str]:
    history = json.loads(_eventfn(dev.state_dir, "wf", "history", execution))
    return [entry["state"] for entry in history if entry.get("state")]


def test_telemetry_pipeline_runs_from_an_upload(dev: DevProcess, tmp_path: Path) -> None:
    lines = [{"device_id": f"dev-{i % 2}", "value": float(i)} for i in range(10)]
    path = tmp_path / "readings.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    _eventfn(dev.state_dir, "upload", str(path), "--prefix", "telemetry/site-1/",
             "--state-dir", str(dev.state_dir))  # fmt: skip

    hop, execution = _outcome(dev, SUCCEEDED, event_source="/eventfn/workflow")
    assert (execution["workflow"], execution["status"]) == ("telemetry-pipeline", "SUCCEEDED")
    states = _history_states(dev, hop["subject"])
    for state in ("ValidateInput", "TransformData", "BackupRawFile", "LoadToWarehouse"):
        assert state in states
    s3, bucket = dev.s3()
    backup = s3.get_object(Bucket=bucket, Key="backup/telemetry/site-1/readings.jsonl")
    assert backup["Body"].read() == path.read_bytes()
    warehouse = s3.get_object(Bucket=bucket, Key="warehouse/telemetry/readings.jsonl.json")
    rows = [json.loads(line) for line in warehouse["Body"].read().decode().splitlines()]
    assert [(row["device_id"], row["count"], row["max"]) for row in rows] == [
        ("dev-0", 5, 8.0),
        ("dev-1", 5, 9.0),
    ]
    calls = dev.wait_count(3, "call", WAIT, service="workflow-tasks", trace_id=hop["trace_id"])
    assert {call["status"] for call in calls} == {200}


def test_order_processing_succeeds(dev: DevProcess) -> None:
    order = {
        "order_id": "SO-E2E-1",
        "items": [{"sku": "MUG-1", "quantity": 3, "price": 10.0}],
        "address": {"country": "NL"},
    }
    trace = _publish_start(dev, "start-SO-E2E-1", "order-processing", order)

    hop, execution = _outcome(dev, SUCCEEDED, trace_id=trace)
    assert (execution["workflow"], execution["status"]) == ("order-processing", "SUCCEEDED")
    output = execution["output"]
    assert output["validated"] == {"total": 30.0, "lines": 1}
    assert output["payment"]["amount"] == 30.0
    assert output["shipment"]["items"] == 1
    assert _history_states(dev, hop["subject"])[-3:] == ["Charge", "Ship", "OrderCompleted"]


def test_order_processing_compensates_a_failed_shipment(dev: DevProcess) -> None:
    order = {
        "order_id": "SO-E2E-2",
        "items": [{"sku": "MUG-1", "quantity": 1, "price": 99.0}],
        "address": {"country": "AQ"},
    }
    trace = _publish_start(dev, "start-SO-E2E-2", "order-processing", order)

    hop, execution = _outcome(dev, FAILED, trace_id=trace)
    assert (execution["status"], execution["error"]) == ("FAILED", "ShipmentFailed")
    states = _history_states(dev, hop["subject"])
    assert states.index("Ship") < states.index("RefundPayment") < states.index("OrderFailed")
    notified = dev.wait_for("hop", WAIT, trigger="notifier-workflow-failed", outcome="delivered")
    assert notified["event_id"] == hop["event_id"]
    channels = {
        record["channel"] for record in dev.wait_count(2, "notification", WAIT)
        if "order-processing" in json.dumps(record)
    }  # fmt: skip
    assert channels == {"teams", "slack"}


def test_ping_source_ticks_reach_the_workflow_engine(dev: DevProcess) -> None:
    source = "/apis/v1/namespaces/eventfn/pingsources/test-fast-tick"
    ticks = dev.wait_count(
        2, "hop", WAIT, trigger="workflow-tick", event_source=source, outcome="delivered"
    )
    assert all(tick["status"] in (200, 202, 204) for tick in ticks)
