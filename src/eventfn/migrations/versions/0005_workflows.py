"""Durable workflows: executions, their history and their timers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Every name is spelled out: this migration never imports eventfn._tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("state", sa.String(200), nullable=True),
        sa.Column("state_input", sa.Text(), nullable=True),
        sa.Column("retry_counts", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("trigger_event", sa.String(512), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("redrive_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("announced", sa.String(16), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_executions"),
        sa.CheckConstraint(
            "status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')",
            name="ck_workflow_executions_status",
        ),
        sa.CheckConstraint("phase IN ('READY', 'WAITING')", name="ck_workflow_executions_phase"),
    )
    op.create_index("ix_workflow_executions_workflow", "workflow_executions", ["workflow"])
    op.create_index("ix_workflow_executions_status", "workflow_executions", ["status"])
    op.create_table(
        "workflow_history",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "seq", name="pk_workflow_history"),
    )
    op.create_table(
        "workflow_timers",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", name="pk_workflow_timers"),
    )
    op.create_index("ix_workflow_timers_due_at", "workflow_timers", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_workflow_timers_due_at", table_name="workflow_timers")
    op.drop_table("workflow_timers")
    op.drop_table("workflow_history")
    op.drop_index("ix_workflow_executions_status", table_name="workflow_executions")
    op.drop_index("ix_workflow_executions_workflow", table_name="workflow_executions")
    op.drop_table("workflow_executions")
