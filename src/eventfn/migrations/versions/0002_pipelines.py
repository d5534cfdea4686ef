"""Storage-triggered pipelines: document sentiment, backup audit rows, per-minute log metrics.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Every name is spelled out: this migration never imports eventfn._tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_sentiments",
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("text_key", sa.String(1024), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("sentences", sa.Integer(), nullable=False),
        sa.Column("compound", sa.Float(), nullable=False),
        sa.Column("positive", sa.Float(), nullable=False),
        sa.Column("neutral", sa.Float(), nullable=False),
        sa.Column("negative", sa.Float(), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("scored_at", sa.String(40), nullable=False),
        sa.Column("source_event", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("object_key", "etag", name="pk_document_sentiments"),
    )
    op.create_table(
        "backup_audit_rows",
        sa.Column("log_key", sa.String(1024), nullable=False),
        sa.Column("log_etag", sa.String(128), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(64), nullable=True),
        sa.Column("finished_at", sa.String(64), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("audited_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("log_key", "log_etag", "line", name="pk_backup_audit_rows"),
    )
    op.create_table(
        "log_metrics",
        sa.Column("log_key", sa.String(1024), nullable=False),
        sa.Column("log_etag", sa.String(128), nullable=False),
        sa.Column("minute", sa.String(20), nullable=False),
        sa.Column("dimension", sa.String(32), nullable=False),
        sa.Column("value", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p95_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(
            "log_key", "log_etag", "minute", "dimension", "value", name="pk_log_metrics"
        ),
    )


def downgrade() -> None:
    op.drop_table("log_metrics")
    op.drop_table("backup_audit_rows")
    op.drop_table("document_sentiments")
