"""Test helpers of the failure side (dlq-handler, `eventfn dlq`): loopback HTTP servers that
record what they receive and answer scripted statuses, the dead-letter request Knative sends,
and dlq-handler served through the WSGI test client.

Imported by name (tests/conftest.py puts this directory on sys.path), like ops_testing.py.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopback_testing import Sink, sink_server
from sqlalchemy import Engine, select
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary
from eventfn._store import create_engine_from_url
from eventfn._tables_domain import dead_letters
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]
RECORDED = "eventfn.deadletter.recorded.v1"
SUBSCRIBER_URL = "http://inventory-updater.eventfn.svc.cluster.local"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PROBLEM = (
    b'{"type":"urn:eventfn:problem:schema-violation","title":"Event data violates its schema",'
    b'"status":422,"detail":"must be greater than or equal to 1","retryable":false,'
    b'"field":"$.items[0].quantity"}'
)


def recorder(default: int = 202) -> AbstractContextManager[Sink]:
    """A loopback server at `/` (a broker, a subscriber) recording what it receives; answers
    `default` unless statuses are queued."""
    return sink_server(default, path="/")


def poison_event(event_id: str = "order-1042", **changes: Any) -> Event:
    """An order whose first item has quantity 0: the inventory refuses it."""
    event = Event(
        type="eventfn.order.confirmed.v1",
        source="/eventfn/ingest-api",
        id=event_id,
        data={"order_id": event_id, "items": [{"sku": "SKU-1", "quantity": 0}]},
        subject=event_id,
        time="2026-11-28T12:00:00Z",
        datacontenttype="application/json",
        extensions={"knativearrivaltime": "2026-11-28T12:00:00.100000Z", "partitionkey": "c-1"},
    )
    return event.with_changes(**changes) if changes else event


def dead_letter_request(
    event: Event,
    *,
    dest: str | None = SUBSCRIBER_URL,
    code: int | None = 422,
    body: bytes = PROBLEM,
    raw_data: bytes | None = None,
    traceparent: str | None = TRACEPARENT,
) -> tuple[dict[str, str], bytes]:
    """The binary-mode request a Knative dispatcher sends to the dead-letter sink."""
    extensions = dict(event.extensions)
    if dest is not None:
        extensions["knativeerrordest"] = dest
    if code is not None:
        extensions["knativeerrorcode"] = str(code)
    if body:
        extensions["knativeerrordata"] = base64.b64encode(body[:1024]).decode()
    headers, payload = encode_binary(event.with_changes(extensions=extensions))
    if traceparent is not None:
        headers["traceparent"] = traceparent
    return headers, payload if raw_data is None else raw_data


@dataclass
class DlqHarness:
    """dlq-handler served through the test client, its database and a recording broker."""

    client: Client
    sink: Sink
    engine: Engine
    settings: Settings

    def deliver(self, headers: Mapping[str, str], body: bytes) -> TestResponse:
        return self.client.post("/", data=body, headers=dict(headers))

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(select(dead_letters).order_by(dead_letters.c.id))
            return [dict(row._mapping) for row in result]


@contextmanager
def dlq_harness(tmp_path: Path, database_url: str | None = None) -> Iterator[DlqHarness]:
    with recorder() as sink:
        settings = Settings(
            functions_dir=ROOT / "functions",
            schemas_dir=ROOT / "schemas",
            state_dir=tmp_path / "state",
            database_url=database_url,
            sink=sink.url,
            emit_retries=0,
        )
        wsgi = create_app(
            "dlq-handler", settings=settings, tracer=Tracer("dlq", enabled=False), env={}
        )
        engine = create_engine_from_url(settings.effective_database_url)
        try:
            yield DlqHarness(wsgi.test_client(), sink, engine, settings)
        finally:
            engine.dispose()
            wsgi.close()
