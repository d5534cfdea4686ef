"""The ops pipelines under `eventfn dev`, as a user runs them: a subprocess, the real functions,
uploads through the embedded S3, its bucket notifications, the broker and the Triggers of
tests/pipelines/data/ops/mesh.yaml.

backup-logs/2026-11-28-report.csv -> storage-source -> backup-auditor ->
    eventfn.backup.log.audited.v1 + 2x eventfn.backup.job.failed.v1
logs/web-2026-11-28.log -> storage-source -> log-processor -> eventfn.logs.parsed.v1
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from eventfn.mesh._dev_events import broker_db, event_data

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = Path(__file__).resolve().parent / "data" / "ops"
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
AUDITED = "eventfn.backup.log.audited.v1"
FAILED = "eventfn.backup.job.failed.v1"
PARSED = "eventfn.logs.parsed.v1"
WAIT = 120.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _load(name: str, path: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ops = _load("ops_testing", Path(__file__).with_name("ops_testing.py"))


def _demo() -> ModuleType:
    sys.path.insert(0, str(ROOT / "demo"))
    try:
        import builders_ops
    finally:
        sys.path.remove(str(ROOT / "demo"))
    return builders_ops


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Any]:
    state = tmp_path / "state"
    command = [
        EVENTFN, "dev", "--manifests", str(MANIFESTS),
        "--functions-dir", str(ROOT / "functions"),
        "--state-dir", str(state), "--port", "0", "--idle-seconds", "120", "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFN_")}
    env["EVENTFN_TRACING"] = "off"
    with (tmp_path / "dev.stderr").open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
        handle = ops.DevProcess(process, state)
        handle.start_reader()
        try:
            yield handle
        finally:
            handle.stop()


def _upload(dev: Any, path: Path, prefix: str) -> None:
    result = subprocess.run(
        [EVENTFN, "upload", str(path), "--prefix", prefix, "--state-dir", str(dev.state_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_backup_report_and_access_log_flow_through_the_mesh(dev: Any, tmp_path: Path) -> None:
    demo = _demo()
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
