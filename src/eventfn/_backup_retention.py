"""`eventfn backup prune`: keep N daily and M weekly snapshots, delete the rest safely.

A snapshot is kept when it is the newest of one of the N most recent UTC days (or M most recent
ISO weeks) that have snapshots. Anything else is deleted only when a newer snapshot of the same
kind has been verified (`verified.json`), so pruning never leaves only unproven backups. Blobs of
`bucket/objects/` that no remaining manifest references are then deleted, except those written
within the grace period (a bucket backup may be uploading them before its manifest exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from eventfn._backup_bucket import OBJECTS
from eventfn._backup_repo import KINDS, BackupRepo, parse_iso

DEFAULT_KEEP_DAILY: Final = 7
DEFAULT_KEEP_WEEKLY: Final = 4
BLOB_GRACE: Final = timedelta(hours=6)


@dataclass
class PruneReport:
    """What a prune kept and deleted."""

    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)  # expired but no newer verified snapshot
    blobs_deleted: int = 0


def retained(manifests: list[dict[str, Any]], keep_daily: int, keep_weekly: int) -> set[str]:
    """Snapshot ids the daily/weekly policy keeps (manifests oldest first)."""
    daily: dict[str, str] = {}
    weekly: dict[tuple[int, int], str] = {}
    for manifest in manifests:  # oldest first: the newest of a bucket overwrites
        started = parse_iso(str(manifest["started_at"]))
        daily[started.date().isoformat()] = manifest["snapshot_id"]
        weekly[started.isocalendar()[:2]] = manifest["snapshot_id"]
    keep = {daily[day] for day in sorted(daily)[-keep_daily:]} if keep_daily > 0 else set()
    if keep_weekly > 0:
        keep |= {weekly[week] for week in sorted(weekly)[-keep_weekly:]}
    return keep


def prune(
    repo: BackupRepo,
    now: datetime,
    keep_daily: int = DEFAULT_KEEP_DAILY,
    keep_weekly: int = DEFAULT_KEEP_WEEKLY,
    dry_run: bool = False,
) -> PruneReport:
    """Apply the policy to every kind, then collect unreferenced blobs."""
    report = PruneReport()
    for kind in KINDS:
        _prune_kind(repo, kind, (keep_daily, keep_weekly), dry_run, report)
    if not dry_run:
        report.blobs_deleted = collect_blobs(repo, now)
    return report


def _prune_kind(
    repo: BackupRepo, kind: str, policy: tuple[int, int], dry_run: bool, report: PruneReport
) -> None:
    manifests = repo.snapshots(kind)
    keep = retained(manifests, *policy)
    verified = [str(m["started_at"]) for m in manifests if repo.verified_at(kind, m["snapshot_id"])]
    newest_verified = max(verified) if verified else None
    for manifest in manifests:
        name = f"{kind}/{manifest['snapshot_id']}"
        if manifest["snapshot_id"] in keep:
            report.kept.append(name)
        elif newest_verified is None or newest_verified <= str(manifest["started_at"]):
            report.unproven.append(name)
        else:
            report.deleted.append(name)
            if not dry_run:
                repo.delete_prefix(f"{name}/manifest.json")  # incomplete first, never half
                repo.delete_prefix(f"{name}/")


def collect_blobs(repo: BackupRepo, now: datetime) -> int:
    """Delete blobs that no bucket manifest references and that are older than the grace."""
    referenced = {o["sha256"] for m in repo.snapshots("bucket") for o in m["objects"]}
    doomed = []
    for item in repo.keys(OBJECTS):
        digest = str(item["Key"])[len(OBJECTS) :]
        modified: datetime = item["LastModified"]
        if digest not in referenced and now - modified > BLOB_GRACE:
            doomed.append({"Key": str(item["Key"])})
    for start in range(0, len(doomed), 1000):
        repo.client.delete_objects(
            Bucket=repo.bucket, Delete={"Objects": doomed[start : start + 1000]}
        )
    return len(doomed)
