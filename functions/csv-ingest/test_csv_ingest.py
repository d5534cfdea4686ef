"""csv-ingest through the WSGI test client, against a real S3 API (moto's server on loopback).

Every test uploads a real CSV, delivers the storage event, reads the outputs back from S3 and
checks what the function emitted to a loopback broker stand-in.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import decode_http, encode_binary
from eventfn._objects import ObjectStore
from eventfn._tracing import Tracer
from eventfn._wsgi import FunctionWSGI

ROOT = Path(__file__).resolve().parents[2]
CREATED = "eventfn.storage.object.created.v1"
PROCESSED = "eventfn.dataset.file.processed.v1"
EVENT_TIME = "2026-11-28T09:30:00.250Z"
WHEN = dt.datetime(2026, 11, 28, 9, 30, 0, 250000, tzinfo=dt.UTC)
PARTITION = "year=2026/month=11/day=28"
MiB = 1024 * 1024


@dataclass
class Sink:
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [decode_http(headers, body) for headers, body in self.received]


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@dataclass
class Store:
    client: Any
    bucket: str

    def put(self, key: str, body: bytes) -> str:
        return str(self.client.put_object(Bucket=self.bucket, Key=key, Body=body)["ETag"]).strip(
            '"'
        )

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def table(self, key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.get(key)))

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture
def store(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"csv-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return Store(client, bucket)


Factory = Callable[..., Client]


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


def created(store: Store, key: str, etag: str, event_id: str = "n-1") -> Event:
    data = {"bucket": store.bucket, "key": key, "size": 1, "etag": etag, "event_time": EVENT_TIME}
    return Event(
        type=CREATED,
        source=f"s3://{store.bucket}",
        id=event_id,
        data=data,
        subject=key,
        time=EVENT_TIME,
        datacontenttype="application/json",
    )


def deliver(client: Client, event: Event) -> TestResponse:
    headers, body = encode_binary(event)
    return client.post("/", data=body, headers=headers)


def upload_and_deliver(client: Client, store: Store, key: str, body: bytes) -> TestResponse:
    return deliver(client, created(store, key, store.put(key, body)))


def processed(sink: Sink) -> list[Event]:
    return [event for event in sink.events() if event.type == PROCESSED]


def problem(response: TestResponse) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data())
    return body


def only_output(store: Store) -> str:
    [key] = store.keys("processed/")
    return key


SALES = (
    b"id,price,name,day,flag\n"
    b'1,9.5,"Smith, John",2026-11-01,true\n'
    b'2,10.25,"say ""hi""",2026-11-02,false\n'
    b"3,,plain,2026-11-03,true\n"
)


