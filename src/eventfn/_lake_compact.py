"""Hourly compaction: a closed hour's NDJSON batches of one type become one Parquet file.

For each type and closed hour with events not yet in Parquet:

1. flush that type/hour's unwritten events (late arrivals included);
2. read the hour's archived rows from `lake_events` — the ledger, exactly one row per event, so
   a batch left twice in the lake can never double an event in the Parquet file;
3. write `compacted.parquet` (replacing an earlier one: late events re-compact the whole hour)
   and read it back: its row count must equal the ledger's;
4. delete the hour's NDJSON objects, except those holding events that arrived meanwhile;
5. point the rows at the Parquet object.

A failure before 5 leaves the rows pointing at NDJSON, so the next run does the hour again.
An hour is closed once it lies entirely in the past; compacting an open one is refused.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import or_, select, update

from eventfn._binary import parse_time
from eventfn._errors import ConfigurationError
from eventfn._lake import (
    NDJSON_SUFFIX,
    PARQUET_CONTENT_TYPE,
    compacted_key,
    hour_of,
    is_closed,
    partition_prefix,
)
from eventfn._lake_flush import UploadFailed, flush_all, put_object
from eventfn._store import connect_read_only
from eventfn._tables_domain import lake_events

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy import Connection, Engine

    from eventfn._objects import ObjectStore

COLUMNS: Final = (
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data_json",
    "data_base64",
    "extensions_json",
)
_CORE: Final = ("id", "source", "type", "subject", "time", "datacontenttype", "dataschema")
_CHUNK: Final = 500
_log = logging.getLogger("eventfn.lake")


class HourStillOpen(ConfigurationError):
    """Compaction was asked for an hour that has not ended yet."""


class CompactionFailed(Exception):
    """Object storage failed during a compaction; the hour is retried by the next run."""


@dataclass
class CompactionReport:
    """What `compact` did: the hours compacted and those that failed (type, hour, reason)."""

    compacted: list[CompactedHour] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CompactedHour:
    """One type/hour turned into Parquet."""

    event_type: str
    hour: str
    key: str
    rows: int
    deleted: tuple[str, ...]


def parquet_schema() -> pa.Schema:
    """The columns of a compacted hour; `time` in UTC, data as JSON text or base64."""
    import pyarrow as pa

    types = {"time": pa.timestamp("us", tz="UTC")}
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])


def parquet_row(line: str) -> dict[str, Any]:
    """One NDJSON line (a structured-mode CloudEvent) as a Parquet row."""
    document: dict[str, Any] = json.loads(line)
    row: dict[str, Any] = {name: document.pop(name, None) for name in _CORE}
    if row["time"] is not None:
        row["time"] = parse_time(row["time"]).astimezone(UTC)
    row["data_json"] = (
        json.dumps(document.pop("data"), ensure_ascii=False, separators=(",", ":"))
        if "data" in document
        else None
    )
    row["data_base64"] = document.pop("data_base64", None)
    document.pop("specversion", None)
    row["extensions_json"] = json.dumps(document, sort_keys=True) if document else None
    return row


def parquet_bytes(lines: Iterable[str]) -> tuple[bytes, int]:
    """The Parquet file of the lines (ordered by time, source, id) and its row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(
        (parquet_row(line) for line in lines),
        key=lambda row: (row["time"] is not None, row["time"], row["source"], row["id"]),
    )
    table = pa.Table.from_pylist(rows, schema=parquet_schema())
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue(), table.num_rows


def pending_hours(connection: Connection, before_hour: str) -> list[tuple[str, str]]:
    """(type, hour) pairs before `before_hour` with events not in Parquet yet."""
    query = (
        select(lake_events.c.event_type, lake_events.c.hour)
        .where(
            lake_events.c.hour < before_hour,
            or_(
                lake_events.c.object_key.is_(None),
                lake_events.c.object_key.like(f"%{NDJSON_SUFFIX}"),
            ),
        )
        .group_by(lake_events.c.event_type, lake_events.c.hour)
        .order_by(lake_events.c.hour, lake_events.c.event_type)
    )
    return [(str(row.event_type), str(row.hour)) for row in connection.execute(query)]


