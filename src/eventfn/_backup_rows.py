"""Table rows as deterministic JSON lines: the file format and the digest of a db snapshot.

One line per row, a JSON array in the column order the manifest lists; values JSON cannot carry
are tagged (`{"$b": base64}` for bytes, `{"$t": iso}` for datetimes, `{"$d": str}` for
decimals). The same encoding of the same rows always gives the same bytes, so the sha256 of the
uncompressed lines is a per-table digest that a restored database must reproduce.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Connection, Table, select


def encode_value(value: Any) -> Any:
    """A JSON-safe form of one column value."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return {"$t": value.isoformat(), "k": type(value).__name__}
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    return value


def decode_value(value: Any) -> Any:
    """The inverse of `encode_value`."""
    if not isinstance(value, dict):
        return value
    if "$b" in value:
        return base64.b64decode(value["$b"])
    if "$d" in value:
        return Decimal(value["$d"])
    text = str(value["$t"])
    if value["k"] == "datetime":
        return dt.datetime.fromisoformat(text)
    if value["k"] == "date":
        return dt.date.fromisoformat(text)
    return dt.time.fromisoformat(text)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_row(row: Iterable[Any]) -> bytes:
    """One JSON line (with its newline)."""
    values = [v if type(v) in _PLAIN else encode_value(v) for v in row]
    return _DUMPS(values).encode() + b"\n"


def ordered_select(table: Table, columns: list[str]) -> Any:
    """SELECT the columns ordered by primary key (by every column without one)."""
    keys = [column for column in table.primary_key.columns] or [table.c[c] for c in columns]
    return select(*(table.c[c] for c in columns)).order_by(*keys)


def stream_rows(connection: Connection, table: Table, columns: list[str]) -> Iterator[bytes]:
    """Encoded rows of `table` in primary-key order, fetched in batches."""
    result = connection.execution_options(stream_results=True, yield_per=2000).execute(
        ordered_select(table, columns)
    )
    for row in result:
        yield encode_row(row)


class TableWriter:
    """Gzip-compresses lines into `sink` while hashing the uncompressed content (the digest)."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6)
        self._digest = hashlib.sha256()
        self._buffer: list[bytes] = []
        self.rows = 0

    def write(self, line: bytes) -> None:
        """Add one encoded row."""
        self._buffer.append(line)
        self.rows += 1
        if len(self._buffer) >= 1000:
            self._flush()

    def _flush(self) -> None:
        chunk = b"".join(self._buffer)
        self._buffer.clear()
        self._gzip.write(chunk)
        self._digest.update(chunk)

    def close(self) -> str:
        """Finish the gzip stream; returns the digest."""
        self._flush()
        self._gzip.close()
        return self._digest.hexdigest()


def table_digest(connection: Connection, table: Table, columns: list[str]) -> tuple[int, str]:
    """(rows, digest) of a live table, to compare with the manifest after a restore."""
    digest = hashlib.sha256()
    rows = 0
    for line in stream_rows(connection, table, columns):
        digest.update(line)
        rows += 1
    return rows, digest.hexdigest()


def read_lines(compressed: bytes) -> Iterator[list[Any]]:
    """Decoded rows of a gzip'd JSON-lines table file."""
    for line in gzip.decompress(compressed).splitlines():
        if line:
            yield [decode_value(v) if type(v) is dict else v for v in json.loads(line)]


def lines_digest(compressed: bytes) -> tuple[int, str]:
    """(rows, digest) of a table file: what verify compares with the manifest."""
    raw = gzip.decompress(compressed)
    return raw.count(b"\n"), hashlib.sha256(raw).hexdigest()
