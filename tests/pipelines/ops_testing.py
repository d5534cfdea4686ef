"""Test helpers of the ops pipelines (backup-auditor, log-processor): a real S3 API (moto's
server on loopback), a loopback broker stand-in recording emitted events, and a harness that
serves one function through the WSGI test client against them.

Loaded by path (`load_ops_testing()` in each test module), like tests/mesh/mesh_testing.py.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import decode_http, encode_binary, encode_structured
from eventfn._context import derived_id
from eventfn._store import create_engine_from_url
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "eventfn-data"
CREATED = "eventfn.storage.object.created.v1"
EVENT_TIME = "2026-11-28T12:00:00Z"


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
    # moto keeps its store per process, not per server: start every test from an empty one
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=10) as answer:
        assert answer.status == 200
    try:
        yield endpoint
    finally:
        server.stop()


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
        s3 = _s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        try:
            yield Harness(wsgi.test_client(), s3, sink, engine)
        finally:
            engine.dispose()
            wsgi.close()


def _s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def problem(response: TestResponse) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data())
    return body


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
        return self.wait_count(1, kind, timeout, **match)[0]

    def wait_count(
        self, count: int, kind: str, timeout: float, **match: Any
    ) -> list[dict[str, Any]]:
        """The first `count` records of `kind` matching `match`, waiting for them to appear."""
        deadline = time.monotonic() + timeout
        while len(found := self.all(kind, **match)) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {count} {kind} {match}: {self.records}"
            try:
                record = self.lines.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {count} {kind} {match}") from None
            assert record is not None, f"eventfn dev exited early: {self.records}"
            self.records.append(record)
        return found[:count]

    def all(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            record
            for record in self.records
            if record["kind"] == kind and all(record.get(k) == v for k, v in match.items())
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the mesh stops its functions
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
