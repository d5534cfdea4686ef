"""Idempotent batched upserts (INSERT .. ON CONFLICT DO UPDATE) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from eventfn import InternalError

BATCH_ROWS = 500


def upsert(
    tx: Connection, table: Table, rows: list[Mapping[str, Any]], keep: Collection[str] = ()
) -> None:
    """Insert `rows`; a row whose primary key exists is updated, except the columns in `keep`."""
    if not rows:
        return
    dialect = tx.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise InternalError(f"no upsert for SQL dialect {dialect!r}")
    statement = insert(table)
    primary = [column.name for column in table.primary_key.columns]
    updates = {
        column.name: statement.excluded[column.name]
        for column in table.columns
        if column.name not in primary and column.name not in keep
    }
    tx.execute(statement.on_conflict_do_update(index_elements=primary, set_=updates), rows)


class BatchedUpsert:
    """Collects rows and upserts them `size` at a time, so memory stays flat on big files."""

    def __init__(
        self, tx: Connection, table: Table, keep: Collection[str] = (), size: int = BATCH_ROWS
    ) -> None:
        self._tx = tx
        self._table = table
        self._keep = keep
        self._size = size
        self._pending: list[Mapping[str, Any]] = []
        self.written = 0

    def add(self, row: Mapping[str, Any]) -> None:
        """Queue one row; a full batch is written at once."""
        self._pending.append(row)
        if len(self._pending) >= self._size:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows."""
        upsert(self._tx, self._table, self._pending, self._keep)
        self.written += len(self._pending)
        self._pending = []
