"""The object store as csv-ingest uses it: streaming GETs, managed (multipart) uploads, deletes.

Every storage failure becomes an eventfn error here: a missing object is permanent
(`csv-object-missing`), anything else (unreachable, 5xx, throttled, the object replaced while
it was being read) is `DependencyUnavailable` (503, retried by the broker).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from eventfn import DependencyUnavailable

from ._errors import CsvObjectMissing

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest multipart part (all but the last)


@dataclass(frozen=True)
class StoredObject:
    """An open object: its streaming body and what the GET said about it."""

    body: BinaryIO
    etag: str
    size: int
    last_modified: datetime


@contextmanager
def storage_errors(logger: logging.Logger | None = None) -> Iterator[None]:
    """Map boto3/botocore failures raised inside the block to eventfn errors."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        code = str(error.response.get("Error", {}).get("Code", ""))
        _log(logger, f"{code or status}")
        if status == 404 or code in ("NoSuchKey", "NoSuchBucket"):
            raise CsvObjectMissing("the object does not exist", field="data.key") from None
        if status == 412:
            raise DependencyUnavailable(
                "the object was replaced while it was being read", retry_after=1
            ) from None
        raise DependencyUnavailable("object storage refused a request", retry_after=1) from None
    except (BotoCoreError, Boto3Error, HTTPError, ConnectionError) as error:
        _log(logger, type(error).__name__)
        raise DependencyUnavailable("object storage is unreachable", retry_after=1) from None


def _log(logger: logging.Logger | None, what: str) -> None:
    if logger is not None:
        logger.warning("object storage failed: %s", what)


def get_object(
    client: Any,
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    if_match: str | None = None,
) -> StoredObject:
    """GET `key` as a stream (`if_match`: only this ETag, else 412 -> retryable)."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        request["VersionId"] = version_id
    if if_match:
        request["IfMatch"] = f'"{if_match}"'
    response = client.get_object(**request)
    modified = response.get("LastModified")
    return StoredObject(
        body=response["Body"],
        etag=str(response.get("ETag", "")).strip('"'),
        size=int(response.get("ContentLength", 0)),
        last_modified=modified if isinstance(modified, datetime) else datetime.now(UTC),
    )


def transfer_config(threshold: int, chunksize: int) -> Any:
    """boto3's managed-transfer settings: multipart above `threshold`, parts of `chunksize`."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=threshold,
        multipart_chunksize=max(chunksize, MIN_PART_BYTES),
        max_concurrency=4,  # memory: at most about 4 parts in flight
        use_threads=True,
    )


def upload(
    client: Any, bucket: str, key: str, fileobj: BinaryIO, *, content_type: str, config: Any
) -> None:
    """Upload `fileobj` from its start with boto3's managed transfer (multipart when large).

    A failed multipart upload is aborted by the transfer manager: no part is left behind.
    """
    fileobj.seek(0)
    client.upload_fileobj(
        fileobj, bucket, key, ExtraArgs={"ContentType": content_type}, Config=config
    )


def delete_quietly(client: Any, bucket: str, keys: list[str], logger: logging.Logger) -> None:
    """Delete `keys` (absent ones are fine); failures are logged, never raised."""
    for key in keys:
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception as error:
            logger.warning("could not delete %s: %s", key, type(error).__name__)
