"""lake-archiver: every `eventfn.*` event, exactly once, into the data lake.

Its Trigger filters on the type prefix `eventfn.`. One catch-all handler (`on_any`, with the
data as received: `validate=False`) refuses other types, stages each event in `lake_events`
(one row per source + id, in the transaction the idempotency record commits in) and, when its
type/hour has enough waiting events or the oldest has waited long enough, writes them as one
NDJSON batch (see eventfn._lake_flush). Quiet periods are covered by
`eventfn lake flush` (a CronJob), closed hours become Parquet by `eventfn lake compact`.

It emits nothing: with a Trigger on every `eventfn.` type, any event it emitted would come back
to it. Storage events for the lake's own objects are ignored for the same reason.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

from eventfn import App, Context, Event, InternalError, UnknownEventType
from eventfn._lake import LakePolicy, event_hour, event_key, lake_store
from eventfn._lake_flush import StagedEvent, UploadFailed, flush_batch, flush_due, stage, utc_text
from eventfn._objects import ObjectStore
from eventfn._settings import Settings

from ._archive import TYPE_PREFIX, is_lake_object, ndjson_line

app = App("lake-archiver")


class Lake:
    """The flush policy (read at start) and the lake's object store (made on first use)."""

    def __init__(self) -> None:
        self.policy = LakePolicy()
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()

    def configure(self) -> None:
        """Start hook: LAKE_FLUSH_ROWS, LAKE_FLUSH_SECONDS, LAKE_BATCH_MAX_ROWS, LAKE_BUCKET."""
        self.policy = LakePolicy.from_env(os.environ)
        self._store = None

    def bucket(self, settings: Settings) -> str:
        """The lake's bucket."""
        return self.policy.bucket or settings.bucket

    def store(self, settings: Settings) -> ObjectStore:
        """The object store of the lake bucket (one client per process)."""
        with self._lock:
            if self._store is None:
                self._store = lake_store(settings, self.bucket(settings))
            return self._store


lake = Lake()
app.on_start(lake.configure)


@app.on_any(validate=False)
def archive(event: Event, ctx: Context) -> None:
    """Stage the event; write its type/hour's batch when one is due."""
    if not event.type.startswith(TYPE_PREFIX):
        raise UnknownEventType(f"lake-archiver archives {TYPE_PREFIX}* types only", field="type")
    if is_lake_object(event, lake.bucket(ctx.settings)):
        ctx.logger.info("not archiving the lake's own object %s", event.subject)
        return
    connection = ctx.tx
    if connection is None:
        raise InternalError("lake-archiver needs the SQL store")
    now = datetime.now(UTC)
    line = ndjson_line(event)
    staged = StagedEvent(
        event_key=event_key(event.source, event.id),
        event_type=event.type,
        hour=event_hour(event.time, now),
        event_json=line,
        received_at=utc_text(now),
    )
    if not stage(connection, staged):
        ctx.logger.info("event already archived")
    policy = lake.policy
    oldest_allowed = utc_text(now - timedelta(seconds=policy.flush_seconds))
    if not flush_due(connection, staged.event_type, staged.hour, policy, oldest_allowed):
        return
    store = lake.store(ctx.settings)
    try:
        batch = flush_batch(connection, store, staged.event_type, staged.hour, policy.batch_rows)
    except UploadFailed as error:  # the events stay staged: the next flush writes them
        ctx.logger.warning("lake batch not written (%s); it is retried later", error)
        return
    if batch is not None:
        ctx.logger.info("lake batch %s: %d events", batch.key, batch.rows)
