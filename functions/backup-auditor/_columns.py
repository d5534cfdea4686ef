"""Which CSV column holds what: header spellings of AWS Backup job reports and friends.

Headers are compared normalised — lower case, letters and digits only — so `JOB_ID`, `JobId`
and `job id` are one name. Only the status column is required; the first alias (in the order
below) that names a header wins, and among equal headers the leftmost one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from eventfn import PermanentError

REQUIRED = "status"
STORED = ("status", "job_id", "resource", "started_at", "finished_at")  # own table columns
ALIASES: dict[str, tuple[str, ...]] = {
    "status": ("status", "state", "jobstatus", "backupjobstatus"),
    "job_id": ("jobid", "backupjobid", "id"),
    "resource": ("resource", "resourcearn", "resourceid", "resourcename"),
    "started_at": ("starttime", "creationdate", "startedat", "startdate", "creationtime", "start"),
    "finished_at": (
        "endtime",
        "completiondate",
        "finishedat",
        "enddate",
        "completiontime",
        "completedat",
        "end",
    ),
    "message": ("statusmessage", "message", "errormessage", "reason"),
}
SPELLINGS = "STATUS, status, State, Job Status"
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_SHOWN_HEADERS = 20


class MissingColumn(PermanentError, LookupError):
    """The CSV header lacks a required column; `field` names it."""

    status = 422
    code = "missing-column"
    title = "Required column missing"


def normalise(header: str) -> str:
    """`JOB_ID`, `JobId`, `job id` -> `jobid`."""
    return _NOT_ALNUM.sub("", header.strip().lower())


@dataclass(frozen=True)
class Columns:
    """Index of each known field in a row (None: absent) and the header line itself."""

    header: tuple[str, ...]
    index: dict[str, int | None]

    @classmethod
    def resolve(cls, header: Sequence[str]) -> Columns:
        """Map the header to fields; MissingColumn when there is no status column."""
        names = [normalise(cell) for cell in header]
        index: dict[str, int | None] = {}
        for field, aliases in ALIASES.items():
            index[field] = next((names.index(alias) for alias in aliases if alias in names), None)
        if index[REQUIRED] is None:
            shown = ", ".join(cell.strip()[:40] for cell in header[:_SHOWN_HEADERS])
            raise MissingColumn(
                f"the CSV has no STATUS column (accepted spellings: {SPELLINGS}); "
                f"its header is: {shown or '(empty)'}",
                field="STATUS",
            )
        return cls(tuple(cell.strip() for cell in header), index)

    def value(self, row: Sequence[str], field: str) -> str:
        """The stripped cell of `field` in `row` ('' when the column is absent or short)."""
        position = self.index.get(field)
        if position is None or position >= len(row):
            return ""
        return row[position].strip()

    def extras(self, row: Sequence[str]) -> dict[str, str]:
        """Non-empty cells of the columns without a table column of their own, by header."""
        used = {self.index[field] for field in STORED} - {None}
        extras: dict[str, str] = {}
        for position, cell in enumerate(row):
            if position in used or not cell.strip():
                continue
            name = self.header[position] if position < len(self.header) else ""
            extras[name or f"column_{position + 1}"] = cell.strip()
        return extras

    def mapping(self) -> dict[str, str]:
        """Field -> the header it was read from (present fields only)."""
        return {
            field: self.header[position]
            for field, position in self.index.items()
            if position is not None
        }
