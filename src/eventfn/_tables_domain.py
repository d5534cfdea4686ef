"""Tables of the API- and domain-side functions (migration 0003): inventory, users, dead letters,
and the data-lake archive's staging rows.

Imported by `_tables` so that `metadata` always describes the whole schema.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from eventfn._tables import metadata

# inventory-updater: stock per SKU; quantity never goes below zero (conditional updates + check).
inventory_items = Table(
    "inventory_items",
    metadata,
    Column("sku", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("updated_at", String(40), nullable=False),  # RFC 3339
    CheckConstraint("quantity >= 0", name="quantity_not_negative"),
)

# inventory-updater: the outcome of every order it processed (one row per order id).
inventory_orders = Table(
    "inventory_orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("outcome", String(16), nullable=False),  # updated | rejected
    Column("items", Text, nullable=False),  # JSON list of {sku, quantity}
    Column("reason", Text, nullable=True),  # JSON list of short items when rejected
    Column("processed_at", String(40), nullable=False),
    CheckConstraint("outcome IN ('updated', 'rejected')", name="outcome"),
)

# user-indexer: the newest known version of each user (last writer by version, then event time).
users = Table(
    "users",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("tags", Text, nullable=False),  # JSON list of strings
    Column("version", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("event_time", String(40), nullable=False),
    Column("event_id", String(200), nullable=False),
)

# dlq-handler: every dead-lettered event with Knative's error extensions, decoded.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", String(64), primary_key=True),  # derived from the dead-letter event's source+id
    Column("event_id", String(200), nullable=False),
    Column("event_type", String(200), nullable=False, index=True),
    Column("event_source", String(512), nullable=False),
    Column("subject", String(1024), nullable=True),
    Column("error_dest", String(1024), nullable=True),  # knativeerrordest
    Column("error_code", Integer, nullable=True),  # knativeerrorcode
    Column("error_data", Text, nullable=True),  # knativeerrordata, base64-decoded (<= 1024 bytes)
    Column("attempts", Integer, nullable=True),
    Column("trace_id", String(32), nullable=True),
    Column("received_at", String(40), nullable=False, index=True),
    Column("event_json", Text, nullable=False),  # the original event, structured-mode JSON
    Column("replay_count", Integer, nullable=False, server_default=text("0")),
    Column("last_replayed_at", String(40), nullable=True),
    Column("last_replay_result", Text, nullable=True),
)

# lake-archiver: events accepted for the lake (exactly once per source+id), flushed in batches.
lake_events = Table(
    "lake_events",
    metadata,
    Column("event_key", String(512), primary_key=True),  # source + "\x1f" + id, or a digest
    Column("event_type", String(200), nullable=False),
    Column("hour", String(13), nullable=False),  # YYYY-MM-DDTHH of the event time (UTC)
    Column("event_json", Text, nullable=False),  # one NDJSON line
    Column("received_at", String(40), nullable=False),
    Column("object_key", String(1024), nullable=True),  # the NDJSON batch it was flushed into
    Index(None, "object_key", "event_type", "hour"),
)
