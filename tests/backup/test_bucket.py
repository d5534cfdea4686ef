"""`backup bucket` / `restore bucket`: incremental, content-addressed, restorable bytes."""

from __future__ import annotations

from typing import Any

import pytest

from eventfn._backup_bucket import Source, backup_bucket, blob_key, restore_bucket, verify_bucket
from eventfn._backup_repo import BackupRepo, SnapshotCorrupt, TargetNotEmpty, list_objects


def _put(source: Source, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        source.client.put_object(Bucket=source.bucket, Key=key, Body=body)


def _read_all(client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    return {
        str(o["Key"])[len(prefix) :]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in list_objects(client, bucket, prefix)
    }


ORIGINAL = {
    "documents/a.txt": b"alpha",
    "documents/b.txt": b"bravo" * 1000,
    "raw/c.csv": b"id,x\n1,2\n",
    "raw/copy-of-a.txt": b"alpha",  # same content as a.txt: stored once
}


def test_snapshot_then_delete_and_modify_then_restore_gives_identical_bytes(
    source: Source, repo: BackupRepo, clock: Any
) -> None:
    _put(source, ORIGINAL)
    manifest = backup_bucket(source, repo, "snap-1", clock)
    assert manifest["copied"] == 3  # four objects, three distinct contents
    assert {o["key"] for o in manifest["objects"]} == set(ORIGINAL)
    source.client.delete_object(Bucket=source.bucket, Key="documents/a.txt")
    _put(source, {"raw/c.csv": b"id,x\n1,3\n", "new.txt": b"new"})
    result = restore_bucket(repo, "snap-1", source, "restored/")
    assert result["objects"] == 4
    assert _read_all(source.client, source.bucket, "restored/") == ORIGINAL


def test_second_snapshot_copies_only_changed_objects_and_records_deletions(
    source: Source, repo: BackupRepo, clock: Any
) -> None:
    _put(source, {f"docs/{i}.txt": f"content {i}".encode() for i in range(20)})
    first = backup_bucket(source, repo, "snap-1", clock)
    assert (first["read"], first["copied"]) == (20, 20)
    _put(source, {"docs/3.txt": b"changed", "docs/new.txt": b"brand new"})
    source.client.delete_object(Bucket=source.bucket, Key="docs/7.txt")
    clock.advance(days=1)
    second = backup_bucket(source, repo, "snap-2", clock)
    assert (second["read"], second["copied"]) == (2, 2)
    assert second["deleted"] == ["docs/7.txt"]
    assert second["previous"] == "snap-1"
    assert len(second["objects"]) == 20
    blobs = [o for o in list_objects(repo.client, repo.bucket, "bucket/objects/")]
    assert len(blobs) == 22
    clock.advance(days=1)
    third = backup_bucket(source, repo, "snap-3", clock)
    assert (third["read"], third["copied"], third["deleted"]) == (0, 0, [])
    # the old snapshot still restores completely, deleted object included
    target = Source(source.client, "scratch")
    source.client.create_bucket(Bucket="scratch")
    restore_bucket(repo, "snap-1", target)
    assert _read_all(source.client, "scratch")["docs/7.txt"] == b"content 7"
    assert _read_all(source.client, "scratch")["docs/3.txt"] == b"content 3"


def test_a_corrupted_object_is_caught_by_verify_and_by_restore(
    source: Source, repo: BackupRepo, clock: Any
) -> None:
    _put(source, ORIGINAL)
    manifest = backup_bucket(source, repo, "snap-1", clock)
    verify_bucket(repo, manifest)
    entry = next(o for o in manifest["objects"] if o["key"] == "raw/c.csv")
    repo.client.put_object(Bucket=repo.bucket, Key=blob_key(entry["sha256"]), Body=b"id,x\n1,9\n")
    with pytest.raises(SnapshotCorrupt, match=r"raw/c\.csv"):
        verify_bucket(repo, manifest)
    with pytest.raises(SnapshotCorrupt):
        restore_bucket(repo, "snap-1", source, "restored/")


def test_a_non_empty_target_is_refused_without_force(
    source: Source, repo: BackupRepo, clock: Any
) -> None:
    _put(source, ORIGINAL)
    backup_bucket(source, repo, "snap-1", clock)
    _put(source, {"documents/a.txt": b"overwritten"})
    with pytest.raises(TargetNotEmpty):
        restore_bucket(repo, "snap-1", source)
    restore_bucket(repo, "snap-1", source, force=True)
    assert _read_all(source.client, source.bucket) == ORIGINAL
