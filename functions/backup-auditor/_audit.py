"""Reading a backup job log: the CSV streamed row by row, and the audit totals kept on the way."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from eventfn import PermanentError

from ._columns import Columns

COMPLETED = "COMPLETED"
UNKNOWN_STATUS = "UNKNOWN"
FAILED_JOBS_LISTED = 100
_LIMITS = {"job_id": 200, "resource": 512, "status": 32, "started_at": 64, "finished_at": 64}


class UnreadableLog(PermanentError, ValueError):
    """The backup log is empty, not UTF-8 text, or not CSV."""

    status = 422
    code = "unreadable-backup-log"
    title = "Backup log cannot be read"


def normalise_status(raw: str) -> str:
    """`Completed` -> `COMPLETED`, `partial success` -> `PARTIAL_SUCCESS`, '' -> `UNKNOWN`."""
    status = "_".join(raw.upper().split())
    return status[: _LIMITS["status"]] if status else UNKNOWN_STATUS


@dataclass(frozen=True)
class AuditRow:
    """One job of the log; `line` is the 1-based line its record starts on (header = 1)."""

    line: int
    status: str
    job_id: str
    resource: str
    started_at: str
    finished_at: str
    message: str
    details: dict[str, str]

    @property
    def failed(self) -> bool:
        """Every status other than COMPLETED counts as a failed job."""
        return self.status != COMPLETED

    def job(self) -> dict[str, Any]:
        """The short form listed in the audited event."""
        return {
            "job_id": self.job_id,
            "resource": self.resource,
            "status": self.status,
            "line": self.line,
        }


@dataclass
class AuditSummary:
    """Totals of an audited log: rows, rows per status, the first failed jobs."""

    rows: int = 0
    totals: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    failed_jobs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: AuditRow) -> None:
        """Count one row."""
        self.rows += 1
        self.totals[row.status] += 1
        if row.failed:
            self.failed += 1
            if len(self.failed_jobs) < FAILED_JOBS_LISTED:
                self.failed_jobs.append(row.job())

    @property
    def truncated(self) -> bool:
        """True when more jobs failed than `failed_jobs` lists."""
        return self.failed > len(self.failed_jobs)


class BackupLogReader:
    """Streams a CSV backup log: the header is read (and checked) on construction."""

    def __init__(self, stream: BinaryIO) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._text)
        self._line = 0
        header = self._next_record()
        if header is None:
            raise UnreadableLog("the backup log is empty", field="key")
        self.columns = Columns.resolve(header)

    def __iter__(self) -> Iterator[AuditRow]:
        while (record := self._next_record()) is not None:
            yield self._row(record)

    def _next_record(self) -> list[str] | None:
        """The next non-blank record; its first line is kept in `self._line`."""
        while True:
            self._line = self._reader.line_num + 1
            try:
                record = next(self._reader, None)
            except UnicodeDecodeError:
                raise UnreadableLog("the backup log is not UTF-8 text", field="key") from None
            except csv.Error:
                raise UnreadableLog(
                    f"the backup log is not valid CSV (line {self._line})", field="key"
                ) from None
            if record is None or any(cell.strip() for cell in record):
                return record

    def _row(self, record: list[str]) -> AuditRow:
        columns = self.columns

        def cell(name: str) -> str:
            return columns.value(record, name)[: _LIMITS.get(name, 4096)]

        return AuditRow(
            line=self._line,
            status=normalise_status(columns.value(record, "status")),
            job_id=cell("job_id"),
            resource=cell("resource"),
            started_at=cell("started_at"),
            finished_at=cell("finished_at"),
            message=cell("message"),
            details=columns.extras(record),
        )
