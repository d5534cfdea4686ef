"""The object an `eventfn.storage.object.created.v1` event names, read at the version it names.

The read is pinned to the event's ETag (`If-Match`): when the object was overwritten after the
event, S3 answers 412 and the event is skipped — the newer version brings its own event. The
body is wrapped so that a network failure in the middle of the stream is retryable (503) and
the parsers see a plain buffered binary stream.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, NoReturn

from eventfn import DependencyUnavailable, Event, PermanentError
from eventfn._objects import validate_key


class ObjectUnreadable(PermanentError):
    """The object named by the event does not exist (any more) or cannot be read at all."""

    status = 422
    code = "object-unreadable"
    title = "Object cannot be read"


@dataclass(frozen=True)
class SourceObject:
    """Bucket, key and ETag (empty when the event carries none) of the created object."""

    bucket: str
    key: str
    etag: str

    @classmethod
    def from_event(cls, event: Event, prefix: str, suffix: str) -> SourceObject | None:
        """The object of `event`, or None when its key is outside `prefix`*`suffix`."""
        data: Any = event.data
        if not isinstance(data, dict):
            return None
        key, bucket = data.get("key"), data.get("bucket")
        if not isinstance(key, str) or not key.startswith(prefix) or not key.endswith(suffix):
            return None
        if not isinstance(bucket, str) or not bucket:
            return None
        return cls(bucket, validate_key(key), str(data.get("etag") or "").strip('"'))


@dataclass
class OpenedObject:
    """A readable object version: its ETag and a buffered binary stream of its body."""

    etag: str
    body: io.BufferedReader


class _GuardedBody(io.RawIOBase):
    """A raw stream over a botocore body whose transport failures become retryable errors."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from botocore.exceptions import BotoCoreError

        try:
            chunk: bytes = self._body.read(len(buffer))
        except (BotoCoreError, OSError):
            raise DependencyUnavailable("object storage failed mid-read", retry_after=1) from None
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def open_object(client: Any, source: SourceObject) -> OpenedObject | None:
    """Open the object at the event's version; None when it has been overwritten since."""
    from botocore.exceptions import BotoCoreError, ClientError

    request: dict[str, str] = {"Bucket": source.bucket, "Key": source.key}
    if source.etag:
        request["IfMatch"] = source.etag
    try:
        response = client.get_object(**request)
    except ClientError as error:
        status = _status(error)
        if status == 412:  # overwritten since, or deleted (some stores answer 412 then too)
            _head(client, source)
            return None
        _raise_for(status, source)
    except BotoCoreError:
        raise DependencyUnavailable("object storage is unreachable", retry_after=1) from None
    etag = str(response.get("ETag") or "").strip('"') or source.etag
    return OpenedObject(etag, io.BufferedReader(_GuardedBody(response["Body"]), 64 * 1024))


def _head(client: Any, source: SourceObject) -> None:
    """Raise unless the object still exists (in some version)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_object(Bucket=source.bucket, Key=source.key)
    except ClientError as error:
        _raise_for(_status(error), source)
    except BotoCoreError:
        raise DependencyUnavailable("object storage is unreachable", retry_after=1) from None


def _status(error: Any) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))


def _raise_for(status: int, source: SourceObject) -> NoReturn:
    if status >= 500 or status in (403, 408, 429):
        raise DependencyUnavailable("object storage failed", retry_after=1)
    raise ObjectUnreadable(
        f"object {source.key!r} in bucket {source.bucket!r} cannot be read (HTTP {status})",
        field="key",
    )
