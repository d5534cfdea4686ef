"""Tables of the storage-triggered pipelines (migration 0002): sentiment, backup audit, log metrics.

Imported by `_tables` so that `metadata` always describes the whole schema.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, PrimaryKeyConstraint, String, Table, Text

from eventfn._tables import metadata

# sentiment-analyzer: one row per document version (object key + etag), upserted.
document_sentiments = Table(
    "document_sentiments",
    metadata,
    Column("object_key", String(1024), nullable=False),
    Column("etag", String(128), nullable=False),
    Column("text_key", String(1024), nullable=False),  # where the extracted text lives
    Column("chars", Integer, nullable=False),
    Column("sentences", Integer, nullable=False),
    Column("compound", Float, nullable=False),  # VADER aggregate, -1 .. 1
    Column("positive", Float, nullable=False),
    Column("neutral", Float, nullable=False),
    Column("negative", Float, nullable=False),
    Column("label", String(16), nullable=False),  # positive | neutral | negative
    Column("scored_at", String(40), nullable=False),  # RFC 3339
    Column("source_event", String(512), nullable=False),  # source/id of the scored event
    PrimaryKeyConstraint("object_key", "etag"),
)

# backup-auditor: every row of every audited backup log (object key + etag + line number).
backup_audit_rows = Table(
    "backup_audit_rows",
    metadata,
    Column("log_key", String(1024), nullable=False),
    Column("log_etag", String(128), nullable=False),
    Column("line", Integer, nullable=False),  # 1-based line number in the CSV (header = 1)
    Column("job_id", String(200), nullable=False),
    Column("resource", String(512), nullable=False),
    Column("status", String(32), nullable=False),
    Column("started_at", String(64), nullable=True),
    Column("finished_at", String(64), nullable=True),
    Column("details", Text, nullable=True),  # JSON object of the remaining columns
    Column("audited_at", String(40), nullable=False),
    PrimaryKeyConstraint("log_key", "log_etag", "line"),
)

# log-processor: per-minute aggregates of one log file version, one row per dimension value.
log_metrics = Table(
    "log_metrics",
    metadata,
    Column("log_key", String(1024), nullable=False),
    Column("log_etag", String(128), nullable=False),
    Column("minute", String(20), nullable=False),  # YYYY-MM-DDTHH:MM (UTC)
    Column("dimension", String(32), nullable=False),  # level | status_class
    Column("value", String(32), nullable=False),  # e.g. ERROR, 5xx
    Column("count", Integer, nullable=False),
    Column("p50_ms", Float, nullable=True),  # latency percentiles where the format has them
    Column("p95_ms", Float, nullable=True),
    Column("p99_ms", Float, nullable=True),
    PrimaryKeyConstraint("log_key", "log_etag", "minute", "dimension", "value"),
)