def test_a_csv_becomes_partitioned_parquet(client: Client, store: Store, sink: Sink) -> None:
    key = "raw/sales/2026-11-28.csv"
    response = upload_and_deliver(client, store, key, SALES)
    assert response.status_code == 204, response.get_data()

    output = only_output(store)
    assert output.startswith(f"processed/sales/{PARTITION}/2026-11-28-")
    assert output.endswith(".parquet") and store.keys("quarantine/") == []
    table = store.table(output)
    assert table.schema.names == [
        "id",
        "price",
        "name",
        "day",
        "flag",
        "processed_at",
        "source_file",
    ]
    assert [str(t) for t in table.schema.types] == [
        "int64", "double", "string", "date32[day]", "bool", "timestamp[us, tz=UTC]", "string",
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [(r["id"], r["price"], r["name"], r["flag"]) for r in rows] == [
        (1, 9.5, "Smith, John", True),
        (2, 10.25, 'say "hi"', False),
        (3, None, "plain", True),
    ]
    assert rows[2]["day"] == dt.date(2026, 11, 3)
    assert {r["processed_at"] for r in rows} == {WHEN}
    assert {r["source_file"] for r in rows} == {f"s3://{store.bucket}/{key}"}

    [event] = processed(sink)
    data = event.data
    assert event.subject == key and event.source == "/eventfn/csv-ingest"
    assert data["bucket"] == store.bucket and data["key"] == key and data["dataset"] == "sales"
    assert data["output_key"] == output and data["rows"] == 3 and data["delimiter"] == ","
    assert data["columns"][0] == {"name": "id", "type": "int64"}
    assert data["columns"][-2] == {"name": "processed_at", "type": "timestamp[us, tz=UTC]"}
    assert data["bytes_in"] == len(SALES)
    assert data["bytes_out"] == len(store.get(output))
    assert data["quarantined_rows"] == 0 and data["quarantine_key"] is None
    assert data["processed_at"] == "2026-11-28T09:30:00.250000Z"
    assert data["duration_ms"] >= 0 and data["retyped_columns"] == []


def test_a_file_directly_under_raw_is_its_own_dataset(
    client: Client, store: Store, sink: Sink
) -> None:
    assert upload_and_deliver(client, store, "raw/orders.csv", SALES).status_code == 204
    assert only_output(store).startswith(f"processed/orders/{PARTITION}/orders-")


def test_a_header_only_file_gives_an_empty_parquet_with_the_schema(
    client: Client, store: Store, sink: Sink
) -> None:
    response = upload_and_deliver(client, store, "raw/empty/header.csv", b"a,b,c\n")
    assert response.status_code == 204
    table = store.table(only_output(store))
    assert table.num_rows == 0
    assert table.schema.names == ["a", "b", "c", "processed_at", "source_file"]
    assert table.schema.field("a").type == pa.string()
    [event] = processed(sink)
    assert event.data["rows"] == 0 and len(event.data["columns"]) == 5


def test_bom_crlf_and_quoted_newlines(client: Client, store: Store) -> None:
    body = b'\xef\xbb\xbfid,note\r\n1,"first\r\nsecond"\r\n2,"a\nb\nc"\r\n3,plain\r\n'
    assert upload_and_deliver(client, store, "raw/notes/n.csv", body).status_code == 204
    table = store.table(only_output(store))
    assert table.schema.names[:2] == ["id", "note"]  # no BOM in the first name
    assert table.column("note").to_pylist() == ["first\r\nsecond", "a\nb\nc", "plain"]
    assert table.column("id").to_pylist() == [1, 2, 3]


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_the_delimiter_is_sniffed(
    client: Client, store: Store, sink: Sink, delimiter: str, name: str
) -> None:
    d = delimiter
    text = f'city{d}amount{d}note\nParis{d}1,5{d}x\nOslo{d}2{d}"a{d}b"\n'
    response = upload_and_deliver(client, store, f"raw/{name}/cities.csv", text.encode())
    assert response.status_code == 204
    table = store.table(only_output(store))
    assert table.column("city").to_pylist() == ["Paris", "Oslo"]
    assert table.column("amount").to_pylist() == ["1,5", "2"]
    assert table.column("note").to_pylist() == ["x", f"a{delimiter}b"]
    assert processed(sink)[0].data["delimiter"] == delimiter


def test_a_configured_delimiter_wins_over_sniffing(
    make_client: Factory, store: Store, sink: Sink
) -> None:
    client = make_client(CSV_INGEST_DELIMITER=",")
    assert upload_and_deliver(client, store, "raw/x/semi.csv", b"a;b\n1;2\n").status_code == 204
    assert store.table(only_output(store)).schema.names[0] == "a;b"
    assert processed(sink)[0].data["delimiter"] == ","


RAGGED = (
    b"id,name,qty\n"  # line 1
    b"1,ok,5\n"  # 2
    b'2,"two\nlines",6\n'  # 3-4
    b"3,short\n"  # 5: too few fields
    b"\n"  # 6: blank, skipped
    b"4,too,many,fields\n"  # 7: too many
    b'5,"x\ny",7\n'  # 8-9
    b"6,last,8\n"  # 10
)


def test_ragged_rows_are_quarantined_with_their_line_numbers(
    client: Client, store: Store, sink: Sink
) -> None:
    assert upload_and_deliver(client, store, "raw/inv/r.csv", RAGGED).status_code == 204
    output = only_output(store)
    table = store.table(output)
    assert table.column("id").to_pylist() == [1, 2, 5, 6]
    assert table.column("name").to_pylist() == ["ok", "two\nlines", "x\ny", "last"]

    quarantine_key = "quarantine/" + output.removeprefix("processed/").replace(".parquet", ".csv")
    assert store.keys("quarantine/") == [quarantine_key]
    lines = store.get(quarantine_key).decode().splitlines()
    assert lines == [
        "line,record,expected_fields,actual_fields,row",
        '5,4,3,2,"3,short"',
        '7,5,3,4,"4,too,many,fields"',
    ]
    [event] = processed(sink)
    assert event.data["rows"] == 4 and event.data["quarantined_rows"] == 2
    assert event.data["quarantine_key"] == quarantine_key


def test_a_column_that_turns_to_text_later_is_read_as_string(
    make_client: Factory, store: Store, sink: Sink
) -> None:
    client = make_client(CSV_INGEST_BLOCK_SIZE="4096")
    lines = [f"{n},{n * 10},{n / 4}" for n in range(2000)]
    lines[1500] = "1500,X-15000,375.0"
    body = ("id,code,ratio\n" + "\n".join(lines) + "\n").encode()
    assert upload_and_deliver(client, store, "raw/mixed/m.csv", body).status_code == 204
    table = store.table(only_output(store))
    assert table.schema.field("code").type == pa.string()
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("ratio").type == pa.float64()
    codes = table.column("code").to_pylist()
    assert codes[:3] == ["0", "10", "20"] and codes[1500] == "X-15000" and len(codes) == 2000
    assert processed(sink)[0].data["retyped_columns"] == ["code"]


def test_non_utf8_is_a_permanent_error_that_leaves_no_output(
    make_client: Factory, store: Store, sink: Sink
) -> None:
    # small blocks: pyarrow has parsed rows (and a ragged one) before the bad byte arrives
    client = make_client(CSV_INGEST_BLOCK_SIZE="4096")
    head = b"name,city\n" + b"ok,Paris\n" * 2000 + b"3,short\n" + b"ok,Oslo\n" * 2000
    body = head + b"bad,Z\xfcrich\n" + b"ok,Rome\n" * 10
    response = upload_and_deliver(client, store, "raw/latin/l.csv", body)
    assert response.status_code == 422
    document = problem(response)
    assert document["type"] == "urn:eventfn:problem:csv-not-utf8"
    assert document["retryable"] is False
    offset = len(head) + len(b"bad,Z")
    assert f"offset {offset} (line 4003)" in document["detail"]
    assert "\\x" not in document["detail"] and "codec" not in document["detail"]
    assert store.keys("processed/") == [] and store.keys("quarantine/") == []
    assert processed(sink) == []


class _FailingParquetUploads:
    """The real boto3 client, except that uploads under processed/ find storage gone."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_fileobj(self, fileobj: Any, bucket: str, key: str, **kwargs: Any) -> None:
        if key.startswith("processed/"):
            raise EndpointConnectionError(endpoint_url="http://storage.invalid")
        self._client.upload_fileobj(fileobj, bucket, key, **kwargs)


def test_a_failed_upload_leaves_no_partial_output(
    make_client: Factory, store: Store, sink: Sink, endpoint: str
) -> None:
    client = make_client()
    wsgi_services = client.application.services  # type: ignore[attr-defined]
    failing = _FailingParquetUploads(store.client)
    wsgi_services.objects_factory = lambda: ObjectStore(failing, store.bucket)
    response = upload_and_deliver(client, store, "raw/inv/r.csv", RAGGED)
    assert response.status_code == 503
    assert problem(response)["type"] == "urn:eventfn:problem:dependency-unavailable"
    # the quarantine object made it, the Parquet did not: the quarantine was removed again
    assert store.keys("quarantine/") == [] and store.keys("processed/") == []
    assert processed(sink) == []


def test_an_empty_object_is_a_permanent_error(client: Client, store: Store, sink: Sink) -> None:
    for index, body in enumerate((b"", b"\xef\xbb\xbf\n\n")):
        response = upload_and_deliver(client, store, f"raw/e/{index}.csv", body)
        assert response.status_code == 422
        assert problem(response)["type"] == "urn:eventfn:problem:csv-empty"
    assert store.keys("processed/") == [] and processed(sink) == []


def test_a_reserved_column_name_is_refused(client: Client, store: Store) -> None:
    response = upload_and_deliver(client, store, "raw/r/x.csv", b"a,source_file\n1,2\n")
    assert response.status_code == 422
    assert problem(response)["type"] == "urn:eventfn:problem:csv-reserved-column"
    assert store.keys("processed/") == []


def test_a_missing_object_is_a_permanent_error(client: Client, store: Store) -> None:
    response = deliver(client, created(store, "raw/gone/x.csv", "0" * 32))
    assert response.status_code == 422
    assert problem(response)["type"] == "urn:eventfn:problem:csv-object-missing"


def test_storage_down_is_503(make_client: Factory, store: Store, sink: Sink) -> None:
    client = make_client(s3_endpoint=f"http://127.0.0.1:{_free_port()}")
    response = deliver(client, created(store, "raw/down/x.csv", "0" * 32))
    assert response.status_code == 503
    body = problem(response)
    assert body["type"] == "urn:eventfn:problem:dependency-unavailable"
    assert body["retryable"] is True and processed(sink) == []


@pytest.mark.parametrize(
    "key", ["documents/a.csv", "raw/readme.txt", "raw/upper.CSV", "processed/x/y.csv"]
)
def test_other_objects_are_ignored(client: Client, store: Store, sink: Sink, key: str) -> None:
    response = deliver(client, created(store, key, "0" * 32))  # not even in the bucket
    assert response.status_code == 204
    assert store.keys() == [] and processed(sink) == []


def test_a_redelivery_is_replayed_not_redone(client: Client, store: Store, sink: Sink) -> None:
    key = "raw/sales/again.csv"
    event = created(store, key, store.put(key, SALES))
    assert deliver(client, event).status_code == 204
    first = store.client.head_object(Bucket=store.bucket, Key=only_output(store))
    assert deliver(client, event).status_code == 204
    assert len(store.keys("processed/")) == 1
    again = store.client.head_object(Bucket=store.bucket, Key=only_output(store))
    assert again["LastModified"] == first["LastModified"]  # not written twice
    assert len(processed(sink)) == 1


def test_a_redelivery_without_idempotency_overwrites_the_same_object(
    make_client: Factory, store: Store, sink: Sink
) -> None:
    client = make_client(idempotency=False)
    key = "raw/sales/again.csv"
    event = created(store, key, store.put(key, SALES))
    assert deliver(client, event).status_code == 204
    first = store.get(only_output(store))
    assert deliver(client, event).status_code == 204
    assert store.get(only_output(store)) == first  # same key, byte-identical
    ids = {e.id for e in processed(sink)}
    assert len(processed(sink)) == 2 and len(ids) == 1


def test_a_new_version_gets_its_own_output(client: Client, store: Store, sink: Sink) -> None:
    key = "raw/sales/v.csv"
    assert upload_and_deliver(client, store, key, SALES).status_code == 204
    [old] = store.keys("processed/")
    changed = created(store, key, store.put(key, SALES + b"4,1.0,new,2026-11-04,false\n"), "n-2")
    assert deliver(client, changed).status_code == 204
    outputs = store.keys("processed/")
    assert len(outputs) == 2 and old in outputs
    [new] = [k for k in outputs if k != old]
    assert store.table(new).num_rows == 4 and store.table(old).num_rows == 3


def test_large_outputs_use_multipart_upload(make_client: Factory, store: Store, sink: Sink) -> None:
    client = make_client(
        CSV_INGEST_MULTIPART_THRESHOLD=str(MiB), CSV_INGEST_MULTIPART_CHUNKSIZE=str(5 * MiB)
    )
    rows = [f"{n},{os.urandom(32).hex()}" for n in range(150_000)]
    body = ("n,blob\n" + "\n".join(rows) + "\n").encode()
    assert upload_and_deliver(client, store, "raw/big/b.csv", body).status_code == 204
    output = only_output(store)
    head = store.client.head_object(Bucket=store.bucket, Key=output)
    assert head["ContentLength"] > 5 * MiB
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])  # multipart ETags end in -<parts>
    assert parts == -(-head["ContentLength"] // (5 * MiB))
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert store.table(output).column("blob").to_pylist()[7] == rows[7].split(",")[1]
    assert head["ContentType"] == "application/vnd.apache.parquet"


def test_small_outputs_are_single_puts(client: Client, store: Store) -> None:
    assert upload_and_deliver(client, store, "raw/small/s.csv", SALES).status_code == 204
    head = store.client.head_object(Bucket=store.bucket, Key=only_output(store))
    assert "-" not in head["ETag"]
