"""csv-ingest: CSV files uploaded under raw/ become partitioned Parquet under processed/.

Consumes `eventfn.storage.object.created.v1` for `raw/**.csv`, streams the object through
pyarrow's incremental CSV reader into a Parquet file (spooled to a temporary file), uploads it
with boto3's managed transfer (multipart above the threshold) and emits
`eventfn.dataset.file.processed.v1`. Ragged rows go to `quarantine/...csv` with their line
numbers. Output keys derive from the object key, its ETag and the event time, so a redelivery
overwrites its own output with the same bytes and a new version of the file never does.
See README.md for the settings and the errors.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC
from typing import Any, BinaryIO, cast

from eventfn import App, ConfigurationError, Context, DependencyUnavailable, Event
from eventfn._objects import validate_key
from eventfn._settings import env_number

from ._layout import Layout, event_time, is_input, layout_for
from ._storage import (
    CSV_CONTENT_TYPE,
    PARQUET_CONTENT_TYPE,
    StoredObject,
    delete_quietly,
    get_object,
    storage_errors,
    transfer_config,
    upload,
)
from .converter import DEFAULT_BLOCK_SIZE, Conversion, ConvertSettings, convert

CREATED_TYPE = "eventfn.storage.object.created.v1"
PROCESSED_TYPE = "eventfn.dataset.file.processed.v1"
ENV_DELIMITER = "CSV_INGEST_DELIMITER"
ENV_MULTIPART_THRESHOLD = "CSV_INGEST_MULTIPART_THRESHOLD"
ENV_MULTIPART_CHUNKSIZE = "CSV_INGEST_MULTIPART_CHUNKSIZE"
ENV_BLOCK_SIZE = "CSV_INGEST_BLOCK_SIZE"
DEFAULT_MULTIPART_BYTES = 8 * 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # outputs up to this size never touch the disk
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}

app = App("csv-ingest")


@dataclass(frozen=True)
class IngestConfig:
    """The function's settings (environment variables, read once at start)."""

    delimiter: str | None = None
    multipart_threshold: int = DEFAULT_MULTIPART_BYTES
    multipart_chunksize: int = DEFAULT_MULTIPART_BYTES
    block_size: int = DEFAULT_BLOCK_SIZE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestConfig:
        raw = env.get(ENV_DELIMITER, "")
        delimiter = _DELIMITER_NAMES.get(raw.lower(), raw) or None
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
            raise ConfigurationError(f"{ENV_DELIMITER} must be one character or tab, not {raw!r}")
        return cls(
            delimiter=delimiter,
            multipart_threshold=env_number(
                env, ENV_MULTIPART_THRESHOLD, DEFAULT_MULTIPART_BYTES, int, positive=True
            ),
            multipart_chunksize=env_number(
                env, ENV_MULTIPART_CHUNKSIZE, DEFAULT_MULTIPART_BYTES, int, positive=True
            ),
            block_size=env_number(env, ENV_BLOCK_SIZE, DEFAULT_BLOCK_SIZE, int, positive=True),
        )


