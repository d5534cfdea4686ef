"""The SQL tables of eventfn, as SQLAlchemy Core: the one `MetaData` every store module uses.

This module describes the schema *as it is at the newest migration*. Migrations never import it
(an old migration must keep creating the old schema), and a test checks that the migrated
database and this metadata agree, so a change here without a migration fails the test suite.
Constraint and index names come from the naming convention, which the migrations spell out.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

NAMING_CONVENTION: Final = {
    "pk": "pk_%(table_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# One row per (function, idempotency key): the claim while a delivery runs, then its response.
idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("function", String(200), nullable=False),
    Column("key", String(512), nullable=False),
    Column("status", String(16), nullable=False),  # IN_PROGRESS | COMPLETED
    Column("claim_token", String(36), nullable=False),
    Column("expires_at", Float, nullable=False, index=True),  # epoch seconds; claim deadline
    Column("response_status", Integer, nullable=True),
    Column("response_headers", Text, nullable=True),  # JSON object
    Column("response_body", LargeBinary, nullable=True),
    Column("emits", Text, nullable=True),  # JSON list of serialised events to send after commit
    Column("emits_sent", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
    PrimaryKeyConstraint("function", "key"),
    CheckConstraint("status IN ('IN_PROGRESS', 'COMPLETED')", name="status"),
)

# What the echo function stores: one row per distinct event (source + "/" + id).
echo_messages = Table(
    "echo_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("source_event", String(512), nullable=False, unique=True),
    Column("message", Text, nullable=False),
    Column("length", Integer, nullable=False),
    Column("received_at", String(40), nullable=False),
)

# The tables of later migrations live in their own modules; importing them here keeps `metadata`
# complete for every user of this module (the migration test compares it with the database).
from eventfn import _tables_domain, _tables_pipelines, _tables_workflow  # noqa: E402, F401
