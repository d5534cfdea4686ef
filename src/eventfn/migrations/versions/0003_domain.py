"""API- and domain-side functions: inventory, users, dead letters, lake archive staging.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Every name is spelled out: this migration never imports eventfn._tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inventory_items",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_inventory_items"),
        sa.CheckConstraint("quantity >= 0", name="ck_inventory_items_quantity_not_negative"),
    )
    op.create_table(
        "inventory_orders",
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_inventory_orders"),
        sa.CheckConstraint(
            "outcome IN ('updated', 'rejected')", name="ck_inventory_orders_outcome"
        ),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("event_time", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("event_source", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=True),
        sa.Column("error_dest", sa.String(1024), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_data", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("received_at", sa.String(40), nullable=False),
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.Column("replay_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_replayed_at", sa.String(40), nullable=True),
        sa.Column("last_replay_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_event_type", "dead_letters", ["event_type"])
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_table(
        "lake_events",
        sa.Column("event_key", sa.String(512), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=True),
        sa.PrimaryKeyConstraint("event_key", name="pk_lake_events"),
    )
    op.create_index(
        "ix_lake_events_object_key_event_type_hour",
        "lake_events",
        ["object_key", "event_type", "hour"],
    )


def downgrade() -> None:
    op.drop_index("ix_lake_events_object_key_event_type_hour", table_name="lake_events")
    op.drop_table("lake_events")
    op.drop_index("ix_dead_letters_received_at", table_name="dead_letters")
    op.drop_index("ix_dead_letters_event_type", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("users")
    op.drop_table("inventory_orders")
    op.drop_table("inventory_items")
