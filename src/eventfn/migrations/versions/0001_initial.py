"""Initial schema: idempotency records and the echo function's messages.

Revision ID: 0001
Revises:
Create Date: 2025-11-29

Every name is spelled out: this migration never imports eventfn._tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_records",
        sa.Column("function", sa.String(200), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claim_token", sa.String(36), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("emits", sa.Text(), nullable=True),
        sa.Column("emits_sent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("function", "key", name="pk_idempotency_records"),
        sa.CheckConstraint(
            "status IN ('IN_PROGRESS', 'COMPLETED')", name="ck_idempotency_records_status"
        ),
    )
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])
    op.create_table(
        "echo_messages",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("source_event", sa.String(512), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_echo_messages"),
        sa.UniqueConstraint("source_event", name="uq_echo_messages_source_event"),
    )


def downgrade() -> None:
    op.drop_table("echo_messages")
    op.drop_index("ix_idempotency_records_expires_at", table_name="idempotency_records")
    op.drop_table("idempotency_records")
