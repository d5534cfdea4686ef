"""Tables of the durable workflow engine (migration 0005): executions, history, timers.

Imported by `_tables` so that `metadata` always describes the whole schema.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from eventfn._tables import metadata

# One row per execution: its checkpoint (current state, that state's input, retry counts).
workflow_executions = Table(
    "workflow_executions",
    metadata,
    Column("id", String(64), primary_key=True),  # deterministic: derived from the trigger
    Column("workflow", String(200), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("phase", String(16), nullable=False),  # READY (step it) | WAITING (a timer is set)
    Column("state", String(200), nullable=True),  # the state to run next (or the last one)
    Column("state_input", Text, nullable=True),  # JSON
    Column("retry_counts", Text, nullable=False),  # JSON list: retries made per retrier
    Column("attempt", Integer, nullable=False),  # attempt of the current state, 0-based
    Column("input", Text, nullable=False),  # JSON, the execution's input
    Column("output", Text, nullable=True),  # JSON, once SUCCEEDED
    Column("error", String(200), nullable=True),
    Column("cause", Text, nullable=True),
    Column("trigger_event", String(512), nullable=True),  # source + " " + id of the trigger
    Column("trace_id", String(32), nullable=True),
    Column("version", Integer, nullable=False),  # optimistic lock: bumped by every checkpoint
    Column("redrive_count", Integer, nullable=False, server_default=text("0")),
    # The final status whose event went out (NULL until then): the tick re-sends the others.
    Column("announced", String(16), nullable=True),
    Column("started_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    CheckConstraint("status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')", name="status"),
    CheckConstraint("phase IN ('READY', 'WAITING')", name="phase"),
)

# One row per state run (and per execution event): input, output, error, attempt, timings.
workflow_history = Table(
    "workflow_history",
    metadata,
    Column("execution_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),  # ExecutionStarted | StateSucceeded | …
    Column("state", String(200), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("input", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("error", String(200), nullable=True),
    Column("cause", Text, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    PrimaryKeyConstraint("execution_id", "seq"),
)

# A stored deadline per waiting execution (Wait state or retry backoff); run_due fires it.
workflow_timers = Table(
    "workflow_timers",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("due_at", Float, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # wait | retry
)
