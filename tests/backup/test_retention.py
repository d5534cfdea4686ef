"""`backup prune`: N daily / M weekly, only behind a newer verified snapshot; blob collection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eventfn._backup_bucket import Source, backup_bucket
from eventfn._backup_cluster import backup_cluster
from eventfn._backup_repo import BackupRepo, list_objects
from eventfn._backup_retention import prune

RESOURCE = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}


def _daily_cluster_snapshots(repo: BackupRepo, clock: Any, days: int) -> list[str]:
    names = []
    for day in range(days):  # 2026-11-02 (a Monday) .. at 02:00 UTC
        snap = f"day-{day + 2:02d}"
        backup_cluster([RESOURCE], "test", repo, snap, clock)
        names.append(f"cluster/{snap}")
        clock.advance(days=1)
    return names


def test_nothing_is_pruned_until_a_newer_snapshot_is_verified(repo: BackupRepo, clock: Any) -> None:
    names = _daily_cluster_snapshots(repo, clock, 21)
    report = prune(repo, clock(), keep_daily=7, keep_weekly=4)
    assert report.deleted == []
    assert len(report.unproven) == 12
    assert len(repo.snapshots("cluster")) == 21
    assert names[-1] in report.kept


def test_daily_and_weekly_snapshots_are_kept_the_rest_deleted(repo: BackupRepo, clock: Any) -> None:
    _daily_cluster_snapshots(repo, clock, 21)
    repo.mark_verified("cluster", "day-22", clock(), "test")
    report = prune(repo, clock(), keep_daily=7, keep_weekly=4)
    kept = {m["snapshot_id"] for m in repo.snapshots("cluster")}
    # the last seven days (16..22) and the newest of each ISO week (Sundays 8, 15, 22)
    assert kept == {"day-08", "day-15"} | {f"day-{d}" for d in range(16, 23)}
    assert len(report.deleted) == 12
    assert not list(list_objects(repo.client, repo.bucket, "cluster/day-02/"))


def test_only_snapshots_older_than_the_newest_verified_one_are_deleted(
    repo: BackupRepo, clock: Any
) -> None:
    _daily_cluster_snapshots(repo, clock, 21)
    repo.mark_verified("cluster", "day-10", clock(), "test")
    report = prune(repo, clock(), keep_daily=7, keep_weekly=4)
    assert sorted(report.deleted) == [f"cluster/day-{d:02d}" for d in (2, 3, 4, 5, 6, 7, 9)]
    assert sorted(report.unproven) == [f"cluster/day-{d}" for d in (10, 11, 12, 13, 14)]


def test_blobs_of_pruned_bucket_snapshots_are_collected_after_the_grace_period(
    source: Source, repo: BackupRepo, clock: Any
) -> None:
    source.client.put_object(Bucket=source.bucket, Key="a", Body=b"version 1")
    source.client.put_object(Bucket=source.bucket, Key="b", Body=b"stays")
    backup_bucket(source, repo, "old", clock)
    clock.advance(days=30)
    source.client.put_object(Bucket=source.bucket, Key="a", Body=b"version 2")
    backup_bucket(source, repo, "new", clock)
    repo.mark_verified("bucket", "new", clock(), "test")
    soon = datetime.now(UTC)
    within_grace = prune(repo, soon, keep_daily=1, keep_weekly=0)
    assert within_grace.deleted == ["bucket/old"]
    assert within_grace.blobs_deleted == 0
    later = prune(repo, soon + timedelta(hours=7), keep_daily=1, keep_weekly=0)
    assert later.blobs_deleted == 1
    blobs = list(list_objects(repo.client, repo.bucket, "bucket/objects/"))
    assert len(blobs) == 2  # "version 2" and "stays"
