"""One backup run: idempotency by run id, the snapshot, and the completed/failed event.

A run id (`--run-id`, EVENTFN_BACKUP_RUN_ID, else the UTC date) names the snapshot, so a retried
Job finds the complete manifest of its first attempt and exits 0 without a second snapshot.
The drill restores the newest snapshot of each kind into a scratch target and compares it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from eventfn._backup_bucket import Source, backup_bucket, restore_bucket, verify_bucket
from eventfn._backup_cluster import backup_cluster, restore_cluster, verify_cluster
from eventfn._backup_repo import (
    BackupRepo,
    default_run_id,
    kind_of,
    snapshot_id,
)
from eventfn._errors import ConfigurationError, EventfnError
from eventfn._event import Event

COMPLETED: Final = "eventfn.backup.completed.v1"
FAILED: Final = "eventfn.backup.failed.v1"
SOURCE: Final = "/eventfn/backup"
_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass
class BackupJob:
    """Everything a backup command needs, built at the CLI edge."""

    repo: BackupRepo
    clock: Clock
    emit: Callable[[Event], None] | None = None
    database_url: str | None = None
    source: Source | None = None
    resources: Callable[[], tuple[str, Iterable[Mapping[str, Any]]]] | None = None


@dataclass
class Outcome:
    """The result of a run: the manifest, and whether it already existed."""

    manifest: dict[str, Any]
    skipped: bool


def run_backup(job: BackupJob, kind: str, run_id: str | None) -> Outcome:
    """Snapshot `kind` once per run id; emits completed or failed (then re-raises)."""
    token = run_id or default_run_id(kind, job.clock())
    snap = snapshot_id(kind, token)
    t0 = time.monotonic()
    try:
        if job.repo.has_manifest(kind, snap):  # a retried Job: the first attempt completed
            return Outcome(job.repo.manifest(kind, snap), skipped=True)
        manifest = _snapshot(job, kind, snap)
    except Exception as error:
        _report(job, FAILED, _failure(kind, snap, error, time.monotonic() - t0), kind)
        raise
    data = {
        "kind": kind,
        "snapshot_id": snap,
        "run_id": token,
        "bytes": int(manifest["bytes"]),
        "objects": _count(manifest),
        "duration_seconds": float(manifest["duration_seconds"]),
        "started_at": manifest["started_at"],
        "ended_at": manifest["ended_at"],
    }
    _report(job, COMPLETED, data, kind)
    return Outcome(manifest, skipped=False)


def _count(manifest: Mapping[str, Any]) -> int:
    """Tables, objects or resources of a snapshot."""
    for field in ("tables", "objects", "files"):
        if field in manifest:
            return len(manifest[field])
    return 0


def _snapshot(job: BackupJob, kind: str, snap: str) -> dict[str, Any]:
    job.repo.ensure_bucket()
    if kind == "db":
        from eventfn._backup_db import backup_db

        if job.database_url is None:
            raise ConfigurationError("no database configured")
        return backup_db(job.database_url, job.repo, snap, job.clock)
    if kind == "bucket":
        if job.source is None:
            raise ConfigurationError("no data bucket configured")
        return backup_bucket(job.source, job.repo, snap, job.clock)
    if job.resources is None:
        raise ConfigurationError("no cluster resources configured")
    origin, resources = job.resources()
    return backup_cluster(resources, origin, job.repo, snap, job.clock)


def _failure(kind: str, snap: str, error: Exception, seconds: float) -> dict[str, Any]:
    # Only eventfn's own messages travel; foreign exception text may carry secrets or paths.
    detail = error.detail if isinstance(error, EventfnError) else None
    if isinstance(error, ConfigurationError):
        detail = str(error)
    return {
        "kind": kind,
        "snapshot_id": snap,
        "duration_seconds": round(seconds, 3),
        "error": detail or f"the {kind} backup failed ({type(error).__name__})",
        "error_type": type(error).__name__,
    }


def _report(job: BackupJob, event_type: str, data: dict[str, Any], subject: str) -> None:
    if job.emit is None:
        return
    try:
        job.emit(Event.new(event_type, SOURCE, data, subject=subject))
    except EventfnError as error:  # the backup itself stands; the notice is best effort
        _log.warning("the %s event was not delivered: %s", event_type, type(error).__name__)


def verify(repo: BackupRepo, ref: str, now: datetime) -> dict[str, Any]:
    """Re-read every file of `<kind>/<id>`; records verified.json when all match."""
    kind, snap = kind_of(ref), ref.split("/", 1)[1]
    manifest = repo.manifest(kind, snap)
    if kind == "db":
        from eventfn._backup_db import verify_db

        verify_db(repo, manifest)
    elif kind == "bucket":
        verify_bucket(repo, manifest)
    else:
        verify_cluster(repo, manifest)
    repo.mark_verified(kind, snap, now, "verify")
    return manifest


def drill(job: BackupJob) -> dict[str, Any]:
    """Restore the newest snapshot of each kind into a scratch target and compare."""
    t0, results = time.monotonic(), {}
    try:
        for kind in ("db", "bucket", "cluster"):
            latest = job.repo.latest(kind)
            if latest is None:
                continue
            results[kind] = _drill_one(job.repo, kind, latest["snapshot_id"])
            job.repo.mark_verified(kind, latest["snapshot_id"], job.clock(), "drill")
    except Exception as error:
        _report(job, FAILED, _failure("drill", "", error, time.monotonic() - t0), "drill")
        raise
    if not results:
        missing = ConfigurationError("there is no snapshot to drill")
        _report(job, FAILED, _failure("drill", "", missing, time.monotonic() - t0), "drill")
        raise missing
    data = {
        "kind": "drill",
        "snapshot_id": ",".join(f"{k}/{v['snapshot_id']}" for k, v in results.items()),
        "bytes": sum(int(v.get("bytes", 0)) for v in results.values()),
        "objects": len(results),
        "duration_seconds": round(time.monotonic() - t0, 3),
        "restored": results,
    }
    _report(job, COMPLETED, data, "drill")
    return data


def _drill_one(repo: BackupRepo, kind: str, snap: str) -> dict[str, Any]:
    t0 = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="eventfn-drill-"))
    try:
        if kind == "db":
            from eventfn._backup_db import restore_db

            result = restore_db(repo, snap, str(scratch / "drill.db"))
        elif kind == "bucket":
            prefix = f"drill/{snap}/"
            repo.delete_prefix(prefix)
            try:
                result = restore_bucket(repo, snap, Source(repo.client, repo.bucket), prefix)
            finally:
                repo.delete_prefix(prefix)
        else:
            result = restore_cluster(repo, snap, scratch / "cluster")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"snapshot_id": snap, "rto_seconds": round(time.monotonic() - t0, 3), **result}
