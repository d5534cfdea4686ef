"""Staging archived events in `lake_events` and cutting them into NDJSON batches.

Exactly once per event: `stage` inserts the event under its key (source + id) and a duplicate
is a no-op, in the transaction the idempotency record commits in. A batch is written by
`flush_batch`, inside one transaction:

1. claim: select the type/hour's unwritten rows (`object_key IS NULL`), oldest first — on
   PostgreSQL `FOR UPDATE SKIP LOCKED`, so concurrent flushes take disjoint rows; on SQLite the
   transaction holds the database's write lock;
2. write the object, named by a digest of the claimed event keys;
3. mark the rows with the object's key (`UPDATE .. WHERE object_key IS NULL`).

If the upload fails, the rows are not marked: the claim ends with the transaction and the rows
wait for the next flush. If the process dies after the upload but before the commit, the next
flush of the same rows writes the same key again; a batch left behind with other rows is
removed when the hour is compacted (compaction rebuilds from these rows, not from objects).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from eventfn._lake import NDJSON_CONTENT_TYPE, LakePolicy, batch_key
from eventfn._store import connect_read_only
from eventfn._tables_domain import lake_events

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from eventfn._objects import ObjectStore

_log = logging.getLogger("eventfn.lake")


class UploadFailed(Exception):
    """Object storage did not take a batch; its rows stay unwritten."""


@dataclass(frozen=True)
class StagedEvent:
    """One row of `lake_events`, before it is in a batch."""

    event_key: str
    event_type: str
    hour: str
    event_json: str
    received_at: str


@dataclass(frozen=True)
class Batch:
    """A written NDJSON object and how many events it holds."""

    key: str
    rows: int


@dataclass
class FlushReport:
    """What `flush_all` did."""

    batches: list[Batch] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (type, hour)

    @property
    def events(self) -> int:
        """Events written."""
        return sum(batch.rows for batch in self.batches)


def stage(connection: Connection, event: StagedEvent) -> bool:
    """Insert the event unless its key is already staged; True when it was new."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(lake_events).values(as_row(event))
    statement = statement.on_conflict_do_nothing(index_elements=["event_key"])
    return connection.execute(statement.returning(lake_events.c.event_key)).first() is not None


def flush_due(
    connection: Connection, event_type: str, hour: str, policy: LakePolicy, oldest_before: str
) -> bool:
    """True when the type/hour has `flush_rows` unwritten events or one received before
    `oldest_before` (an RFC 3339 UTC time)."""
    query = select(func.count(), func.min(lake_events.c.received_at)).where(
        lake_events.c.object_key.is_(None),
        lake_events.c.event_type == event_type,
        lake_events.c.hour == hour,
    )
    count, oldest = connection.execute(query).one()
    return bool(count) and (count >= policy.flush_rows or str(oldest) < oldest_before)


def flush_batch(
    connection: Connection, store: ObjectStore, event_type: str, hour: str, limit: int
) -> Batch | None:
    """Write up to `limit` unwritten events of the type/hour as one batch; None when there are
    none. UploadFailed when object storage refuses (nothing is marked)."""
    claim = (
        select(lake_events.c.event_key, lake_events.c.event_json)
        .where(
            lake_events.c.object_key.is_(None),
            lake_events.c.event_type == event_type,
            lake_events.c.hour == hour,
        )
        .order_by(lake_events.c.received_at, lake_events.c.event_key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = connection.execute(claim).all()
    if not rows:
        return None
    keys = [row.event_key for row in rows]
    key = batch_key(event_type, hour, keys)
    body = "".join(f"{row.event_json}\n" for row in rows).encode()
    put_object(store, key, body, NDJSON_CONTENT_TYPE)
    connection.execute(
        update(lake_events)
        .where(lake_events.c.event_key.in_(keys), lake_events.c.object_key.is_(None))
        .values(object_key=key)
    )
    return Batch(key, len(rows))


def put_object(store: ObjectStore, key: str, body: bytes, content_type: str) -> None:
    """`store.put`, with every way object storage can fail turned into UploadFailed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from eventfn._errors import EventfnError

    try:
        store.put(key, body, content_type=content_type)
    except (EventfnError, ClientError, BotoCoreError) as error:
        raise UploadFailed(type(error).__name__) from error


def pending_groups(
    connection: Connection, hour: str | None = None, event_type: str | None = None
) -> list[tuple[str, str]]:
    """(type, hour) pairs with unwritten events, oldest hour first."""
    query = (
        select(lake_events.c.event_type, lake_events.c.hour)
        .where(lake_events.c.object_key.is_(None))
        .group_by(lake_events.c.event_type, lake_events.c.hour)
        .order_by(lake_events.c.hour, lake_events.c.event_type)
    )
    if hour is not None:
        query = query.where(lake_events.c.hour == hour)
    if event_type is not None:
        query = query.where(lake_events.c.event_type == event_type)
    return [(str(row.event_type), str(row.hour)) for row in connection.execute(query)]


def flush_all(
    engine: Engine,
    store: ObjectStore,
    *,
    batch_rows: int,
    hour: str | None = None,
    event_type: str | None = None,
) -> FlushReport:
    """Write every unwritten event (of `hour` and `event_type`, if given), one transaction per
    batch.

    The scheduler's tick for quiet periods. A type/hour whose upload fails is reported and
    left for the next run; the others go on.
    """
    report = FlushReport()
    with connect_read_only(engine) as connection:
        groups = pending_groups(connection, hour, event_type)
    for group_type, group_hour in groups:
        try:
            report.batches.extend(_flush_group(engine, store, group_type, group_hour, batch_rows))
        except UploadFailed as error:
            _log.warning("lake: batch of %s %s not written (%s)", group_type, group_hour, error)
            report.failed.append((group_type, group_hour))
    return report


def _flush_group(
    engine: Engine, store: ObjectStore, event_type: str, hour: str, batch_rows: int
) -> list[Batch]:
    batches: list[Batch] = []
    while True:
        with engine.begin() as connection:
            batch = flush_batch(connection, store, event_type, hour, batch_rows)
        if batch is None:
            return batches
        batches.append(batch)
        if batch.rows < batch_rows:
            return batches


def utc_text(instant: datetime) -> str:
    """An aware datetime as the RFC 3339 UTC text `received_at` is stored in."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def as_row(event: StagedEvent) -> dict[str, Any]:
    """The staged event as `lake_events` column values."""
    return {
        "event_key": event.event_key,
        "event_type": event.event_type,
        "hour": event.hour,
        "event_json": event.event_json,
        "received_at": event.received_at,
    }
