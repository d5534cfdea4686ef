"""`eventfn backup bucket` / `restore bucket`: incremental, content-addressed object snapshots.

Object bytes live once under `bucket/objects/<sha256>` of the backup bucket; each snapshot's
manifest lists every object of the data bucket (key, size, sha256, source etag). An object
whose etag and size equal the previous snapshot's entry is not read again; an object whose
content is already stored is not written again. Keys gone since the previous snapshot are
recorded under `deleted`, never deleted anywhere.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventfn._backup_repo import (
    FORMAT_VERSION,
    BackupRepo,
    SnapshotCorrupt,
    TargetNotEmpty,
    iso,
    list_objects,
    require,
    sha256_bytes,
)

Clock = Callable[[], datetime]
OBJECTS = "bucket/objects/"
WORKERS = 8  # concurrent object transfers (boto3 clients are thread-safe)


@dataclass
class Source:
    """The data bucket to snapshot (any boto3 client and bucket name)."""

    client: Any
    bucket: str


def blob_key(sha256: str) -> str:
    """Where the content with this sha256 is stored in the backup bucket."""
    return f"{OBJECTS}{sha256}"


class _Copier:
    """Reads changed objects and stores new contents, from several threads at once."""

    def __init__(self, source: Source, repo: BackupRepo) -> None:
        self.source, self.repo = source, repo
        self._lock = threading.Lock()
        self._claimed: set[str] = set()
        self.read = self.copied = self.copied_bytes = 0

    def capture(self, key: str, etag: str) -> dict[str, Any]:
        body = self.source.client.get_object(Bucket=self.source.bucket, Key=key)["Body"].read()
        digest = sha256_bytes(body)
        with self._lock:
            self.read += 1
            first = digest not in self._claimed
            self._claimed.add(digest)
        if first and not self.repo.exists(blob_key(digest)):
            self.repo.client.put_object(Bucket=self.repo.bucket, Key=blob_key(digest), Body=body)
            with self._lock:
                self.copied += 1
                self.copied_bytes += len(body)
        return {"key": key, "size": len(body), "sha256": digest, "etag": etag}


def backup_bucket(
    source: Source, repo: BackupRepo, snap: str, clock: Clock, workers: int = WORKERS
) -> dict[str, Any]:
    """Snapshot every object of `source`; returns the manifest (with copy statistics)."""
    started, t0 = clock(), time.monotonic()
    previous = repo.latest("bucket")
    known = {o["key"]: o for o in previous["objects"]} if previous else {}
    copier = _Copier(source, repo)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future[dict[str, Any]] | dict[str, Any]] = []
        for item in list_objects(source.client, source.bucket):
            key, etag, size = str(item["Key"]), str(item["ETag"]).strip('"'), int(item["Size"])
            old = known.get(key)
            if old is not None and old["etag"] == etag and old["size"] == size:
                pending.append(old)  # unchanged since the previous snapshot: not read again
            else:
                pending.append(pool.submit(copier.capture, key, etag))
        objects = [p.result() if isinstance(p, Future) else p for p in pending]
    read, copied, copied_bytes = copier.read, copier.copied, copier.copied_bytes
    current = {o["key"] for o in objects}
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "bucket",
        "snapshot_id": snap,
        "source_bucket": source.bucket,
        "previous": previous["snapshot_id"] if previous else None,
        "started_at": iso(started),
        "ended_at": iso(clock()),
        "duration_seconds": round(time.monotonic() - t0, 3),
        "objects": objects,
        "deleted": sorted(set(known) - current),
        "bytes": sum(int(o["size"]) for o in objects),
        "read": read,
        "copied": copied,
        "copied_bytes": copied_bytes,
    }
    repo.write_manifest("bucket", snap, manifest)
    return manifest


def verify_bucket(repo: BackupRepo, manifest: dict[str, Any]) -> None:
    """Every referenced blob exists, has its size, and hashes to its name."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(lambda entry: _blob(repo, entry), _distinct(manifest)))


def _distinct(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return list({o["sha256"]: o for o in manifest["objects"]}.values())


def _blob(repo: BackupRepo, entry: dict[str, Any]) -> bytes:
    data = repo.get(blob_key(entry["sha256"]))
    require(sha256_bytes(data) == entry["sha256"], f"object {entry['key']}: sha256 mismatch")
    require(len(data) == entry["size"], f"object {entry['key']}: size mismatch")
    return data


def restore_bucket(
    repo: BackupRepo,
    snap: str,
    target: Source,
    prefix: str = "",
    *,
    force: bool = False,
    workers: int = WORKERS,
) -> dict[str, Any]:
    """Write every object of the snapshot to `target` under `prefix`, then read them back."""
    manifest = repo.manifest("bucket", snap)
    if not force and next(iter(list_objects(target.client, target.bucket, prefix)), None):
        raise TargetNotEmpty(
            f"s3://{target.bucket}/{prefix} is not empty: pass --force to overwrite"
        )

    def put(entry: dict[str, Any]) -> None:  # each object is checked before it is written
        body = _blob(repo, entry)
        target.client.put_object(Bucket=target.bucket, Key=prefix + entry["key"], Body=body)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, manifest["objects"]))
    return compare_bucket(manifest, target, prefix, workers)


def compare_bucket(
    manifest: dict[str, Any], target: Source, prefix: str = "", workers: int = WORKERS
) -> dict[str, Any]:
    """Every object of the manifest is in `target` with the same sha256; raises otherwise."""

    def check(entry: dict[str, Any]) -> None:
        body = target.client.get_object(Bucket=target.bucket, Key=prefix + entry["key"])["Body"]
        if hashlib.sha256(body.read()).hexdigest() != entry["sha256"]:
            raise SnapshotCorrupt(f"restored object {entry['key']} differs from the snapshot")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(check, manifest["objects"]))
    return {"objects": len(manifest["objects"]), "bytes": manifest["bytes"]}
