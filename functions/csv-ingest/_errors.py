"""The permanent errors of csv-ingest: each one a 4xx problem with its own code (dead-lettered)."""

from __future__ import annotations

from eventfn import Rejected


class CsvEmpty(Rejected):
    """The object has no bytes, or nothing but a byte order mark and blank lines."""

    code = "csv-empty"
    title = "CSV file is empty"


class CsvNotUtf8(Rejected):
    """The object is not UTF-8 text; `offset` is the first invalid byte (0-based)."""

    code = "csv-not-utf8"
    title = "CSV file is not UTF-8"

    def __init__(self, offset: int, line: int) -> None:
        super().__init__(
            f"the file is not valid UTF-8: invalid byte at offset {offset} (line {line})",
            field="data.key",
        )
        self.offset = offset
        self.line = line


class CsvUnparseable(Rejected):
    """The CSV cannot be parsed (e.g. one row larger than the parser's block size)."""

    code = "csv-unparseable"
    title = "CSV file cannot be parsed"


class CsvReservedColumn(Rejected):
    """The header names a column that csv-ingest adds itself."""

    code = "csv-reserved-column"
    title = "CSV header uses a reserved column name"


class CsvObjectMissing(Rejected):
    """The object named by the event does not exist (any more)."""

    code = "csv-object-missing"
    title = "CSV object not found"
