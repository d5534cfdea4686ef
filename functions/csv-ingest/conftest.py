"""Fixtures shared by the csv-ingest tests: a loopback broker stand-in, moto's S3 server, a fresh
bucket, and csv-ingest served through the WSGI test client.

The tests and this file import `csv_ingest_testing` by name, with pytest run from the root or on
this folder alone: this folder is appended to sys.path, so none of its modules shadows another.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from werkzeug.test import Client

from eventfn import Settings, create_app
from eventfn._tracing import Tracer
from eventfn._wsgi import FunctionWSGI

sys.path.append(str(Path(__file__).resolve().parent))
from csv_ingest_testing import Factory, Sink, Store, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sink() -> Iterator[Sink]:
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
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def store(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"csv-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return Store(client, bucket)


@pytest.fixture
def make_client(
    tmp_path: Path, sink: Sink, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Factory]:
    apps: list[FunctionWSGI] = []

    def make(s3_endpoint: str = endpoint, idempotency: bool = True, **env: str) -> Client:
        for name in ("DELIMITER", "MULTIPART_THRESHOLD", "MULTIPART_CHUNKSIZE", "BLOCK_SIZE"):
            monkeypatch.delenv(f"CSV_INGEST_{name}", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings(
            functions_dir=ROOT / "functions",
            schemas_dir=ROOT / "schemas",
            state_dir=tmp_path / f"state-{len(apps)}",
            sink=sink.url,
            emit_retries=0,
            s3_endpoint_url=s3_endpoint,
            idempotency=idempotency,
        )
        tracer = Tracer("csv-ingest", enabled=False)
        wsgi = create_app("csv-ingest", settings=settings, tracer=tracer, env={})
        apps.append(wsgi)
        return wsgi.test_client()

    yield make
    for wsgi in apps:
        wsgi.close()


@pytest.fixture
def client(make_client: Factory) -> Client:
    return make_client()
