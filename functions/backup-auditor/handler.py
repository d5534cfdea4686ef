"""backup-auditor: audits backup job logs (CSV) uploaded under `backup-logs/`.

Consumes `eventfn.storage.object.created.v1` for `backup-logs/*.csv`, streams the CSV, records
every row in `backup_audit_rows` (upsert keyed by log key + ETag + line, in the event's
transaction), then emits `eventfn.backup.log.audited.v1` with the totals and one
`eventfn.backup.job.failed.v1` per job whose status is not COMPLETED.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from eventfn import App, ConfigurationError, Context, Event, InternalError
from eventfn._event import utc_now_rfc3339
from eventfn._source_object import OpenedObject, SourceObject, open_object
from eventfn._tables_pipelines import backup_audit_rows
from eventfn._upsert import BatchedUpsert

from ._audit import AuditRow, AuditSummary, BackupLogReader

CREATED = "eventfn.storage.object.created.v1"
AUDITED = "eventfn.backup.log.audited.v1"
JOB_FAILED = "eventfn.backup.job.failed.v1"
PREFIX = "backup-logs/"
SUFFIX = ".csv"
ENV_MAX_FAILED_EVENTS = "BACKUP_AUDITOR_MAX_FAILED_EVENTS"
DEFAULT_MAX_FAILED_EVENTS = 1000

app = App("backup-auditor")


@dataclass(frozen=True)
class AuditorConfig:
    """How many `eventfn.backup.job.failed.v1` events one log may produce at most."""

    max_failed_events: int = DEFAULT_MAX_FAILED_EVENTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuditorConfig:
        """Read `BACKUP_AUDITOR_MAX_FAILED_EVENTS` (default 1000, >= 0)."""
        raw = env.get(ENV_MAX_FAILED_EVENTS, "").strip()
        if not raw:
            return cls()
        if not raw.isdigit():
            raise ConfigurationError(f"{ENV_MAX_FAILED_EVENTS} must be an integer >= 0")
        return cls(int(raw))


@dataclass
class Audit:
    """The result of reading one log: totals, column mapping and the jobs to announce."""

    summary: AuditSummary
    columns: dict[str, str]
    failed: list[AuditRow]


class BackupAuditor:
    """The handler; configured from the environment when the function starts."""

    def __init__(self) -> None:
        self.config = AuditorConfig()

    def configure(self) -> None:
        """Start hook: read the limits once."""
        self.config = AuditorConfig.from_env(os.environ)

    def __call__(self, event: Event, ctx: Context) -> None:
        source = SourceObject.from_event(event, PREFIX, SUFFIX)
        if source is None:
            ctx.logger.info("ignored: %r is not a %s*%s object", event.subject, PREFIX, SUFFIX)
            return
        opened = open_object(ctx.objects.client, source)
        if opened is None:
            ctx.logger.info("skipped: %r was overwritten after this event", source.key)
            return
        with opened.body:
            audit = self._audit(opened, source, _transaction(ctx))
        summary = audit.summary
        ctx.emit(AUDITED, audited_data(source, opened.etag, audit), subject=source.key)
        for row in audit.failed:
            ctx.emit(JOB_FAILED, failed_data(source, opened.etag, row), subject=source.key)
        ctx.logger.info(
            "audited %s: %d rows, %d failed jobs", source.key, summary.rows, summary.failed
        )

    def _audit(self, opened: OpenedObject, source: SourceObject, tx: Connection) -> Audit:
        reader = BackupLogReader(opened.body)
        writer = BatchedUpsert(tx, backup_audit_rows, keep=("audited_at",))
        audit = Audit(AuditSummary(), reader.columns.mapping(), [])
        audited_at = utc_now_rfc3339()
        for row in reader:
            audit.summary.add(row)
            writer.add(row_record(source.key, opened.etag, row, audited_at))
            if row.failed and len(audit.failed) < self.config.max_failed_events:
                audit.failed.append(row)
        writer.flush()
        return audit


def _transaction(ctx: Context) -> Connection:
    tx = ctx.tx
    if tx is None:
        raise InternalError("backup-auditor needs its SQL store")
    return tx


def row_record(key: str, etag: str, row: AuditRow, audited_at: str) -> dict[str, Any]:
    """The `backup_audit_rows` row of one CSV record."""
    return {
        "log_key": key,
        "log_etag": etag,
        "line": row.line,
        "job_id": row.job_id,
        "resource": row.resource,
        "status": row.status,
        "started_at": row.started_at or None,
        "finished_at": row.finished_at or None,
        "details": json.dumps(row.details, ensure_ascii=False, sort_keys=True),
        "audited_at": audited_at,
    }


def audited_data(source: SourceObject, etag: str, audit: Audit) -> dict[str, Any]:
    """The data of `eventfn.backup.log.audited.v1`."""
    summary = audit.summary
    return {
        "bucket": source.bucket,
        "key": source.key,
        "etag": etag,
        "rows": summary.rows,
        "totals": dict(sorted(summary.totals.items())),
        "failed": summary.failed,
        "failed_jobs": summary.failed_jobs,
        "failed_jobs_truncated": summary.truncated,
        "failed_events": len(audit.failed),
        "columns": audit.columns,
    }


def failed_data(source: SourceObject, etag: str, row: AuditRow) -> dict[str, Any]:
    """The data of one `eventfn.backup.job.failed.v1`."""
    data: dict[str, Any] = {
        "bucket": source.bucket,
        "key": source.key,
        "etag": etag,
        "line": row.line,
        "job_id": row.job_id,
        "resource": row.resource,
        "status": row.status,
        "started_at": row.started_at or None,
        "finished_at": row.finished_at or None,
    }
    if row.message:
        data["message"] = row.message
    return data


auditor = BackupAuditor()
app.on_start(auditor.configure)
app.on(CREATED, reply_type=None)(auditor)
