"""storage-source through the WSGI test client, emitting to a real loopback broker stand-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import decode_http
from eventfn._tracing import Tracer, parse_traceparent

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cr3t-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class Sink:
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [decode_http(headers, body) for headers, body in self.received]


@pytest.fixture
def sink() -> Iterator[Sink]:
    state = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 202)
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
    yield state
    server.shutdown()
    server.server_close()


def _client(tmp_path: Path, sink_url: str | None) -> Iterator[Client]:
    settings = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state",
        sink=sink_url,
        emit_retries=0,
    )
    wsgi = create_app(
        "storage-source", settings=settings, tracer=Tracer("storage-source", enabled=False), env={}
    )
    yield wsgi.test_client()
    wsgi.close()


@pytest.fixture
def client(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("STORAGE_SOURCE_TOKEN", TOKEN)
    monkeypatch.setenv("STORAGE_SOURCE_IGNORE_PREFIXES", "tmp/, .trash/")
    yield from _client(tmp_path, sink.url)


def record(
    key: str,
    *,
    event: str = "s3:ObjectCreated:Put",
    bucket: str = "eventfn-data",
    etag: str = "5d41402abc4b2a76b9719d911017c592",
    sequencer: str | None = "17A3C0FFEE000001",
    size: int = 5,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": size, "eTag": etag, "contentType": "text/plain"}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventTime": "2026-05-09T07:35:25.123Z",
        "eventName": event,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj},
    }


def minio(*records: dict[str, Any]) -> dict[str, Any]:
    first = records[0]
    return {"EventName": first["eventName"], "Key": "eventfn-data/x", "Records": list(records)}


def post(client: Client, body: Any, headers: dict[str, str] | None = None) -> TestResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(AUTH if headers is None else headers)}
    return client.post("/webhook", data=data, headers=all_headers)


def problem(response: TestResponse) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.get_data())
    return body


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "no-scheme", "basic", "empty"],
)
def test_requests_without_the_token_are_refused(
    client: Client, sink: Sink, headers: dict[str, str]
) -> None:
    response = post(client, minio(record("documents/a.txt")), headers)
    assert response.status_code == 401
    body = problem(response)
    assert body["status"] == 401 and TOKEN not in json.dumps(body)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert sink.received == []


def test_an_unset_token_refuses_everything(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_SOURCE_TOKEN", raising=False)
    for client in _client(tmp_path, sink.url):
        assert post(client, minio(record("a.txt")), {"Authorization": "Bearer "}).status_code == 401
        assert post(client, minio(record("a.txt")), {}).status_code == 401
    assert sink.received == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", json.dumps([1, 2]).encode(), json.dumps({"Records": 3}).encode()],
    ids=["syntax", "not-utf8", "array", "records-not-list"],
)
def test_malformed_bodies_are_400(client: Client, sink: Sink, body: bytes) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert problem(response)["type"] == "urn:eventfn:problem:malformed-request"
    assert sink.received == []


def test_a_bad_record_rejects_the_whole_notification(client: Client, sink: Sink) -> None:
    broken = record("documents/b.txt")
    del broken["s3"]["object"]["key"]
    response = post(client, minio(record("documents/a.txt"), broken))
    assert response.status_code == 400
    assert problem(response)["field"] == "Records[1].s3.object.key"
    assert sink.received == []


def test_minio_notification_becomes_one_event_with_the_decoded_key(
    client: Client, sink: Sink
) -> None:
    response = post(client, minio(record("documents/Quarterly+report+%C3%A9t%C3%A9%2B%26.txt")))
    assert response.status_code == 200
    body = response.get_json()
    assert body["emitted"] == 1 and body["ignored"] == 0
    [event] = sink.events()
    key = "documents/Quarterly report été+&.txt"
    assert event.type == "eventfn.storage.object.created.v1"
    assert event.source == "s3://eventfn-data"
    assert event.subject == key
    assert event.time is not None and event.time.startswith("2026-05-09T07:35:25.123")
    assert event.dataschema == "urn:eventfn:schema:eventfn.storage.object.created.v1"
    assert event.data == {
        "bucket": "eventfn-data",
        "key": key,
        "size": 5,
        "etag": "5d41402abc4b2a76b9719d911017c592",
        "content_type": "text/plain",
        "event_time": "2026-05-09T07:35:25.123Z",
        "version_id": None,
    }


def test_aws_sqs_message_body_is_accepted(client: Client, sink: Sink) -> None:
    aws = record("raw/sales+2026.csv", event="ObjectCreated:CompleteMultipartUpload")
    aws["eventSource"] = "aws:s3"
    response = post(client, {"Records": [aws]})
    assert response.status_code == 200 and response.get_json()["emitted"] == 1
    assert [event.subject for event in sink.events()] == ["raw/sales 2026.csv"]


def test_s3_test_event_is_acknowledged_without_events(client: Client, sink: Sink) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "eventfn-data"}
    response = post(client, test_event)
    assert response.status_code == 200
    assert response.get_json()["emitted"] == 0
    assert sink.received == []


def test_ignored_prefixes_and_other_event_kinds_are_counted(client: Client, sink: Sink) -> None:
    response = post(
        client,
        minio(
            record("documents/keep.txt"),
            record("tmp/scratch.txt"),
            record(".trash/old.txt"),
            record("documents/gone.txt", event="s3:ObjectRemoved:Delete"),
            record("documents/read.txt", event="s3:ObjectAccessed:Get"),
        ),
    )
    assert response.status_code == 200
    assert {k: response.get_json()[k] for k in ("emitted", "ignored")} == {
        "emitted": 1,
        "ignored": 4,
    }
    assert [event.subject for event in sink.events()] == ["documents/keep.txt"]


def test_redelivered_notifications_keep_their_event_ids(client: Client, sink: Sink) -> None:
    notification = minio(record("documents/a.txt"), record("documents/b.txt"))
    assert post(client, notification).status_code == 200
    assert post(client, notification).status_code == 200
    first, second = sink.events()[:2], sink.events()[2:]
    assert [e.id for e in first] == [e.id for e in second]
    assert first[0].id != first[1].id
    newer = record("documents/a.txt", sequencer="17A3C0FFEE000002")
    assert post(client, minio(newer)).status_code == 200
    assert sink.events()[-1].id not in {e.id for e in first}


def test_emit_failure_is_503_so_minio_retries(client: Client, sink: Sink) -> None:
    sink.statuses = [503]
    response = post(client, minio(record("documents/a.txt")))
    assert response.status_code == 503
    assert problem(response)["retryable"] is True
    sink.statuses = [400]
    assert post(client, minio(record("documents/a.txt"))).status_code == 503


def test_unreachable_broker_is_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: Sink
) -> None:
    monkeypatch.setenv("STORAGE_SOURCE_TOKEN", TOKEN)
    for client in _client(tmp_path, None):
        response = post(client, minio(record("documents/a.txt")))
        assert response.status_code == 503
        assert problem(response)["type"] == "urn:eventfn:problem:dependency-unavailable"


def test_the_webhook_trace_reaches_the_broker(client: Client, sink: Sink) -> None:
    response = post(client, minio(record("documents/a.txt")), {**AUTH, "traceparent": TRACEPARENT})
    trace_id = TRACEPARENT.split("-")[1]
    assert response.get_json()["trace_id"] == trace_id
    [(headers, _body)] = sink.received
    parsed = parse_traceparent(headers["traceparent"])
    assert parsed is not None and parsed[0] == trace_id
    assert parsed[1] != TRACEPARENT.split("-")[2]  # a span of storage-source, child of the caller
    [event] = sink.events()
    assert event.extensions["traceparent"] == headers["traceparent"]


def test_a_webhook_without_trace_starts_one(client: Client, sink: Sink) -> None:
    response = post(client, minio(record("documents/a.txt")))
    trace_id = response.get_json()["trace_id"]
    [(headers, _body)] = sink.received
    parsed = parse_traceparent(headers["traceparent"])
    assert parsed is not None and parsed[0] == trace_id


def test_cloudevents_are_not_accepted_on_the_event_path(client: Client) -> None:
    response = client.post(
        "/",
        data=b"{}",
        headers={
            "ce-specversion": "1.0",
            "ce-id": "1",
            "ce-source": "/t",
            "ce-type": "eventfn.storage.object.created.v1",
            "content-type": "application/json",
        },
    )
    assert response.status_code == 422
