"""Fixtures of the backup tests: a real moto S3 server, filled eventfn databases, a clock."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy
import urllib3
from sqlalchemy import Engine, Table

from eventfn._backup_bucket import Source
from eventfn._backup_repo import BackupRepo
from eventfn._objects import ObjectStore
from eventfn._tables import metadata

DATA_BUCKET = "eventfn-data"
BACKUP_BUCKET = "eventfn-backups"
_IN_LIST = re.compile(r"^\s*(\w+) IN \('([^']*)'")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the session (emptied before each test by `s3`)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client on an empty moto with the data and backup buckets created."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    urllib3.request("POST", s3_endpoint + "/moto-api/reset", timeout=10.0)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=DATA_BUCKET)
    client.create_bucket(Bucket=BACKUP_BUCKET)
    return client


@pytest.fixture
def repo(s3: Any) -> BackupRepo:
    """The backup bucket."""
    return BackupRepo(ObjectStore(s3, BACKUP_BUCKET))


@pytest.fixture
def source(s3: Any) -> Source:
    """The data bucket."""
    return Source(s3, DATA_BUCKET)


class Clock:
    """A controllable UTC clock: `advance` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _choices(table: Table) -> dict[str, str]:
    """The first allowed value of each `column IN ('a', ...)` check constraint."""
    found = {}
    for constraint in table.constraints:
        if isinstance(constraint, sqlalchemy.CheckConstraint):
            match = _IN_LIST.match(str(constraint.sqltext))
            if match:
                found[match.group(1)] = match.group(2)
    return found


def _value(table: Table, column: sqlalchemy.Column[Any], i: int) -> Any:
    choices = _choices(table)
    if column.name in choices:
        return choices[column.name]
    python_type = column.type.python_type
    if python_type is bool:
        return i % 2 == 0
    if python_type is int:
        return i * 7
    if python_type is float:
        return i + 0.25
    if python_type is bytes:
        return bytes([i % 256, 0, 255]) * 3
    if column.name == "tags":
        return json.dumps([f"tag{i % 3}", "común"])
    text = f"{i}-é-{table.name}-{column.name}"
    length = getattr(column.type, "length", None)
    return text[:length] if length else text


def fill(engine: Engine, rows: int = 25) -> dict[str, list[tuple[Any, ...]]]:
    """Insert `rows` rows into every eventfn table (some NULLs); returns `snapshot(engine)`."""
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            batch = []
            for i in range(rows):
                row = {c.name: _value(table, c, i) for c in table.columns}
                for column in table.columns:
                    if column.nullable and i % 5 == 0:
                        row[column.name] = None
                batch.append(row)
            connection.execute(table.insert(), batch)
    return snapshot(engine)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every eventfn table, sorted."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(row) for row in connection.execute(sqlalchemy.select(table))), key=repr
            )
            for table in metadata.sorted_tables
        }


def wipe(engine: Engine) -> None:
    """Delete every row of every eventfn table."""
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


class DbRows:
    """`fill`, `snapshot` and `wipe` for tests (conftest helpers cannot be imported)."""

    fill = staticmethod(fill)
    snapshot = staticmethod(snapshot)
    wipe = staticmethod(wipe)


@pytest.fixture
def db_rows() -> type[DbRows]:
    return DbRows


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    """A migrated SQLite database file, as a URL."""
    from eventfn._store import upgrade

    url = f"sqlite:///{tmp_path / 'source.db'}"
    upgrade(url)
    return url
