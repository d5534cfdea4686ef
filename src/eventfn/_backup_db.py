"""`eventfn backup db` / `restore db`: a consistent snapshot of every table of the SQL store.

PostgreSQL is read in one REPEATABLE READ, READ ONLY transaction; SQLite is first copied with
the online backup API and the copy is read. The tables are those of `eventfn._tables.metadata`
(the schema at the newest migration), so dialect-specific derived data is not copied: the
generated `users.search` column of PostgreSQL and the FTS5 `users_fts` table of SQLite are
rebuilt by the database (generated column; triggers on `users`) while rows are restored.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, Table

from eventfn._backup_repo import (
    FORMAT_VERSION,
    BackupRepo,
    SnapshotCorrupt,
    TargetNotEmpty,
    iso,
    require,
    sha256_bytes,
)
from eventfn._backup_rows import TableWriter, lines_digest, read_lines, stream_rows, table_digest
from eventfn._errors import ConfigurationError
from eventfn._store import create_engine_from_url, current_revision, normalise_url
from eventfn._tables import metadata

Clock = Callable[[], datetime]
_INSERT_BATCH = 1000


def tables() -> list[Table]:
    """Every eventfn table, parents before children."""
    return list(metadata.sorted_tables)


@contextmanager
def consistent_connection(url: str) -> Iterator[Connection]:
    """A connection that sees one point in time of the database at `url`."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine_from_url(url, pool_size=1, max_overflow=0)
        try:
            with engine.connect() as raw:
                connection = raw.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                with connection.begin():
                    yield connection
        finally:
            engine.dispose()
        return
    assert parsed.database is not None
    if not Path(parsed.database).is_file():
        raise ConfigurationError(f"there is no database at {parsed.database}")
    with tempfile.TemporaryDirectory(prefix="eventfn-backup-") as scratch:
        copy = Path(scratch) / "snapshot.db"
        sqlite_online_copy(Path(parsed.database), copy)
        engine = sqlalchemy.create_engine(f"sqlite:///{copy}")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


def sqlite_online_copy(source: Path, target: Path) -> None:
    """sqlite3's online backup API: a consistent copy while writers keep going."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup_db(url: str, repo: BackupRepo, snap: str, clock: Clock) -> dict[str, Any]:
    """Write every table and the manifest under `db/<snap>/`; returns the manifest."""
    started, t0 = clock(), time.monotonic()
    dialect = normalise_url(url).get_backend_name()
    entries = []
    with consistent_connection(url) as connection:
        revision = _revision(connection)
        for table in tables():
            entries.append(_dump_table(connection, table, repo, snap))
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "db",
        "snapshot_id": snap,
        "dialect": dialect,
        "revision": revision,
        "started_at": iso(started),
        "ended_at": iso(clock()),
        "duration_seconds": round(time.monotonic() - t0, 3),
        "tables": entries,
        "bytes": sum(int(e["bytes"]) for e in entries),
        "rows": sum(int(e["rows"]) for e in entries),
    }
    repo.write_manifest("db", snap, manifest)
    return manifest


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from eventfn._store import VERSION_TABLE

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    revision = context.get_current_revision()
    return None if revision is None else str(revision)


def _dump_table(connection: Connection, table: Table, repo: BackupRepo, snap: str) -> Any:
    columns = [column.name for column in table.columns]
    with tempfile.TemporaryFile() as spool:
        writer = TableWriter(spool)
        for line in stream_rows(connection, table, columns):
            writer.write(line)
        digest = writer.close()
        spool.seek(0)
        data = spool.read()
    key = f"db/{snap}/{table.name}.jsonl.gz"
    repo.put(key, data)
    return {
        "table": table.name,
        "file": f"{table.name}.jsonl.gz",
        "columns": columns,
        "rows": writer.rows,
        "digest": digest,
        "sha256": sha256_bytes(data),
        "bytes": len(data),
    }


def verify_db(repo: BackupRepo, manifest: dict[str, Any]) -> None:
    """Re-read every table file: sha256, row count and digest must match the manifest."""
    for entry in manifest["tables"]:
        _checked_file(repo, manifest["snapshot_id"], entry)


def _checked_file(repo: BackupRepo, snap: str, entry: dict[str, Any]) -> bytes:
    data = repo.get(f"db/{snap}/{entry['file']}")
    require(sha256_bytes(data) == entry["sha256"], f"{entry['file']}: sha256 mismatch")
    rows, digest = lines_digest(data)
    require(rows == entry["rows"], f"{entry['file']}: {rows} rows, manifest says {entry['rows']}")
    require(digest == entry["digest"], f"{entry['file']}: content digest mismatch")
    return data


def restore_db(repo: BackupRepo, snap: str, target: str, *, force: bool = False) -> dict[str, Any]:
    """Migrate `target` to the snapshot's revision, load every table, compare with the manifest."""
    manifest = repo.manifest("db", snap)
    files = {e["table"]: _checked_file(repo, snap, e) for e in manifest["tables"]}
    engine = create_engine_from_url(target)
    try:
        migrate_to(engine, manifest["revision"])
        by_name = {table.name: table for table in tables()}
        with engine.begin() as connection:
            _prepare_target(connection, [by_name[e["table"]] for e in manifest["tables"]], force)
            for entry in manifest["tables"]:
                _load(connection, by_name[entry["table"]], entry["columns"], files[entry["table"]])
        result = compare_db(engine, manifest)
    finally:
        engine.dispose()
    return result


def migrate_to(engine: Engine, revision: str | None) -> None:
    """Bring an empty or older database to `revision` (the head when None)."""
    from alembic import command

    from eventfn._store import _alembic_config, _alembic_guard

    with _alembic_guard, engine.connect() as connection:
        command.upgrade(_alembic_config(connection), revision or "head")
        if connection.in_transaction():
            connection.commit()


def _prepare_target(connection: Connection, restored: list[Table], force: bool) -> None:
    occupied = [t.name for t in restored if _has_rows(connection, t)]
    if occupied and not force:
        raise TargetNotEmpty(
            f"the target database has rows in {', '.join(occupied)}: pass --force to replace them"
        )
    for table in reversed(restored):
        connection.execute(table.delete())


def _has_rows(connection: Connection, table: Table) -> bool:
    return connection.execute(sqlalchemy.select(1).select_from(table).limit(1)).first() is not None


def _load(connection: Connection, table: Table, columns: list[str], data: bytes) -> None:
    batch: list[dict[str, Any]] = []
    for values in read_lines(data):
        batch.append(dict(zip(columns, values, strict=True)))
        if len(batch) >= _INSERT_BATCH:
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)


def compare_db(engine: Engine, manifest: dict[str, Any]) -> dict[str, Any]:
    """Row counts and digests of the live database against the manifest; raises on mismatch."""
    by_name = {table.name: table for table in tables()}
    with engine.connect() as connection:
        for entry in manifest["tables"]:
            rows, digest = table_digest(connection, by_name[entry["table"]], entry["columns"])
            if rows != entry["rows"] or digest != entry["digest"]:
                raise SnapshotCorrupt(f"restored table {entry['table']} differs from the snapshot")
    revision = current_revision(engine)
    require(revision == manifest["revision"], "restored database is at another migration")
    return {"tables": len(manifest["tables"]), "rows": manifest["rows"]}
