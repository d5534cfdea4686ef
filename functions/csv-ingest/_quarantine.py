"""Ragged rows: spooled while pyarrow parses, written out as a CSV with their line numbers.

pyarrow's `invalid_row_handler` gets each row with too many or too few fields and its record
number (1 = the header; blank lines are not counted; a quoted value spanning lines is one
record). Physical line numbers differ once a quoted value holds a newline, so when the file had
bad rows a second, stop-early pass with Python's csv module (same quoting rules) maps record
numbers to the line each record starts on. Memory stays bounded: rows are spooled to a
temporary file and merged in order with the scan.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import IO, Any, BinaryIO

HEADER = ("line", "record", "expected_fields", "actual_fields", "row")
SPOOL_BYTES = 1 << 20


class BadRows:
    """pyarrow's `invalid_row_handler`: records the row, answers "skip" (never dropped silently)."""

    def __init__(self) -> None:
        self.count = 0
        self._spool: IO[str] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by close()
            max_size=SPOOL_BYTES, mode="w+", encoding="utf-8", newline=""
        )
        self._writer = csv.writer(self._spool)

    def __call__(self, row: Any) -> str:
        self.count += 1
        number = "" if row.number is None else row.number
        self._writer.writerow((number, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    def rows(self) -> Iterator[list[str]]:
        """The spooled rows, in parse order: [record, expected, actual, text]."""
        self._spool.seek(0)
        yield from csv.reader(self._spool)

    def close(self) -> None:
        self._spool.close()


def record_lines(
    stream: BinaryIO, delimiter: str, field_limit: int = 1 << 24
) -> Iterator[tuple[int, int]]:
    """(record number, line it starts on) of every record, numbered as pyarrow numbers them.

    `field_limit` should be pyarrow's block size (no value it accepted can be longer); the csv
    module's limit is process-wide and is only ever raised here.
    """
    csv.field_size_limit(max(csv.field_size_limit(), field_limit))
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True)
    record = 0
    previous = 0
    try:
        for fields in reader:
            start, previous = previous + 1, reader.line_num
            if fields:  # blank lines are skipped, as pyarrow's ignore_empty_lines does
                record += 1
                yield record, start
    except csv.Error:
        return  # a field beyond csv.field_size_limit: the remaining lines stay unknown


def write_quarantine(
    bad: BadRows,
    open_source: Callable[[], BinaryIO],
    delimiter: str,
    out: BinaryIO,
    field_limit: int = 1 << 24,
) -> None:
    """Write the bad rows as CSV (`HEADER`) to `out`, each with the line it starts on."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(HEADER)
    with closing(open_source()) as source:
        lines = record_lines(source, delimiter, field_limit)
        current = (0, 0)
        for record, expected, actual, row in bad.rows():
            wanted = int(record) if record else None
            while wanted is not None and current[0] < wanted:
                current = next(lines, (wanted + 1, 0))
            line = current[1] if wanted is not None and current[0] == wanted else ""
            writer.writerow((line, record, expected, actual, row))
    text.flush()
    text.detach()
