"""Object storage through the S3 API (boto3), with object keys validated before use."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from eventfn._errors import DependencyUnavailable, PermanentError

if TYPE_CHECKING:
    from eventfn._settings import Settings

MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
_shared: dict[tuple[str | None, ...], ObjectStore] = {}
_shared_lock = threading.Lock()


class InvalidObjectKey(PermanentError, ValueError):
    """An object key that could escape its prefix or that S3 would refuse."""

    code = "invalid-object-key"
    title = "Invalid object key"


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is safe: relative, no `..` segment, no control chars."""
    if not key:
        raise InvalidObjectKey("object key is empty", field="key")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidObjectKey(f"object key exceeds {MAX_KEY_BYTES} bytes", field="key")
    if key.startswith("/") or "\\" in key:
        raise InvalidObjectKey(
            "object key must be a relative path with '/' separators", field="key"
        )
    if any(part in ("..", ".") for part in key.split("/")):
        raise InvalidObjectKey("object key must not contain '.' or '..' segments", field="key")
    if _CONTROL.search(key):
        raise InvalidObjectKey("object key contains control characters", field="key")
    return key


@dataclass
class ObjectStore:
    """A bucket on an S3-compatible endpoint."""

    client: Any
    bucket: str

    @classmethod
    def shared(cls, settings: Settings) -> ObjectStore:
        """The process's store for these settings: building a boto3 client costs ~20 ms of CPU,
        and clients are thread-safe, so every event of a process shares one (per endpoint,
        region, bucket and AWS credentials in the environment)."""
        key = (
            settings.s3_endpoint_url, settings.s3_region, settings.bucket,
            *(os.environ.get(name) for name in _CREDENTIAL_ENV),
        )  # fmt: skip
        with _shared_lock:
            store = _shared.get(key)
            if store is None:
                store = _shared[key] = cls.from_settings(settings)
            return store

    @classmethod
    def from_settings(cls, settings: Settings, bucket: str | None = None) -> ObjectStore:
        """A boto3 client for the configured endpoint (credentials from the usual AWS env)."""
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )
        return cls(client=client, bucket=bucket or settings.bucket)

    def put(self, key: str, body: bytes | BinaryIO, content_type: str | None = None) -> str:
        """Store an object; returns its ETag (without quotes)."""
        extra = {"ContentType": content_type} if content_type else {}
        response = self._call(
            "put_object", Bucket=self.bucket, Key=validate_key(key), Body=body, **extra
        )
        return str(response.get("ETag", "")).strip('"')

    def get(self, key: str) -> bytes:
        """Read a whole object."""
        response = self._call("get_object", Bucket=self.bucket, Key=validate_key(key))
        body: bytes = response["Body"].read()
        return body

    def open(self, key: str) -> BinaryIO:
        """A streaming body for large objects."""
        response = self._call("get_object", Bucket=self.bucket, Key=validate_key(key))
        stream: BinaryIO = response["Body"]
        return stream

    def head(self, key: str) -> dict[str, Any]:
        """Object metadata (size, etag, content type)."""
        response: dict[str, Any] = self._call(
            "head_object", Bucket=self.bucket, Key=validate_key(key)
        )
        return response

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError

        try:
            return getattr(self.client, operation)(**kwargs)
        except (EndpointConnectionError, ConnectionError):
            raise DependencyUnavailable("object storage is unreachable", retry_after=1) from None
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            if status >= 500 or status in (408, 429):
                raise DependencyUnavailable("object storage failed", retry_after=1) from None
            raise
