"""The backup bucket: snapshot ids, manifests, verification sidecars, and listing.

Layout: `<kind>/<snapshot-id>/...` data files and `<kind>/<snapshot-id>/manifest.json`, written
last, so a snapshot without a manifest is incomplete. `verified.json` next to the manifest
records the last successful verification. Bucket snapshots share `bucket/objects/<sha256>`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from eventfn._errors import ConfigurationError, PermanentError
from eventfn._objects import ObjectStore

ENV_BACKUP_BUCKET: Final = "EVENTFN_BACKUP_BUCKET"
ENV_BACKUP_RUN_ID: Final = "EVENTFN_BACKUP_RUN_ID"
DEFAULT_BACKUP_BUCKET: Final = "eventfn-backups"
KINDS: Final = ("db", "bucket", "cluster")
MANIFEST: Final = "manifest.json"
VERIFIED: Final = "verified.json"
FORMAT_VERSION: Final = 1
_SLUG = re.compile(r"[^A-Za-z0-9.]+")


class SnapshotNotFound(PermanentError):
    """No complete snapshot with that id."""

    code = "snapshot-not-found"
    title = "Snapshot not found"


class SnapshotCorrupt(PermanentError):
    """A snapshot file is missing or does not match its manifest."""

    code = "snapshot-corrupt"
    title = "Snapshot corrupt"


class TargetNotEmpty(ConfigurationError):
    """The restore target holds data and --force was not given."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with seconds precision and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """The inverse of `iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def default_run_id(kind: str, now: datetime) -> str:
    """One snapshot per kind and UTC day unless a run id says otherwise."""
    return f"{now.astimezone(UTC):%Y%m%d}-{kind}"


def snapshot_id(kind: str, run_id: str) -> str:
    """A stable, key-safe id derived from the run's idempotency token."""
    slug = _SLUG.sub("-", run_id).strip("-")[:48] or "run"
    digest = hashlib.sha256(f"{kind}\x1f{run_id}".encode()).hexdigest()[:10]
    return f"{slug}-{digest}"


def kind_of(snapshot: str) -> str:
    """`db/<id>` style references are accepted where an id is expected."""
    kind = snapshot.split("/", 1)[0]
    if "/" not in snapshot or kind not in KINDS:
        raise SnapshotNotFound("a snapshot is named <kind>/<id>, kind one of db, bucket, cluster")
    return kind


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Sorted-key, compact JSON: manifests hash and diff the same everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class BackupRepo:
    """The backup bucket, as the backup commands use it."""

    store: ObjectStore

    @property
    def client(self) -> Any:
        """The boto3 client."""
        return self.store.client

    @property
    def bucket(self) -> str:
        """The backup bucket's name."""
        return self.store.bucket

    def ensure_bucket(self) -> None:
        """Create the backup bucket when it does not exist yet."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes) -> None:
        """Write one object."""
        self.store.put(key, data)

    def get(self, key: str) -> bytes:
        """Read one object; SnapshotCorrupt when it is missing."""
        from botocore.exceptions import ClientError

        try:
            return self.store.get(key)
        except ClientError:
            raise SnapshotCorrupt(f"{key} is missing from the backup bucket") from None

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        from botocore.exceptions import ClientError

        try:
            self.store.head(key)
        except ClientError:
            return False
        return True

    def keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under `prefix` (Key, Size, ETag, LastModified)."""
        yield from list_objects(self.client, self.bucket, prefix)

    def write_manifest(self, kind: str, snap: str, manifest: Mapping[str, Any]) -> None:
        """The completion marker of a snapshot."""
        self.put(f"{kind}/{snap}/{MANIFEST}", canonical_json(dict(manifest)))

    def manifest(self, kind: str, snap: str) -> dict[str, Any]:
        """The manifest of a complete snapshot; SnapshotNotFound otherwise."""
        if not self.exists(f"{kind}/{snap}/{MANIFEST}"):
            raise SnapshotNotFound(f"no complete snapshot {kind}/{snap}")
        loaded: dict[str, Any] = json.loads(self.get(f"{kind}/{snap}/{MANIFEST}"))
        return loaded

    def has_manifest(self, kind: str, snap: str) -> bool:
        """Whether the snapshot is complete."""
        return self.exists(f"{kind}/{snap}/{MANIFEST}")

    def mark_verified(self, kind: str, snap: str, now: datetime, how: str) -> None:
        """Record a successful verification (or restore drill) of the snapshot."""
        self.put(f"{kind}/{snap}/{VERIFIED}", canonical_json({"verified_at": iso(now), "by": how}))

    def verified_at(self, kind: str, snap: str) -> datetime | None:
        """When the snapshot was last verified, or None."""
        if not self.exists(f"{kind}/{snap}/{VERIFIED}"):
            return None
        return parse_iso(str(json.loads(self.get(f"{kind}/{snap}/{VERIFIED}"))["verified_at"]))

    def snapshots(self, kind: str) -> list[dict[str, Any]]:
        """Manifests of every complete snapshot of `kind`, oldest first."""
        found = []
        for item in self.keys(f"{kind}/"):
            parts = str(item["Key"]).split("/")
            if len(parts) == 3 and parts[2] == MANIFEST:
                found.append(self.manifest(kind, parts[1]))
        return sorted(found, key=lambda m: (str(m["started_at"]), str(m["snapshot_id"])))

    def latest(self, kind: str) -> dict[str, Any] | None:
        """The newest complete snapshot of `kind`."""
        found = self.snapshots(kind)
        return found[-1] if found else None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many."""
        keys = [str(item["Key"]) for item in self.keys(prefix)]
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk})
        return len(keys)


def list_objects(client: Any, bucket: str, prefix: str = "") -> Iterator[dict[str, Any]]:
    """Every object of a bucket under `prefix`, in key order."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def require(condition: bool, detail: str) -> None:
    """SnapshotCorrupt with `detail` unless `condition`."""
    if not condition:
        raise SnapshotCorrupt(detail)


def check_kind(kind: str) -> str:
    """`kind` when it is a snapshot kind; ConfigurationError otherwise."""
    if kind not in KINDS:
        raise ConfigurationError(f"unknown snapshot kind {kind!r}")
    return kind
