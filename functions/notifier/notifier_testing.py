"""Shared by the notifier tests: a scripted loopback webhook's record, a clock that only moves
when notifier sleeps, notifier served through the WSGI test client, and one event of every
notified type.

Importable by name: conftest.py puts this folder on sys.path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary
from eventfn._loader import load_function, module_name
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]

load_function("notifier", ROOT / "functions")
handler_module: ModuleType = __import__(module_name("notifier") + ".handler", fromlist=["x"])
from eventfn_functions.notifier._webhook import WebhookPoster  # noqa: E402


@dataclass
class Webhook:
    """Records every POST per path; answers from `script[path]` (then 200)."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(body) for p, _, body in self.received if p == path]


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@dataclass
class Served:
    client: Client
    webhook: Webhook
    time: FakeTime

    def deliver(self, event: Event) -> TestResponse:
        headers, body = encode_binary(event)
        return self.client.post("/", data=body, headers=headers)


@contextmanager
def serving(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook: Webhook,
    *,
    env: dict[str, str] | None = None,
    schemas_dir: Path = ROOT / "schemas",
) -> Iterator[Served]:
    fake = FakeTime()
    for name in ("NOTIFIER_CONFIG", "NOTIFIER_MAX_ATTEMPTS", "NOTIFIER_MAX_TOTAL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFIER_TEAMS_WEBHOOK_URL", f"{webhook.url}/teams")
    monkeypatch.setenv("NOTIFIER_SLACK_WEBHOOK_URL", f"{webhook.url}/slack")
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    poster = WebhookPoster(sleep=fake.sleep, clock=fake.clock, wall_clock=lambda: 1_800_000_000.0)
    monkeypatch.setattr(handler_module.notifier, "poster", poster)
    settings = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=schemas_dir,
        state_dir=tmp_path / "state",
        sink=None,
    )
    wsgi = create_app("notifier", settings=settings, tracer=Tracer("n", enabled=False), env={})
    try:
        yield Served(wsgi.test_client(), webhook, fake)
    finally:
        wsgi.close()


TIME = "2026-11-28T12:00:00Z"
EVENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "eventfn.backup.log.audited.v1": (
        "/eventfn/backup-auditor",
        "backup-logs/2026-11-28-report.csv",
        {
            "bucket": "eventfn-data",
            "key": "backup-logs/2026-11-28-report.csv",
            "etag": "9b2cf535f27731c974343645a3985328",
            "rows": 4,
            "totals": {"ABORTED": 1, "COMPLETED": 2, "FAILED": 1},
            "failed": 2,
            "failed_jobs": [
                {"job_id": "j-2", "resource": "orders", "status": "FAILED", "line": 3},
                {"job_id": "j-4", "resource": "vol-1", "status": "ABORTED", "line": 6},
            ],
            "failed_jobs_truncated": False,
            "failed_events": 2,
            "columns": {"status": "STATUS", "job_id": "JOB_ID"},
        },
    ),
    "eventfn.backup.job.failed.v1": (
        "/eventfn/backup-auditor",
        "backup-logs/2026-11-28-report.csv",
        {
            "bucket": "eventfn-data",
            "key": "backup-logs/2026-11-28-report.csv",
            "etag": "9b2cf535f27731c974343645a3985328",
            "line": 3,
            "job_id": "j-2",
            "resource": "arn:aws:dynamodb:eu-west-1:1:table/users",
            "status": "FAILED",
            "started_at": "2026-11-28T01:10:00Z",
            "finished_at": None,
            "message": "Access denied <kms> & retry later",
        },
    ),
    "eventfn.backup.completed.v1": (
        "/eventfn/backup",
        "db",
        {
            "kind": "db",
            "snapshot_id": "db-20261128T020000Z",
            "bytes": 1048576,
            "objects": 12,
            "duration_seconds": 3.25,
        },
    ),
    "eventfn.backup.failed.v1": (
        "/eventfn/backup",
        "bucket",
        {"kind": "bucket", "error": "the backup bucket does not exist"},
    ),
    "eventfn.dataset.file.processed.v1": (
        "/eventfn/csv-ingest",
        "raw/sales/2026-11.csv",
        {
            "bucket": "eventfn-data",
            "key": "raw/sales/2026-11.csv",
            "dataset": "sales",
            "output_key": "processed/sales/year=2026/month=11/day=28/2026-11-5f1d.parquet",
            "rows": 1200,
            "columns": [{"name": "id", "type": "int64"}],
            "bytes_in": 52000,
            "bytes_out": 18000,
            "duration_ms": 87,
            "quarantined_rows": 3,
            "quarantine_key": "quarantine/sales/2026-11.csv",
            "delimiter": ",",
        },
    ),
    "eventfn.inventory.rejected.v1": (
        "/eventfn/inventory-updater",
        "order-1042",
        {
            "order_id": "order-1042",
            "reason": "insufficient-stock",
            "items": [
                {"sku": "SKU-1", "requested": 3, "available": 1},
                {"sku": "SKU-7", "requested": 1, "available": 0},
            ],
        },
    ),
    "eventfn.document.sentiment.scored.v1": (
        "/eventfn/sentiment-analyzer",
        "documents/complaint.txt",
        {
            "bucket": "eventfn-data",
            "key": "documents/complaint.txt",
            "etag": "3a7bd3e2360a3d29eea436fcfb7e44c7",
            "compound": -0.7184,
            "positive": 0.02,
            "neutral": 0.61,
            "negative": 0.37,
            "label": "negative",
            "sentences": 5,
            "most_negative_sentence": "This is the worst service I have ever had.",
            "most_negative_compound": -0.8316,
        },
    ),
    "eventfn.deadletter.recorded.v1": (
        "/eventfn/dlq-handler",
        "eventfn.order.confirmed.v1",
        {
            "id": "0f5a3c0e9d7b4e21a8c6b2d4e6f80123",
            "event_id": "order-1042",
            "event_type": "eventfn.order.confirmed.v1",
            "event_source": "/eventfn/ingest-api",
            "subject": "order-1042",
            "error_code": 422,
            "error_dest": "http://inventory-updater.eventfn.svc.cluster.local",
            "error_excerpt": "Event data violates its schema: items[0].quantity must be >= 1",
            "attempts": None,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "received_at": "2026-11-28T12:00:01.000000Z",
            "repeated": False,
        },
    ),
    "eventfn.workflow.execution.failed.v1": (
        "/eventfn/workflow",
        "telemetry-pipeline",
        {
            "workflow": "telemetry-pipeline",
            "execution_id": "exec-7",
            "status": "FAILED",
            "error": "States.TaskFailed",
            "cause": "warehouse answered 400",
        },
    ),
}


def event_of(event_type: str, **data_changes: Any) -> Event:
    source, subject, data = EVENTS[event_type]
    return Event(
        type=event_type,
        source=source,
        id=f"{event_type.split('.')[1]}-0001",
        data={**data, **data_changes},
        subject=subject,
        time=TIME,
        datacontenttype="application/json",
    )
