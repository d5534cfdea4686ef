"""Test helpers of the documents pipeline (text-extractor, sentiment-analyzer): a real S3 API
(moto's server on loopback), a loopback broker stand-in that records emitted events, a harness
serving one function through the WSGI test client, the demo document builders, and
`eventfn dev` as a subprocess.

Loaded by path (`_documents_testing()` in each test module), like tests/mesh/mesh_testing.py.
"""

from __future__ import annotations

import importlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import urllib3
from sqlalchemy import Engine, select
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import decode_http, encode_binary, encode_structured
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
    """demo/builders_documents.py (it imports `make_inputs` from demo/, as the demo runs it)."""
    demo = str(ROOT / "demo")
    added = demo not in sys.path
    if added:
        sys.path.insert(0, demo)
    try:
        return importlib.import_module("builders_documents")
    finally:
        if added:
            sys.path.remove(demo)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Sink:
    """A loopback HTTP server standing in for the broker: records what it receives."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self, type_: str | None = None) -> list[Event]:
        decoded = [decode_http(headers, body) for headers, body in self.received]
        return [event for event in decoded if type_ is None or event.type == type_]


@contextmanager
def sink_server() -> Iterator[Sink]:
    state = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/eventfn/default"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on a loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # every server of this process shares moto's in-memory store: start from an empty one
    urllib3.request("POST", endpoint + "/moto-api/reset", timeout=10.0)
    try:
        yield endpoint
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


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


# -- `eventfn dev` as a subprocess -------------------------------------------------------------


@dataclass
class DevProcess:
    """A running `eventfn dev --json` and every record it printed so far."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    records: list[dict[str, Any]] = field(default_factory=list)

    def start_reader(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait_for(self, kind: str, timeout: float, **match: Any) -> dict[str, Any]:
        """The first record (seen before or next) of `kind` whose fields equal `match`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for record in self.records[seen:]:
                if record["kind"] == kind and all(record.get(k) == v for k, v in match.items()):
                    return record
            seen = len(self.records)
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {kind} {match}: {self.records}"
            try:
                record = self.lines.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {kind} {match}") from None
            assert record is not None, f"eventfn dev exited early: {self.records}"
            self.records.append(record)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the mesh stops its functions
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
