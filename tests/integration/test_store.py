"""The SQL store on real SQLite files and a real PostgreSQL: engines, migrations, readiness."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from eventfn._errors import ConfigurationError, DependencyUnavailable
from eventfn._store import (
    MIGRATION_LOCK_KEY,
    VERSION_TABLE,
    connect_read_only,
    create_engine_from_url,
    current_revision,
    head_revision,
    normalise_url,
    ping,
    translate_db_errors,
    upgrade,
)
from eventfn._tables import echo_messages, metadata

EVENTFN_TABLES = {"idempotency_records", "echo_messages"}


def _echo_row(n: int) -> dict[str, object]:
    return {
        "message_id": f"m{n}",
        "source_event": f"/tests/{n}",
        "message": "hello",
        "length": 5,
        "received_at": "2025-01-01T00:00:00Z",
    }


# --- URLs and engines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:pw@db:5432/app", "postgresql+psycopg://u:pw@db:5432/app"),
        ("postgresql://u@db/app?sslmode=require", "postgresql+psycopg://u@db/app?sslmode=require"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite:////var/lib/eventfn/state.db", "sqlite:////var/lib/eventfn/state.db"),
        ("/var/lib/eventfn/state.db", "sqlite:////var/lib/eventfn/state.db"),
        ("state/eventfn.db", "sqlite:///state/eventfn.db"),
    ],
)
def test_urls_are_normalised_to_psycopg_or_sqlite_files(given: str, expected: str) -> None:
    assert normalise_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "given",
    [":memory:", "", "sqlite://", "sqlite:///:memory:", "mysql://u:secret@db/app", "::://x"],
)
def test_unusable_urls_are_configuration_errors(given: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        normalise_url(given)
    assert "secret" not in str(raised.value)


def test_sqlite_engine_creates_its_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    engine = create_engine_from_url(path)
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert path.is_file()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1}


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    engine = create_engine_from_url(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        # no statement yet: BEGIN IMMEDIATE alone holds the lock
        with engine.begin(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        with connect_read_only(engine) as reader:
            reader.exec_driver_sql("SELECT 1").scalar_one()
            other.execute("BEGIN IMMEDIATE")  # a reader leaves writers free
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_sqlite_engine_works_across_threads(sqlite_engine: Engine) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with sqlite_engine.begin() as connection:
                connection.execute(insert(echo_messages).values(_echo_row(n)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with sqlite_engine.connect() as connection:
        assert len(connection.execute(select(echo_messages)).all()) == 8


# --- migrations ----------------------------------------------------------------------------------


# Migration 0004's full-text search objects are dialect-specific, so they are not in `metadata`:
# on SQLite the FTS5 table users_fts and the shadow tables FTS5 makes for it (users_fts_*), on
# PostgreSQL the generated column users.search and its GIN index. The schema match ignores them.
SEARCH_TABLE_PREFIX = "users_fts"
SEARCH_COLUMNS = {"users": {"search"}}
SEARCH_INDEXES = {"ix_users_search"}


def _in_metadata(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "table":
        return not (name or "").startswith(SEARCH_TABLE_PREFIX)
    if type_ == "column":
        return name not in SEARCH_COLUMNS.get(parent_names.get("table_name") or "", set())
    return not (type_ == "index" and name in SEARCH_INDEXES)


def _assert_schema_matches_metadata(engine: Engine) -> None:
    inspector = inspect(engine)
    names = set(inspector.get_table_names())
    if engine.dialect.name == "sqlite":  # the ignored objects are there all the same
        assert SEARCH_TABLE_PREFIX in names
    else:
        assert "search" in {column["name"] for column in inspector.get_columns("users")}
    tables = {name for name in names if _in_metadata(name, "table", {})}
    assert tables - {VERSION_TABLE} == set(metadata.tables)
    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns - SEARCH_COLUMNS.get(table.name, set()) == set(table.columns.keys()), (
            table.name
        )
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                "include_name": _in_metadata,
            },
        )
        assert compare_metadata(context, metadata) == []


def _assert_upgrade_is_idempotent(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= EVENTFN_TABLES
    with engine.begin() as connection:
        connection.execute(insert(echo_messages).values(_echo_row(1)))
    assert upgrade(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(select(echo_messages.c.message_id)).scalars().all() == ["m1"]
    _assert_schema_matches_metadata(engine)


def test_upgrade_on_sqlite_creates_the_schema_once(tmp_path: Path) -> None:
    engine = create_engine_from_url(tmp_path / "state.db")
    try:
        _assert_upgrade_is_idempotent(engine)
    finally:
        engine.dispose()


def test_upgrade_accepts_a_url_and_disposes_its_engine(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    assert upgrade(f"sqlite:///{path}") == head_revision()
    engine = create_engine_from_url(path)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_upgrade_on_postgres_creates_the_schema_once(empty_postgres_url: str) -> None:
    engine = create_engine_from_url(empty_postgres_url)
    try:
        _assert_upgrade_is_idempotent(engine)
    finally:
        engine.dispose()


def test_threads_starting_together_migrate_once_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine_from_url(tmp_path / "state.db")
    barrier = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(upgrade(engine))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert errors == []
    assert results == [head_revision()] * 4


def _waiting_for_migration_lock(connection: Connection) -> int:
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return int(connection.execute(query).scalar_one())


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_processes_starting_together_migrate_once_on_postgres(empty_postgres_url: str) -> None:
    holder = create_engine_from_url(empty_postgres_url)
    script = "import sys; from eventfn._store import upgrade; print(upgrade(sys.argv[1]))"
    with holder.connect() as lock, holder.connect() as observer:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        lock.commit()
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, empty_postgres_url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        try:
            deadline = time.monotonic() + 60
            while _waiting_for_migration_lock(observer) < 4:  # all four queue up at the lock
                observer.rollback()
                assert time.monotonic() < deadline, "the migrations did not wait for the lock"
                time.sleep(0.05)
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            outputs = [process.communicate(timeout=60) for process in processes]
        finally:
            for process in processes:
                process.kill()
    holder.dispose()
    assert [process.returncode for process in processes] == [0] * 4, outputs
    assert [out.strip() for out, _ in outputs] == [head_revision()] * 4


# --- readiness and error mapping ----------------------------------------------------------------


def test_ping_answers_true_on_sqlite(sqlite_engine: Engine) -> None:
    assert ping(sqlite_engine) is True


@pytest.mark.postgres
def test_ping_answers_true_on_postgres(pg_engine: Engine) -> None:
    assert ping(pg_engine) is True


def test_ping_answers_false_when_nothing_listens(unreachable_postgres_url: str) -> None:
    engine = create_engine_from_url(unreachable_postgres_url)
    try:
        assert ping(engine) is False
    finally:
        engine.dispose()


def test_unreachable_database_is_dependency_unavailable(unreachable_postgres_url: str) -> None:
    engine = create_engine_from_url(unreachable_postgres_url)
    try:
        with (
            pytest.raises(DependencyUnavailable) as raised,
            translate_db_errors(),
            engine.connect() as connection,
        ):
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    error = raised.value
    assert (error.status, error.retry_after) == (503, 1)
    assert isinstance(error.__cause__, OperationalError)
    assert "127.0.0.1" not in error.detail
    assert "127.0.0.1" not in str(error.problem())


def test_migrating_an_unreachable_database_is_dependency_unavailable(
    unreachable_postgres_url: str,
) -> None:
    with pytest.raises(DependencyUnavailable):
        upgrade(unreachable_postgres_url)


def test_translation_leaves_other_database_errors_alone(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        connection.execute(insert(echo_messages).values(_echo_row(1)))
    with (
        pytest.raises(IntegrityError),
        translate_db_errors(),
        sqlite_engine.begin() as connection,
    ):
        connection.execute(insert(echo_messages).values(_echo_row(1)))


@pytest.mark.postgres
def test_dropped_postgres_connection_is_dependency_unavailable(pg_engine: Engine) -> None:
    with (
        pytest.raises(DependencyUnavailable),
        translate_db_errors(),
        pg_engine.connect() as victim,
    ):
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with pg_engine.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        victim.exec_driver_sql("SELECT 1")
    assert ping(pg_engine) is True  # the pool replaces the dead connection
