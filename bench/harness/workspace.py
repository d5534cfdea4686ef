"""Scratch space of the benchmark: the eventfn function folder, a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
PEERS_DIR = BENCH_DIR / "peers"
FUNCTION_NAME = "benchecho"
DATABASE_URL_ENV = "EVENTFN_BENCH_DATABASE_URL"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def write_function(root: Path) -> Path:
    """Copy bench/peers/eventfn_handler.py to `root/functions/benchecho/handler.py`."""
    functions = root / "functions"
    folder = functions / FUNCTION_NAME
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PEERS_DIR / "eventfn_handler.py", folder / "handler.py")
    return functions


@dataclass(frozen=True)
class Postgres:
    """A usable database URL, or the reason there is none."""

    url: str | None
    note: str


def _answers(url: str) -> str | None:
    """None when a TCP connection to the URL's host and port opens, else the reason."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host, port = parsed.host or "127.0.0.1", parsed.port or 5432
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as error:
        return f"{host}:{port} does not answer ({type(error).__name__})"


@contextmanager
def postgres_database(env: dict[str, str] | None = None) -> Iterator[Postgres]:
    """A fresh database on the configured server for the run, dropped afterwards.

    The server URL is EVENTFN_BENCH_DATABASE_URL, else the local default. When the role may not
    create databases, the URL's own database is used as is.
    """
    env = dict(os.environ) if env is None else env
    base = env.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    reason = _answers(base)
    if reason is not None:
        yield Postgres(None, f"PostgreSQL skipped: {reason}")
        return
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        yield Postgres(None, "PostgreSQL skipped: psycopg is not installed (eventfn[postgres])")
        return
    server_url = make_url(base).set(drivername="postgresql+psycopg")
    admin = create_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"eventfn_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as error:
        admin.dispose()
        note = f"could not create a database ({type(error).__name__}); using {server_url.database}"
        yield Postgres(server_url.render_as_string(hide_password=False), note)
        return
    try:
        url = server_url.set(database=name).render_as_string(hide_password=False)
        yield Postgres(url, f"PostgreSQL: throwaway database {name}")
    finally:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
