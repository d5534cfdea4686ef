"""user-indexer: Avro user events in, the newest version of each user in `users`, searchable.

Consumes `eventfn.user.created.v1` and `eventfn.user.updated.v1` (`application/avro`; the
runtime decodes the record with the schema of the registry before the handler runs, so
`updated_at` arrives as a datetime). The `partitionkey` extension, when present, must be the
user id: it is what keeps one user's events in order on an ordered (Kafka) broker. Delivery
may still be out of order (retries, replays), so a version older than the stored one is ignored
— decided atomically by the upsert's condition. Emits nothing.
"""

from __future__ import annotations

from eventfn import App, Context, Event, InternalError

from ._record import user_row
from ._upsert import store_user

CREATED = "eventfn.user.created.v1"
UPDATED = "eventfn.user.updated.v1"

app = App("user-indexer")


@app.on(CREATED)
def user_created(event: Event, ctx: Context) -> None:
    """A new user (a redelivered or late `created` never replaces a newer update)."""
    index_user(event, ctx)


@app.on(UPDATED)
def user_updated(event: Event, ctx: Context) -> None:
    """A new version of a user."""
    index_user(event, ctx)


def index_user(event: Event, ctx: Context) -> None:
    """Store the user unless a newer version is already stored."""
    row = user_row(event)
    connection = ctx.tx
    if connection is None:
        raise InternalError("user-indexer needs the SQL store")
    if store_user(connection, row):
        ctx.logger.info("user %s stored at version %d", row.user_id, row.version)
    else:
        ctx.logger.info("user %s version %d is not newer: ignored", row.user_id, row.version)
