"""Test helpers of user-indexer and lake-archiver: Avro user events as an independent producer
makes them (fastavro and the registry's .avsc), the two functions served through the WSGI test
client, a real S3 API (moto's server on loopback), and the CLI registrars run in-process.

Imported by name (tests/conftest.py puts this directory on sys.path), like ops_testing.py.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from loopback_testing import moto_server, s3_client
from sqlalchemy import Engine, select
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary, encode_structured
from eventfn._store import create_engine_from_url
from eventfn._tables_domain import lake_events, users
from eventfn._tracing import Tracer
from eventfn._user_search import search_users

ROOT = Path(__file__).resolve().parents[2]
CREATED = "eventfn.user.created.v1"
UPDATED = "eventfn.user.updated.v1"
AVRO = "application/avro"
BUCKET = "eventfn-data"
T0 = datetime(2026, 11, 28, 9, 30, 0, 125000, tzinfo=UTC)
T0_MILLIS = 1795858200125


def avro_body(event_type: str, record: dict[str, Any]) -> bytes:
    """The record encoded with the registry's schema file, by fastavro directly."""
    document = json.loads((ROOT / "schemas" / f"{event_type}.avsc").read_text(encoding="utf-8"))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(document), record)
    return buffer.getvalue()


def user(
    version: int, *, name: str = "Ada Lovelace", millis: int = 0, **extra: Any
) -> dict[str, Any]:
    """A user record (u-42 unless `user_id` is given), written `millis` after T0."""
    record = {
        "user_id": "u-42",
        "email": "ada@example.org",
        "name": name,
        "version": version,
        "updated_at": T0 + timedelta(milliseconds=millis),
        "tags": ["analyst", "beta-tester"],
    }
    return {**record, **extra}


def user_event(
    event_type: str,
    record: dict[str, Any],
    *,
    time: str = "2026-11-28T09:30:01Z",
    event_id: str | None = None,
    partition: str | None = "",
) -> Event:
    """The Avro CloudEvent of `record`; `partitionkey` is the user id unless given (None: no
    extension)."""
    key = str(record["user_id"]) if partition == "" else partition
    return Event(
        type=event_type,
        source="/eventfn/ingest-api",
        id=event_id or f"{event_type}-{record['user_id']}-{record['version']}-{time}",
        data=avro_body(event_type, record),
        subject=f"users/{record['user_id']}",
        time=time,
        datacontenttype=AVRO,
        extensions={} if key is None else {"partitionkey": key},
    )


def deliver(client: Client, event: Event, mode: str = "binary") -> TestResponse:
    headers, body = encode_binary(event) if mode == "binary" else encode_structured(event)
    return client.post("/", data=body, headers=headers)


def function_settings(tmp_path: Path, database_url: str | None = None, **extra: Any) -> Settings:
    return Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state",
        database_url=database_url,
        **extra,
    )


@contextmanager
def served(name: str, settings: Settings) -> Iterator[tuple[Client, Engine]]:
    """The function's test client and an engine on its database."""
    wsgi = create_app(name, settings=settings, tracer=Tracer(name, enabled=False), env={})
    engine = create_engine_from_url(settings.effective_database_url)
    try:
        yield wsgi.test_client(), engine
    finally:
        engine.dispose()
        wsgi.close()


def table_rows(engine: Engine, table: Any, order: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        result = connection.execute(select(table).order_by(table.c[order]))
        return [dict(row._mapping) for row in result]


# -- user-indexer --------------------------------------------------------------------------------


@dataclass
class Indexer:
    client: Client
    engine: Engine

    def rows(self) -> list[dict[str, Any]]:
        return table_rows(self.engine, users, "user_id")

    def search(self, query: str) -> list[str]:
        with self.engine.connect() as connection:
            return [match.user_id for match in search_users(connection, query)]


@contextmanager
def indexer(tmp_path: Path, database_url: str | None = None) -> Iterator[Indexer]:
    with served("user-indexer", function_settings(tmp_path, database_url)) as (client, engine):
        yield Indexer(client, engine)


def search_checks(index: Indexer) -> None:
    """Index three users (one renamed) and search them; the same answers on both databases."""
    others = [
        user(1, user_id="u-7", name="Grace Hopper", email="grace@navy.example", tags=["admiral"]),
        user(1, user_id="u-9", name="Alan Turing", email="alan@example.org", tags=["analyst"]),
    ]
    for record in others:
        assert deliver(index.client, user_event(CREATED, record)).status_code == 204
    first = user_event(CREATED, user(1, name="Ada Byron"))
    assert deliver(index.client, first).status_code == 204
    assert index.search("byron") == ["u-42"]
    renamed = user_event(UPDATED, user(2, name="Ada Lovelace"))
    assert deliver(index.client, renamed).status_code == 204
    assert index.search("byron") == []  # the index follows the stored version
    assert index.search("Lovelace") == ["u-42"]
    assert index.search("hopper admiral") == ["u-7"]
    assert index.search("grace@navy.example") == ["u-7"]
    assert index.search("navy") == ["u-7"]  # a part of the e-mail address
    assert index.search("analyst")[0] == "u-9"  # the only tag of u-9: ranked first
    assert set(index.search("analyst")) == {"u-42", "u-9"}
    assert index.search("analyst -turing") == ["u-42"]
    assert set(index.search("hopper or turing")) == {"u-7", "u-9"}
    assert index.search('"alan turing"') == ["u-9"]
    assert index.search('"turing alan"') == []
    assert index.search("turing alan") == ["u-9"]
    assert index.search('" OR * NEAR( ) ^ :') == []
    assert index.search("nobody") == []


# -- S3 and the lake -----------------------------------------------------------------------------


@dataclass
class Lake:
    client: Client
    engine: Engine
    s3: Any
    settings: Settings

    def objects(self, suffix: str = "") -> dict[str, bytes]:
        """Every object of the data bucket under events/ (ending in `suffix`)."""
        found = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix="events/"):
            for item in page.get("Contents", ()):
                if item["Key"].endswith(suffix):
                    body = self.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                    found[item["Key"]] = body
        return found

    def lines(self) -> list[dict[str, Any]]:
        """Every NDJSON line in the lake, parsed."""
        bodies = self.objects(".ndjson").values()
        return [json.loads(line) for body in bodies for line in body.decode().splitlines()]

    def staged(self) -> list[dict[str, Any]]:
        return table_rows(self.engine, lake_events, "event_key")


@contextmanager
def lake(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    **settings: Any,
) -> Iterator[Lake]:
    """lake-archiver with a fresh moto S3 and its data bucket; `env`: LAKE_* settings."""
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    with moto_server(monkeypatch) as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        options = {"s3_endpoint_url": endpoint, "bucket": BUCKET, **settings}
        config = function_settings(tmp_path, database_url, **options)
        with served("lake-archiver", config) as (client, engine):
            yield Lake(client, engine, s3, config)


def run_cli(register: Callable[[Any], None], argv: list[str]) -> int:
    """Parse `argv` with one CLI registrar and run the command, as `eventfn` would."""
    from eventfn._errors import ConfigurationError, EventfnError

    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        code: int = args.command(args)
    except (ConfigurationError, EventfnError) as error:
        print(f"eventfn: {error}")
        return 1
    return code
