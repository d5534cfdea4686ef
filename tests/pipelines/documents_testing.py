"""Test helpers of the documents pipeline (text-extractor, sentiment-analyzer): a real S3 API
(moto's server on loopback), a loopback broker stand-in that records emitted events, a harness
serving one function through the WSGI test client, and the demo document builders.

Imported by name (tests/conftest.py puts this directory on sys.path), like
tests/mesh/mesh_testing.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from demo_testing import demo_module
from loopback_testing import Sink, moto_server, s3_client, sink_server
from sqlalchemy import Engine, select
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary, encode_structured
from eventfn._context import derived_id
from eventfn._store import create_engine_from_url
from eventfn._tables_pipelines import document_sentiments
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "documents"
BUCKET = "eventfn-data"
CREATED = "eventfn.storage.object.created.v1"
EXTRACTED = "eventfn.document.text.extracted.v1"
SCORED = "eventfn.document.sentiment.scored.v1"
EVENT_TIME = "2026-11-28T12:00:00Z"


def builders() -> ModuleType:
    """demo/builders_documents.py."""
    return demo_module("builders_documents")


def created_event(
    key: str,
    etag: str,
    size: int,
    *,
    content_type: str | None = None,
    event_id: str | None = None,
    bucket: str = BUCKET,
) -> Event:
    """The event storage-source emits for an uploaded object."""
    data: dict[str, Any] = {"bucket": bucket, "key": key, "size": size, "etag": etag}
    if content_type is not None:
        data["content_type"] = content_type
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

    def upload(self, key: str, body: bytes, content_type: str | None = None, **event: Any) -> Event:
        """Put an object and return its created event (not delivered yet)."""
        extra = {"ContentType": content_type} if content_type else {}
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
        etag = str(response["ETag"]).strip('"')
        return created_event(key, etag, len(body), content_type=content_type, **event)

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def deliver(self, event: Event, mode: str = "binary") -> TestResponse:
        headers, body = encode_binary(event) if mode == "binary" else encode_structured(event)
        return self.client.post("/", data=body, headers=headers)

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def sentiments(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(
                select(document_sentiments).order_by(
                    document_sentiments.c.object_key, document_sentiments.c.etag
                )
            )
            return [dict(row._mapping) for row in result]


@contextmanager
def harness(
    function: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    endpoint: str | None = None,
    **overrides: Any,
) -> Iterator[Harness]:
    """Serve `function` against a fresh moto S3 (or `endpoint`) and a recording sink."""
    with endpoint_or_moto(endpoint, monkeypatch) as s3_endpoint, sink_server() as sink:
        settings = Settings(
            functions_dir=ROOT / "functions",
            schemas_dir=ROOT / "schemas",
            state_dir=tmp_path / "state",
            sink=sink.url,
            emit_retries=0,
            s3_endpoint_url=s3_endpoint,
            bucket=BUCKET,
        ).with_overrides(**overrides)
        wsgi = create_app(
            function, settings=settings, tracer=Tracer(function, enabled=False), env={}
        )
        engine = create_engine_from_url(settings.effective_database_url)
        s3 = s3_client(s3_endpoint)
        if endpoint is None:
            s3.create_bucket(Bucket=BUCKET)
        try:
            yield Harness(wsgi.test_client(), s3, sink, engine)
        finally:
            engine.dispose()
            wsgi.close()


@contextmanager
def endpoint_or_moto(endpoint: str | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`endpoint` as it is, or a fresh moto server when it is None."""
    if endpoint is not None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        yield endpoint
        return
    with moto_server(monkeypatch) as started:
        yield started


def problem(response: TestResponse) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data())
    return body


# -- sentiment-analyzer: inputs and checks shared by the SQLite and PostgreSQL tests -------------

POSITIVE = "What a wonderful day. The team is brilliant and I love the new design!\n"
NEGATIVE = (
    "This is a terrible product.\n\nIt broke after one day and support was useless. "
    "I hate it and want my money back.\n"
)


def extracted_event(key: str, text_key: str, chars: int, etag: str = "e" * 32) -> Event:
    data = {
        "bucket": BUCKET,
        "key": key,
        "etag": etag,
        "text_key": text_key,
        "chars": chars,
        "pages": None,
        "language": "en",
        "content_type": "text/plain",
        "extractor": "text",
    }
    return Event(
        type=EXTRACTED,
        source="/eventfn/text-extractor",
        id=derived_id("tests", key, etag),
        data=data,
        subject=key,
        time=EVENT_TIME,
        datacontenttype="application/json",
    )


def publish_text(h: Any, key: str, text: str, **kwargs: Any) -> Event:
    text_key = f"text/{key}.txt"
    h.put(text_key, text.encode())
    return extracted_event(key, text_key, len(text), **kwargs)


def check_labels(h: Harness) -> None:
    """Score a positive and a negative document; one row and one event each."""
    good = publish_text(h, "documents/good.txt", POSITIVE)
    bad = publish_text(h, "documents/bad.txt", NEGATIVE)
    assert h.deliver(good).status_code == 204
    assert h.deliver(bad, "structured").status_code == 204
    rows = {row["object_key"]: row for row in h.sentiments()}
    assert rows["documents/good.txt"]["label"] == "positive"
    assert rows["documents/good.txt"]["compound"] > 0.5
    assert rows["documents/bad.txt"]["label"] == "negative"
    assert rows["documents/bad.txt"]["compound"] < -0.3
    assert rows["documents/bad.txt"]["sentences"] == 3
    assert rows["documents/bad.txt"]["text_key"] == "text/documents/bad.txt.txt"
    assert rows["documents/bad.txt"]["source_event"] == f"{bad.source}/{bad.id}"
    emitted = {event.subject: event.data for event in h.sink.events(SCORED)}
    assert emitted["documents/bad.txt"]["label"] == "negative"
    assert emitted["documents/bad.txt"]["most_negative_sentence"] == (
        "I hate it and want my money back."
    )
    assert emitted["documents/good.txt"]["most_negative_sentence"] is None
    for key, data in emitted.items():
        row = rows[key]
        assert data["compound"] == row["compound"] and data["sentences"] == row["sentences"]
        assert (data["bucket"], data["etag"], data["truncated"]) == (BUCKET, "e" * 32, False)


def check_upsert(h: Harness) -> None:
    """The same document version scored again (redelivered, or under another event id):
    still one row, the latest scores."""
    event = publish_text(h, "documents/a.txt", POSITIVE)
    other_id = event.with_changes(id="another-delivery")
    statuses = [h.deliver(e).status_code for e in (event, event, other_id)]
    assert statuses == [204, 204, 204]
    [row] = h.sentiments()
    assert (row["object_key"], row["etag"], row["label"]) == (
        "documents/a.txt",
        "e" * 32,
        "positive",
    )
    newer = publish_text(h, "documents/a.txt", NEGATIVE, etag="f" * 32)  # a new version
    assert h.deliver(newer).status_code == 204
    assert [(r["etag"], r["label"]) for r in h.sentiments()] == [
        ("e" * 32, "positive"),
        ("f" * 32, "negative"),
    ]
