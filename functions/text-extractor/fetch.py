"""Reading one object version from S3: HEAD for its size, then a bounded streaming download.

Both requests carry `If-Match: "<etag>"` when the event names an ETag, so the bytes extracted
are always those of the version the event announced. A version that was overwritten since is
reported as `Superseded` (its successor has an event of its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from eventfn import DependencyUnavailable
from eventfn._objects import ObjectStore, validate_key

from .errors import DocumentTooLarge, ObjectNotFound

CHUNK_BYTES = 256 * 1024
_RETRYABLE_STATUSES = (408, 429)


class Superseded(Exception):
    """The object no longer has the ETag of the event: a newer version replaced it."""


@dataclass(frozen=True)
class ObjectVersion:
    """What HEAD says about the object."""

    key: str
    etag: str
    size: int
    content_type: str | None


@contextmanager
def storage_errors(key: str) -> Iterator[None]:
    """Map S3 failures: unreachable or 5xx -> 503 (retried), 404 -> permanent, 412 -> superseded."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except (ConnectionError, HTTPClientError):
        raise DependencyUnavailable("object storage is unreachable", retry_after=1) from None
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        if status == 404:
            raise ObjectNotFound(f"object {key!r} does not exist", field="key") from None
        if status == 412:
            raise Superseded(key) from None
        if status >= 500 or status in _RETRYABLE_STATUSES:
            raise DependencyUnavailable("object storage failed", retry_after=1) from None
        raise


def _version_condition(etag: str) -> dict[str, str]:
    return {"IfMatch": f'"{etag}"'} if etag else {}


def head(store: ObjectStore, key: str, etag: str) -> ObjectVersion:
    """Size, ETag and content type of the object version `etag` (any version if empty)."""
    with storage_errors(key):
        response: dict[str, Any] = store.client.head_object(
            Bucket=store.bucket, Key=validate_key(key), **_version_condition(etag)
        )
    return ObjectVersion(
        key=key,
        etag=str(response.get("ETag", "")).strip('"') or etag,
        size=int(response.get("ContentLength", 0)),
        content_type=response.get("ContentType") or None,
    )


def download(
    store: ObjectStore, version: ObjectVersion, *, max_bytes: int, spool_bytes: int
) -> IO[bytes]:
    """The object's bytes in a spooled file (in memory up to `spool_bytes`, then on disk).

    The caller closes the file. More than `max_bytes` -> `DocumentTooLarge`, however many
    bytes HEAD announced.
    """
    spool: IO[bytes] = SpooledTemporaryFile(max_size=spool_bytes)  # noqa: SIM115 - returned
    try:
        with storage_errors(version.key):
            response = store.client.get_object(
                Bucket=store.bucket,
                Key=validate_key(version.key),
                **_version_condition(version.etag),
            )
            _copy_bounded(response["Body"], spool, max_bytes)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _copy_bounded(body: Any, spool: IO[bytes], max_bytes: int) -> None:
    total = 0
    try:
        while chunk := body.read(CHUNK_BYTES):
            total += len(chunk)
            if total > max_bytes:
                raise DocumentTooLarge(f"the object exceeds {max_bytes} bytes", field="size")
            spool.write(chunk)
    finally:
        body.close()
