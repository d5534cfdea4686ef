"""Backup runs: run-id idempotency, completed/failed events through the real Emitter, drills."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from eventfn._backup_bucket import Source, blob_key
from eventfn._backup_repo import BackupRepo, SnapshotCorrupt, snapshot_id
from eventfn._backup_run import BackupJob, drill, run_backup
from eventfn._emitter import Emitter
from eventfn._errors import ConfigurationError, SchemaViolation
from eventfn._schemas import SchemaRegistry
from eventfn._store import create_engine_from_url

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def broker() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A loopback HTTP sink recording every event posted to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _events(received: list[tuple[dict[str, str], bytes]]) -> list[tuple[str, dict[str, Any]]]:
    return [(h["ce-type"], json.loads(body)) for h, body in received]


@pytest.fixture
def job(
    repo: BackupRepo, source: Source, clock: Any, sqlite_url: str, broker: Any, db_rows: Any
) -> BackupJob:
    engine = create_engine_from_url(sqlite_url)
    db_rows.fill(engine, rows=4)
    engine.dispose()
    source.client.put_object(Bucket=source.bucket, Key="documents/a.txt", Body=b"hello")
    emitter = Emitter(sink=broker[0], registry=SchemaRegistry.from_directory(SCHEMAS))
    resources = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]
    return BackupJob(
        repo=repo,
        clock=clock,
        emit=emitter.emit,
        database_url=sqlite_url,
        source=source,
        resources=lambda: ("test", resources),
    )


def test_a_retried_run_makes_no_second_snapshot(job: BackupJob, broker: Any) -> None:
    first = run_backup(job, "db", "2026-11-02T02:00:00Z")
    again = run_backup(job, "db", "2026-11-02T02:00:00Z")
    assert not first.skipped and again.skipped
    assert again.manifest == first.manifest
    assert first.manifest["snapshot_id"] == snapshot_id("db", "2026-11-02T02:00:00Z")
    other = run_backup(job, "db", "2026-11-03T02:00:00Z")
    assert not other.skipped
    assert len(job.repo.snapshots("db")) == 2
    assert [t for t, _ in _events(broker[1])] == ["eventfn.backup.completed.v1"] * 2


def test_without_a_run_id_there_is_one_snapshot_per_kind_and_day(
    job: BackupJob, clock: Any
) -> None:
    assert not run_backup(job, "bucket", None).skipped
    clock.advance(hours=20)
    assert run_backup(job, "bucket", None).skipped
    assert not run_backup(job, "cluster", None).skipped
    clock.advance(hours=5)
    assert not run_backup(job, "bucket", None).skipped
    assert len(job.repo.snapshots("bucket")) == 2


def test_completed_event_carries_what_id_sizes_and_duration(job: BackupJob, broker: Any) -> None:
    outcome = run_backup(job, "bucket", "r1")
    [(event_type, data)] = _events(broker[1])
    assert event_type == "eventfn.backup.completed.v1"
    assert data["kind"] == "bucket"
    assert data["snapshot_id"] == outcome.manifest["snapshot_id"]
    assert data["bytes"] == 5 and data["duration_seconds"] >= 0
    assert data["run_id"] == "r1"
    assert data["objects"] == 1
    assert broker[1][0][0]["ce-subject"] == "bucket"


def test_a_failed_run_emits_the_failed_event_and_raises(
    job: BackupJob, broker: Any, tmp_path: Path
) -> None:
    job.database_url = str(tmp_path / "missing.db")
    with pytest.raises(ConfigurationError):
        run_backup(job, "db", "r1")
    [(event_type, data)] = _events(broker[1])
    assert event_type == "eventfn.backup.failed.v1"
    assert data["kind"] == "db" and data["error_type"] == "ConfigurationError"
    assert data["error"].startswith("there is no database at")
    assert not job.repo.has_manifest("db", data["snapshot_id"])


def test_the_drill_restores_the_newest_snapshots_and_marks_them_verified(
    job: BackupJob, broker: Any, clock: Any
) -> None:
    for kind in ("db", "bucket", "cluster"):
        run_backup(job, kind, "r1")
    result = drill(job)
    assert set(result["restored"]) == {"db", "bucket", "cluster"}
    event_type, data = _events(broker[1])[-1]
    assert event_type == "eventfn.backup.completed.v1" and data["kind"] == "drill"
    assert data["restored"]["db"]["rows"] > 0
    for kind in ("db", "bucket", "cluster"):
        latest = job.repo.latest(kind)
        assert latest is not None
        assert job.repo.verified_at(kind, latest["snapshot_id"]) == clock()
    assert not list(job.repo.keys("drill/"))  # the scratch prefix is cleaned up


def test_a_drill_of_a_corrupted_snapshot_fails_and_reports_it(job: BackupJob, broker: Any) -> None:
    manifest = run_backup(job, "bucket", "r1").manifest
    job.repo.put(blob_key(manifest["objects"][0]["sha256"]), b"rotten")
    with pytest.raises(SnapshotCorrupt):
        drill(job)
    event_type, data = _events(broker[1])[-1]
    assert event_type == "eventfn.backup.failed.v1"
    assert (data["kind"], data["error_type"]) == ("drill", "SnapshotCorrupt")
    assert job.repo.verified_at("bucket", manifest["snapshot_id"]) is None


def test_unreachable_backup_storage_is_reported_as_failed(job: BackupJob, broker: Any) -> None:
    import boto3
    from botocore.config import Config

    from eventfn._errors import DependencyUnavailable
    from eventfn._objects import ObjectStore

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    job.repo = BackupRepo(ObjectStore(client, "eventfn-backups"))
    with pytest.raises(DependencyUnavailable):
        run_backup(job, "cluster", "r1")
    [(event_type, data)] = _events(broker[1])
    assert event_type == "eventfn.backup.failed.v1"
    assert (data["kind"], data["error_type"]) == ("cluster", "DependencyUnavailable")


def test_the_schemas_accept_what_the_notifier_formats() -> None:
    """The notifier's routes read kind, snapshot_id, bytes, objects, duration_seconds, error."""
    registry = SchemaRegistry.from_directory(SCHEMAS)
    completed = {
        "kind": "db",
        "snapshot_id": "db-20261128T020000Z",
        "bytes": 1048576,
        "objects": 12,
        "duration_seconds": 3.25,
    }
    registry.encode("eventfn.backup.completed.v1", completed, "application/json")
    failed = {"kind": "bucket", "error": "the backup bucket does not exist"}
    registry.encode("eventfn.backup.failed.v1", failed, "application/json")
    with pytest.raises(SchemaViolation):
        registry.encode("eventfn.backup.failed.v1", {"kind": "bucket"}, "application/json")