class CsvIngest:
    """The handler and its configuration (read from the environment when the function starts)."""

    def __init__(self) -> None:
        self.config = IngestConfig()

    def configure(self) -> None:
        """Start hook."""
        self.config = IngestConfig.from_env(os.environ)

    def __call__(self, event: Event, ctx: Context) -> None:
        data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
        key = str(data.get("key") or event.subject or "")
        if not is_input(key):
            ctx.logger.info("ignored: %r is not a raw/**.csv object", key)
            return
        started = time.perf_counter()
        bucket = str(data["bucket"])
        client = ctx.objects.client
        with storage_errors(ctx.logger):
            first = get_object(client, bucket, validate_key(key), version_id=data.get("version_id"))
        opener = _Opener(client, bucket, key, first, data.get("version_id"))
        with closing(opener):
            when = event_time(data, event.time, first.last_modified)
            layout = layout_for(key, first.etag, when)
            validate_key(layout.output_key)
            validate_key(layout.quarantine_key)
            settings = ConvertSettings(
                source_file=f"s3://{bucket}/{key}",
                processed_at=when,
                delimiter=self.config.delimiter,
                block_size=self.config.block_size,
            )
            result, size = self._convert_and_upload(ctx, opener, layout, settings)
        processed = _processed(bucket, key, first.etag, layout, result)
        processed.update(
            bytes_out=size,
            duration_ms=round((time.perf_counter() - started) * 1000),
            processed_at=when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        )
        ctx.emit(PROCESSED_TYPE, processed, subject=key)
        ctx.logger.info(
            "%s: %d rows, %d quarantined -> %s",
            key,
            result.rows,
            result.quarantined_rows,
            layout.output_key,
        )

    def _convert_and_upload(
        self, ctx: Context, opener: _Opener, layout: Layout, settings: ConvertSettings
    ) -> tuple[Conversion, int]:
        """Convert into temporary files; upload only a complete result."""
        with _spooled() as parquet, _spooled() as quarantine:
            with storage_errors(ctx.logger):
                result = convert(opener, parquet, quarantine, settings)
            size = parquet.seek(0, os.SEEK_END)
            self._upload(
                ctx, opener, layout, parquet, quarantine if result.quarantined_rows else None
            )
        return result, size

    def _upload(
        self,
        ctx: Context,
        opener: _Opener,
        layout: Layout,
        parquet: BinaryIO,
        quarantine: BinaryIO | None,
    ) -> None:
        """Upload the quarantine (if any), then the Parquet; on failure remove what got in."""
        config = self.config
        transfer = transfer_config(config.multipart_threshold, config.multipart_chunksize)
        client, bucket = opener.client, opener.bucket
        uploaded: list[str] = []
        try:
            with storage_errors(ctx.logger):
                if quarantine is not None:
                    upload(
                        client,
                        bucket,
                        layout.quarantine_key,
                        quarantine,
                        content_type=CSV_CONTENT_TYPE,
                        config=transfer,
                    )
                    uploaded.append(layout.quarantine_key)
                upload(
                    client,
                    bucket,
                    layout.output_key,
                    parquet,
                    content_type=PARQUET_CONTENT_TYPE,
                    config=transfer,
                )
        except DependencyUnavailable:
            delete_quietly(client, bucket, uploaded, ctx.logger)
            raise


class _Opener:
    """Opens the object for the converter: the first GET's body, then GETs of the same ETag."""

    def __init__(
        self, client: Any, bucket: str, key: str, first: StoredObject, version_id: Any
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.etag = first.etag
        self.version_id = version_id if isinstance(version_id, str) else None
        self._first: BinaryIO | None = first.body

    def __call__(self) -> BinaryIO:
        if self._first is not None:
            body, self._first = self._first, None
            return body
        again = get_object(
            self.client, self.bucket, self.key, version_id=self.version_id, if_match=self.etag
        )
        return again.body

    def close(self) -> None:
        """Release the first body when the converter never took it (an early failure)."""
        if self._first is not None:
            self._first.close()
            self._first = None


def _spooled() -> BinaryIO:
    """A temporary file kept in memory up to SPOOL_BYTES, then on disk (/tmp)."""
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b"))


def _processed(
    bucket: str, key: str, etag: str, layout: Layout, result: Conversion
) -> dict[str, Any]:
    """The data of `eventfn.dataset.file.processed.v1` (without the measured fields)."""
    return {
        "bucket": bucket,
        "key": key,
        "etag": etag,
        "dataset": layout.dataset,
        "output_key": layout.output_key,
        "rows": result.rows,
        "columns": [{"name": name, "type": type_} for name, type_ in result.columns],
        "bytes_in": result.bytes_in,
        "quarantined_rows": result.quarantined_rows,
        "quarantine_key": layout.quarantine_key if result.quarantined_rows else None,
        "delimiter": result.delimiter,
        "retyped_columns": list(result.retyped_columns),
    }


ingest = CsvIngest()
app.on_start(ingest.configure)
app.on(CREATED_TYPE)(ingest)
