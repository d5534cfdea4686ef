"""Fixtures shared by every test tier: real databases, fresh for each session or test.

PostgreSQL comes from EVENTFN_TEST_DATABASE_URL when set, else from a throwaway cluster started
with the local `initdb`/`pg_ctl`; without either the PostgreSQL tests are skipped. Each session
works in a database of its own, dropped at the end, so parallel runs never see each other.

Test helper modules (`dev_testing`, `mesh_testing`, `ops_testing`, `wf_testing`...) are imported
by name: pytest runs with --import-mode=importlib, which puts no test directory on sys.path, so
this puts the directories that hold them there.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from eventfn._store import create_engine_from_url, normalise_url, upgrade
from eventfn._tables import metadata

TEST_DATABASE_URL_ENV = "EVENTFN_TEST_DATABASE_URL"
_PG_TIMEOUT_S = 120
_INITDB = ("--auth=trust", "--encoding=UTF8", "--no-sync")
_HELPER_DIRS = ("chart", "harness", "mesh", "pipelines", "unit", "workflow")

for _helpers in (str(Path(__file__).parent / name) for name in _HELPER_DIRS):
    if _helpers not in sys.path:
        sys.path.insert(0, _helpers)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).parent] if found else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()],
    )
    candidates += reversed(versions)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


@contextmanager
def _throwaway_cluster() -> Iterator[str]:
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip(f"no PostgreSQL: set {TEST_DATABASE_URL_ENV} or install initdb/pg_ctl")
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="eventfn-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no postgres user for a throwaway cluster")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", *_INITDB],
            check=True,
            capture_output=True,
            timeout=_PG_TIMEOUT_S,
        )
        subprocess.run(
            [*pg_ctl, "-o", options, "-l", str(root / "server.log"), "-w", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_PG_TIMEOUT_S,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=_PG_TIMEOUT_S,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards."""
    url = normalise_url(server_url)
    name = f"eventfn_test_{secrets.token_hex(6)}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database created for this test session."""
    with ExitStack() as stack:
        server = os.environ.get(TEST_DATABASE_URL_ENV) or stack.enter_context(_throwaway_cluster())
        yield stack.enter_context(_fresh_database(server))


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    """The URL of a brand-new empty database, for tests that migrate or break one."""
    with _fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def unreachable_postgres_url() -> str:
    """A PostgreSQL URL on a loopback port where nothing listens."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/nothing"


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture
def pg_engine(migrated_postgres_url: str) -> Iterator[Engine]:
    """An engine on the migrated session database, every eventfn table emptied first."""
    engine = create_engine_from_url(migrated_postgres_url)
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE TABLE {tables}")
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated SQLite file of its own."""
    engine = create_engine_from_url(tmp_path / "state" / "eventfn.db")
    upgrade(engine)
    yield engine
    engine.dispose()