def compact(
    engine: Engine,
    store: ObjectStore,
    now: datetime,
    *,
    batch_rows: int,
    hour: str | None = None,
) -> CompactionReport:
    """Compact every closed hour with pending events (or only `hour`, which must be closed).

    An hour that fails is reported and the others go on.
    """
    if hour is not None and not is_closed(hour, now):
        raise HourStillOpen(f"hour {hour} is still open at {now.isoformat()}: not compacted")
    with connect_read_only(engine) as connection:
        groups = pending_hours(connection, hour_of(now))
    report = CompactionReport()
    for event_type, group_hour in groups:
        if hour is not None and group_hour != hour:
            continue
        try:
            done = compact_hour(engine, store, event_type, group_hour, batch_rows=batch_rows)
        except CompactionFailed as error:
            _log.warning("lake: %s %s not compacted: %s", event_type, group_hour, error)
            report.failed.append((event_type, group_hour, str(error)))
        else:
            report.compacted.append(done)
    return report


def compact_hour(
    engine: Engine, store: ObjectStore, event_type: str, hour: str, *, batch_rows: int
) -> CompactedHour:
    """Steps 1-5 for one type and (closed) hour."""
    if flush_all(engine, store, batch_rows=batch_rows, hour=hour, event_type=event_type).failed:
        raise CompactionFailed(f"the pending events of {event_type} {hour} could not be written")
    with connect_read_only(engine) as connection:
        rows = connection.execute(
            select(lake_events.c.event_key, lake_events.c.event_json, lake_events.c.object_key)
            .where(
                lake_events.c.event_type == event_type,
                lake_events.c.hour == hour,
                lake_events.c.object_key.is_not(None),
            )
            .order_by(lake_events.c.event_key)
        ).all()
    key = compacted_key(event_type, hour)
    body, count = parquet_bytes(row.event_json for row in rows)
    _write_verified(store, key, body, count)
    batches = {str(row.object_key) for row in rows if row.object_key != key}
    deleted = _delete_batches(engine, store, partition_prefix(event_type, hour), batches)
    with engine.begin() as connection:
        for chunk in _chunks([row.event_key for row in rows if row.object_key != key]):
            connection.execute(
                update(lake_events).where(lake_events.c.event_key.in_(chunk)).values(object_key=key)
            )
    _log.info("lake: compacted %s %s: %d events, %d batches", event_type, hour, count, len(deleted))
    return CompactedHour(event_type, hour, key, count, tuple(deleted))


def _write_verified(store: ObjectStore, key: str, body: bytes, expected: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        put_object(store, key, body, PARQUET_CONTENT_TYPE)
        written = pq.read_table(pa.BufferReader(_get(store, key))).num_rows
    except UploadFailed as error:
        raise CompactionFailed(f"{key} could not be written ({error})") from error
    if written != expected:
        raise CompactionFailed(f"{key} holds {written} rows instead of {expected}")


def _get(store: ObjectStore, key: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    from eventfn._errors import EventfnError

    try:
        return store.get(key)
    except (EventfnError, ClientError, BotoCoreError) as error:
        raise UploadFailed(type(error).__name__) from error


def _delete_batches(
    engine: Engine, store: ObjectStore, prefix: str, compacted: set[str]
) -> list[str]:
    """Delete the NDJSON objects under `prefix` that hold only compacted (or no) events."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = [key for key in _list(store, prefix) if key.endswith(NDJSON_SUFFIX)]
        others = [key for key in found if key not in compacted]
        with connect_read_only(engine) as connection:
            live = {
                str(value)
                for chunk in _chunks(others)
                for value in connection.execute(
                    select(lake_events.c.object_key)
                    .where(lake_events.c.object_key.in_(chunk))
                    .distinct()
                ).scalars()
            }
        doomed = [key for key in found if key not in live]
        for chunk in _chunks(doomed, 1000):
            objects = [{"Key": key} for key in chunk]
            answer = store.client.delete_objects(Bucket=store.bucket, Delete={"Objects": objects})
            if answer.get("Errors"):
                raise CompactionFailed(f"{len(answer['Errors'])} batches under {prefix} remain")
    except (ClientError, BotoCoreError) as error:
        raise CompactionFailed(f"batches under {prefix} not deleted") from error
    return doomed


def _list(store: ObjectStore, prefix: str) -> Iterator[str]:
    paginator = store.client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            yield str(item["Key"])


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
