"""The SQL store: engines from a URL or a file path, readiness, error mapping and migrations.

SQLite (a file) is the default and PostgreSQL (through psycopg 3) the cluster choice; the same
SQLAlchemy Core code runs on both. On SQLite every connection gets WAL, a 5 s busy timeout and
foreign keys, and eventfn emits `BEGIN IMMEDIATE` itself, so a transaction takes the write lock
when it starts instead of failing with "database is locked" when it first writes. Reads that
must not wait for writers use `connect_read_only`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from eventfn._errors import ConfigurationError, DependencyUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE: Final = "eventfn_alembic_version"
READ_ONLY_OPTION: Final = "eventfn_read_only"
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
POSTGRES_CONNECT_TIMEOUT_S: Final = 5
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Held while migrating PostgreSQL, so processes starting together migrate one at a time.
MIGRATION_LOCK_KEY: Final = 0x6576656E74666E  # "eventfn"
_POSTGRES_SCHEMES: Final = frozenset({"postgres", "postgresql", "postgresql+psycopg"})
_UNAVAILABLE_DETAIL: Final = "the database is unavailable"

_log = logging.getLogger(__name__)
_alembic_guard = threading.Lock()  # alembic's `context` is process-global: one run at a time


def normalise_url(url_or_path: str | os.PathLike[str]) -> URL:
    """The SQLAlchemy URL for a database URL or a SQLite file path.

    `postgres://` and `postgresql://` become `postgresql+psycopg://`; anything without `://`
    is a SQLite file path. In-memory SQLite is refused: every pooled connection would see a
    different, empty database.
    """
    text = os.fspath(url_or_path)
    if "://" not in text:
        if not text or text == ":memory:":
            raise ConfigurationError("the SQLite database must be a file path, not in-memory")
        return URL.create("sqlite", database=text)
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigurationError("the database URL cannot be parsed") from None
    if url.drivername in _POSTGRES_SCHEMES:
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in {"sqlite", "sqlite+pysqlite"}:
        if not url.database or url.database == ":memory:":
            raise ConfigurationError("the SQLite database must be a file path, not in-memory")
        return url
    raise ConfigurationError(
        f"unsupported database {url.drivername!r}: use a SQLite file path or a PostgreSQL URL"
    )


def create_engine_from_url(
    url_or_path: str | os.PathLike[str], *, pool_size: int = 5, max_overflow: int = 10
) -> Engine:
    """An engine for a SQLite file (parent directory created) or a PostgreSQL URL."""
    url = normalise_url(url_or_path)
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url, pool_size, max_overflow)
        return sqlalchemy.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
        )
    except (ImportError, NoSuchModuleError):
        raise ConfigurationError("PostgreSQL needs psycopg 3: install eventfn[postgres]") from None


def _sqlite_engine(url: URL, pool_size: int, max_overflow: int) -> Engine:
    assert url.database is not None  # normalise_url refuses in-memory databases
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; `_sqlite_on_begin` emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL never corrupts and loses nothing when a process dies (kill -9):
        # only an OS crash or power loss may roll back the last commits. It saves an fsync per
        # commit (~10 ms per idempotent event here). PostgreSQL is the store for durability.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def connect_read_only(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite its transactions never wait for the write lock."""
    return engine.connect().execution_options(**{READ_ONLY_OPTION: True})


@cache
def _driver_unavailable_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn "cannot reach the database" failures into `DependencyUnavailable` (503, retry in 1 s).

    Covers failing to connect, a connection dropped mid-transaction, an exhausted pool and
    SQLite's lock timeout. Every other exception passes unchanged.
    """
    try:
        yield
    except (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError) as error:
        raise DependencyUnavailable(_UNAVAILABLE_DETAIL, retry_after=1) from error
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        raise DependencyUnavailable(_UNAVAILABLE_DETAIL, retry_after=1) from error
    except _driver_unavailable_errors() as error:
        raise DependencyUnavailable(_UNAVAILABLE_DETAIL, retry_after=1) from error


def ping(engine: Engine) -> bool:
    """Readiness: can the database answer `SELECT 1` right now? Never raises."""
    try:
        with connect_read_only(engine) as connection:
            connection.exec_driver_sql("SELECT 1").scalar_one()
    except Exception as error:  # readiness must answer, whatever went wrong
        _log.warning("database ping failed: %s", type(error).__name__)
        return False
    return True


# --- migrations ------------------------------------------------------------------------------


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of eventfn."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise ConfigurationError("eventfn ships no migrations")
    return str(head)


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for a database eventfn never migrated."""
    from alembic.runtime.migration import MigrationContext

    with translate_db_errors(), connect_read_only(engine) as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        revision = context.get_current_revision()
    return None if revision is None else str(revision)


def upgrade(url_or_engine: str | os.PathLike[str] | Engine) -> str:
    """Migrate the database to the newest revision and return it; a no-op when already there.

    Safe when several threads or processes start at once: PostgreSQL takes an advisory lock,
    SQLite's `BEGIN IMMEDIATE` serialises. Pass an engine from `create_engine_from_url`.
    """
    if isinstance(url_or_engine, Engine):
        engine, owned = url_or_engine, False
    else:
        engine, owned = create_engine_from_url(url_or_engine), True
    try:
        shipped = shipped_head()
        if shipped is not None and _recorded_revision(engine) == shipped:
            return shipped  # up to date: no need to import and run alembic (cold start)
        from alembic import command

        with _alembic_guard, translate_db_errors(), engine.connect() as connection:
            command.upgrade(_alembic_config(connection), "head")
            if connection.in_transaction():
                connection.commit()
    finally:
        if owned:
            engine.dispose()
    return head_revision()


_REVISION_LINE = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(None|"([^"]*)")', re.M)


@cache
def shipped_head() -> str | None:
    """The head of the shipped migration chain, read from the files without importing alembic.

    None when the chain is not a single line (then alembic decides).
    """
    parents: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {m.group(1): m.group(3) for m in _REVISION_LINE.finditer(path.read_text())}
        if "revision" not in found or found["revision"] is None:
            return None
        parents[found["revision"]] = found.get("down_revision")
    heads = set(parents) - {parent for parent in parents.values() if parent}
    return heads.pop() if len(heads) == 1 else None


def _recorded_revision(engine: Engine) -> str | None:
    """The revision in eventfn's version table, or None when there is none yet."""
    query = sqlalchemy.text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - constant
    try:
        with connect_read_only(engine) as connection:
            rows = connection.execute(query).scalars().all()
    except sqlalchemy.exc.DBAPIError:
        return None  # no version table yet, or unreachable: the alembic path reports it
    return str(rows[0]) if len(rows) == 1 else None


def lock_for_migration(connection: Connection) -> None:
    """Serialise migrations on PostgreSQL until the migrating transaction ends (env.py)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
