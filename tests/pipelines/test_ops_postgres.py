"""backup-auditor and log-processor on PostgreSQL: the same upserts as on SQLite, through
`INSERT .. ON CONFLICT` of the postgresql dialect, against a real server and a real S3 API."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine

from eventfn._tables_pipelines import backup_audit_rows, log_metrics

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


def _ops_testing() -> ModuleType:
    if "ops_testing" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "ops_testing", Path(__file__).with_name("ops_testing.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ops_testing"] = module
        spec.loader.exec_module(module)
    return sys.modules["ops_testing"]


def _demo() -> ModuleType:
    sys.path.insert(0, str(ROOT / "demo"))
    try:
        import builders_ops
    finally:
        sys.path.remove(str(ROOT / "demo"))
    return builders_ops


ops = _ops_testing()
demo = _demo()


def test_backup_audit_upserts_on_postgresql(
    pg_engine: Engine, migrated_postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = demo.backup_job_report()
    with ops.harness("backup-auditor", tmp_path, monkeypatch, migrated_postgres_url) as h:
        assert h.engine.dialect.name == "postgresql"
        event = h.upload(report.key, report.content)
        assert h.deliver(event).status_code == 204
        rows = h.rows(backup_audit_rows, "line")
        assert [(r["line"], r["status"]) for r in rows] == [
            (2, "COMPLETED"),
            (3, "COMPLETED"),
            (4, "FAILED"),
            (5, "COMPLETED"),
            (6, "COMPLETED"),
            (7, "EXPIRED"),
            (8, "COMPLETED"),
            (9, "COMPLETED"),
        ]
        assert h.deliver(event).status_code == 204  # the same event: replayed
        again = ops.created_event(report.key, event.data["etag"], 1, event_id="re-notified")
        assert h.deliver(again).status_code == 204  # a new event: ON CONFLICT DO UPDATE
        assert h.rows(backup_audit_rows, "line") == rows
        types = [e.type for e in h.sink.events()]
        assert (
            types
            == [
                "eventfn.backup.log.audited.v1",
                "eventfn.backup.job.failed.v1",
                "eventfn.backup.job.failed.v1",
            ]
            * 2
        )


def test_log_metrics_upsert_on_postgresql(
    pg_engine: Engine, migrated_postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = demo.nginx_access_log()
    with ops.harness("log-processor", tmp_path, monkeypatch, migrated_postgres_url) as h:
        event = h.upload(log.key, log.content)
        assert h.deliver(event).status_code == 204
        order = ("minute", "dimension", "value")
        rows = h.rows(log_metrics, *order)
        assert sum(r["count"] for r in rows) == 360 and len({r["minute"] for r in rows}) == 6
        again = ops.created_event(log.key, event.data["etag"], 1, event_id="re-notified")
        assert h.deliver(again).status_code == 204
        assert h.rows(log_metrics, *order) == rows
        first, second = h.sink.events()
        assert first.data == second.data and first.data["metric_rows"] == len(rows)
