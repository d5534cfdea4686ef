"""backup-auditor and log-processor on PostgreSQL: the same upserts as on SQLite, through
`INSERT .. ON CONFLICT` of the postgresql dialect, against a real server and a real S3 API."""

from __future__ import annotations

from pathlib import Path

import ops_testing as ops
import pytest
from demo_testing import demo_module
from sqlalchemy import Engine

from eventfn._tables_pipelines import backup_audit_rows, log_metrics

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


demo = demo_module("builders_ops")


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
