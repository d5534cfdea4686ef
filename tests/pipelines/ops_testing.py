"""Test helpers of the ops pipelines (backup-auditor, log-processor): a real S3 API (moto's
server on loopback), a loopback broker stand-in recording emitted events, and a harness that
serves one function through the WSGI test client against them.

Imported by name (tests/conftest.py puts this directory on sys.path), like
tests/mesh/mesh_testing.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loopback_testing import Sink, moto_server, s3_client, sink_server
from sqlalchemy import Engine, Table, select
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary, encode_structured
from eventfn._context import derived_id
from eventfn._store import create_engine_from_url
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "eventfn-data"
CREATED = "eventfn.storage.object.created.v1"
EVENT_TIME = "2026-11-28T12:00:00Z"


def created_event(
    key: str, etag: str, size: int, *, event_id: str | None = None, bucket: str = BUCKET
) -> Event:
    """The event storage-source emits for an uploaded object."""
    data = {"bucket": bucket, "key": key, "size": size, "etag": etag, "event_time": EVENT_TIME}
    return Event(
        type=CREATED,
        source=f"s3://{bucket}",
        id=event_id or derived_id("tests", bucket, key, etag),
        data=data,
        subject=key,
        time=EVENT_TIME,
        datacontenttype="application/json",
    )


@dataclass
class Harness:
    """One function served through the test client, with its S3 bucket, broker and tables."""

    client: Client
    s3: Any
    sink: Sink
    engine: Engine

    def upload(self, key: str, body: bytes, *, event_id: str | None = None) -> Event:
        """Put an object and return its created event (not delivered yet)."""
        etag = str(self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]).strip('"')
        return created_event(key, etag, len(body), event_id=event_id)

    def deliver(self, event: Event, mode: str = "binary") -> TestResponse:
        headers, body = encode_binary(event) if mode == "binary" else encode_structured(event)
        return self.client.post("/", data=body, headers=headers)

    def rows(self, table: Table, *order: str) -> list[dict[str, Any]]:
        columns = [table.c[name] for name in order]
        with self.engine.connect() as connection:
            result = connection.execute(select(table).order_by(*columns))
            return [dict(row._mapping) for row in result]


@contextmanager
def harness(
    function: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str | None = None,
) -> Iterator[Harness]:
    """Serve `function` against a fresh moto S3 and a recording sink."""
    with moto_server(monkeypatch) as endpoint, sink_server() as sink:
        settings = Settings(
            functions_dir=ROOT / "functions",
            schemas_dir=ROOT / "schemas",
            state_dir=tmp_path / "state",
            database_url=database_url,
            sink=sink.url,
            emit_retries=0,
            s3_endpoint_url=endpoint,
            bucket=BUCKET,
        )
        wsgi = create_app(
            function, settings=settings, tracer=Tracer(function, enabled=False), env={}
        )
        engine = create_engine_from_url(settings.effective_database_url)
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        try:
            yield Harness(wsgi.test_client(), s3, sink, engine)
        finally:
            engine.dispose()
            wsgi.close()


def problem(response: TestResponse) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data())
    return body
