"""The ops pipelines under `eventfn dev`, as a user runs them: a subprocess, the real functions,
uploads through the embedded S3, its bucket notifications, the broker and the Triggers of
tests/pipelines/data/ops/mesh.yaml.

backup-logs/2026-11-28-report.csv -> storage-source -> backup-auditor ->
    eventfn.backup.log.audited.v1 + 2x eventfn.backup.job.failed.v1
logs/web-2026-11-28.log -> storage-source -> log-processor -> eventfn.logs.parsed.v1
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_testing import demo_module
from dev_testing import WAIT, DevProcess, run_eventfn, running_dev

from eventfn.mesh._dev_events import broker_db, event_data

MANIFESTS = Path(__file__).resolve().parent / "data" / "ops"
AUDITED = "eventfn.backup.log.audited.v1"
FAILED = "eventfn.backup.job.failed.v1"
PARSED = "eventfn.logs.parsed.v1"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    with running_dev(tmp_path, MANIFESTS) as handle:
        yield handle


def _upload(dev: DevProcess, path: Path, prefix: str) -> None:
    result = run_eventfn(
        "upload", str(path), "--prefix", prefix, "--state-dir", str(dev.state_dir), timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_backup_report_and_access_log_flow_through_the_mesh(
    dev: DevProcess, tmp_path: Path
) -> None:
    demo = demo_module("builders_ops")
    report, access = demo.backup_job_report(), demo.nginx_access_log()
    dev.wait_for("ready", WAIT)
    for item, prefix in ((report, "backup-logs/"), (access, "logs/")):
        path = tmp_path / Path(item.key).name
        path.write_bytes(item.content)
        _upload(dev, path, prefix)

    audit_hop = dev.wait_for("hop", WAIT, trigger="backup-auditor-logs", outcome="delivered")
    assert (audit_hop["subject"], audit_hop["status"]) == (report.key, 204)
    parse_hop = dev.wait_for("hop", WAIT, trigger="log-processor-logs", outcome="delivered")
    assert (parse_hop["subject"], parse_hop["status"]) == (access.key, 204)
    audited = dev.wait_for("hop", WAIT, event_type=AUDITED, outcome="accepted")
    parsed = dev.wait_for("hop", WAIT, event_type=PARSED, outcome="accepted")
    failed = dev.wait_count(2, "hop", WAIT, event_type=FAILED, outcome="accepted")
    assert {hop["subject"] for hop in [audited, *failed]} == {report.key}
    assert parsed["subject"] == access.key

    db = broker_db(dev.state_dir)
    audit = event_data(db, audited["event_id"])
    assert (audit["rows"], audit["failed"], audit["totals"]) == (
        8,
        2,
        {"COMPLETED": 6, "EXPIRED": 1, "FAILED": 1},
    )
    jobs = [event_data(db, hop["event_id"]) for hop in failed]
    assert [(job["status"], job["line"]) for job in jobs] == [("FAILED", 4), ("EXPIRED", 7)]
    logs = event_data(db, parsed["event_id"])
    assert (logs["format"], logs["lines"], logs["parsed"], logs["minutes"]) == (
        "combined",
        360,
        360,
        6,
    )

    with sqlite3.connect(dev.state_dir / "eventfn.db") as tables:
        (rows,) = tables.execute(
            "SELECT count(*) FROM backup_audit_rows WHERE log_key = ?", (report.key,)
        ).fetchone()
        (requests,) = tables.execute(
            "SELECT sum(count) FROM log_metrics WHERE log_key = ?", (access.key,)
        ).fetchone()
    assert (rows, requests) == (8, 360)
