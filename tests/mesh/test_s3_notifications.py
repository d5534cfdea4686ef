"""Embedded S3 (real moto server) -> MinIO-format webhook -> the real storage-source function."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from loopback_testing import Sink, sink_server
from werkzeug.serving import make_server

from eventfn import Settings, create_app
from eventfn._tracing import Tracer, parse_traceparent
from eventfn.mesh._s3 import EmbeddedS3, topology_buckets
from eventfn.mesh._s3_notify import NotificationRelay, WebhookDelivery
from eventfn.mesh._topology import ServiceSpec, Topology

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dev-token-for-tests"
BUCKET = "eventfn-data"
KEY = "documents/Rapport annuel 2026 日本 été+hiver & co %.txt"


@dataclass
class Webhook:
    """storage-source served on loopback, with every request it got."""

    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


def _serve(server: Any) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return thread


@pytest.fixture
def sink() -> Iterator[Sink]:
    """The broker stand-in storage-source emits to; answers with the queued statuses."""
    with sink_server() as state:
        yield state


@pytest.fixture
def webhook(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    monkeypatch.setenv("STORAGE_SOURCE_TOKEN", TOKEN)
    settings = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state",
        sink=sink.url,
        emit_retries=0,
    )
    wsgi = create_app("storage-source", settings=settings, tracer=Tracer("s", enabled=False))
    state = Webhook(url="")

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        state.requests.append((environ["PATH_INFO"], headers, body))
        environ["wsgi.input"] = io.BytesIO(body)
        return wsgi(environ, start_response)

    server = make_server("127.0.0.1", 0, recording, threaded=True)
    state.url = f"http://127.0.0.1:{server.server_port}"
    _serve(server)
    yield state
    server.shutdown()
    wsgi.close()


@pytest.fixture
def s3() -> Iterator[EmbeddedS3]:
    embedded = EmbeddedS3()
    embedded.start()
    embedded.create_buckets([BUCKET, "eventfn-archive"])
    yield embedded
    embedded.stop()


def relay_for(s3: EmbeddedS3, target: str, token: str = TOKEN) -> NotificationRelay:
    queue = s3.notify_queue([BUCKET, "eventfn-archive"])
    return NotificationRelay(
        s3.client("sqs"),
        s3.client("s3"),
        queue,
        target=lambda: target,
        token=token,
        access_key=s3.access.access_key,
        max_attempts=3,
        wait_seconds=5,
    )


@pytest.fixture
def relay(s3: EmbeddedS3, webhook: Webhook) -> Iterator[NotificationRelay]:
    relay = relay_for(s3, webhook.url)
    relay.start()
    yield relay
    relay.stop()


def put(s3: EmbeddedS3, key: str, body: bytes = "bonjour été\n".encode()) -> str:
    response = s3.client("s3").put_object(
        Bucket=BUCKET, Key=key, Body=body, ContentType="text/plain; charset=utf-8"
    )
    return str(response["ETag"]).strip('"')


def delivered(relay: NotificationRelay, key: str) -> WebhookDelivery:
    delivery = relay.wait_for(BUCKET, key, timeout=30.0)
    assert delivery is not None, f"no final webhook delivery for {key!r}"
    return delivery


def test_put_object_becomes_one_minio_webhook_post(
    s3: EmbeddedS3, relay: NotificationRelay, webhook: Webhook, sink: Sink
) -> None:
    etag = put(s3, KEY)
    delivery = delivered(relay, KEY)
    assert (delivery.outcome, delivery.status, delivery.attempt) == ("delivered", 200, 1)
    [(path, headers, raw)] = webhook.requests
    assert path == "/webhook"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert body["EventName"] == "s3:ObjectCreated:Put"
    assert body["Key"] == f"{BUCKET}/{KEY}"
    [record] = body["Records"]
    assert record["eventName"] == "s3:ObjectCreated:Put"
    assert record["eventVersion"] == "2.1" and record["eventTime"].endswith("Z")
    obj = record["s3"]["object"]
    assert obj["key"] == quote_plus(KEY)  # as MinIO/S3 send it: spaces as '+', the rest %-encoded
    assert "+" in obj["key"] and " " not in obj["key"] and "é" not in obj["key"]
    assert obj["size"] == len("bonjour été\n".encode())
    assert obj["eTag"] == etag
    assert obj["contentType"] == "text/plain; charset=utf-8"
    assert int(obj["sequencer"], 16) > 0
    assert record["s3"]["bucket"]["name"] == BUCKET


def test_storage_source_decodes_the_key(
    s3: EmbeddedS3, relay: NotificationRelay, sink: Sink
) -> None:
    etag = put(s3, KEY)
    delivery = delivered(relay, KEY)
    assert (delivery.emitted, delivery.ignored) == (1, 0)
    [(headers, _)] = sink.received
    [event] = sink.events()
    assert event.type == "eventfn.storage.object.created.v1"
    assert event.subject == KEY
    assert event.source == f"s3://{BUCKET}"
    assert event.data["key"] == KEY and event.data["etag"] == etag
    assert event.data["content_type"] == "text/plain; charset=utf-8"
    parsed = parse_traceparent(headers["traceparent"])
    assert parsed is not None and parsed[0] == delivery.trace_id


def test_each_bucket_notifies(s3: EmbeddedS3, relay: NotificationRelay, sink: Sink) -> None:
    s3.client("s3").put_object(Bucket="eventfn-archive", Key="a b.txt", Body=b"x")
    delivery = relay.wait_for("eventfn-archive", "a b.txt", timeout=30.0)
    assert delivery is not None and delivery.outcome == "delivered"
    assert [event.source for event in sink.events()] == ["s3://eventfn-archive"]


def test_a_failed_webhook_is_retried_with_the_same_event_id(
    s3: EmbeddedS3, relay: NotificationRelay, sink: Sink
) -> None:
    sink.statuses = [503]  # the broker refuses once: storage-source answers 503
    put(s3, "raw/sales.csv")
    delivery = delivered(relay, "raw/sales.csv")
    attempts = [d for d in relay.deliveries if d.key == "raw/sales.csv"]
    assert [(d.outcome, d.status) for d in attempts] == [("retrying", 503), ("delivered", 200)]
    assert delivery.attempt == 2
    first, second = sink.events()
    assert first.id == second.id  # a redelivered notification yields the same event


def test_a_wrong_token_is_final_and_not_retried(
    s3: EmbeddedS3, webhook: Webhook, sink: Sink
) -> None:
    relay = relay_for(s3, webhook.url, token="not-the-token")
    relay.start()
    try:
        put(s3, "documents/a.txt")
        delivery = delivered(relay, "documents/a.txt")
    finally:
        relay.stop()
    assert (delivery.outcome, delivery.status, delivery.attempt) == ("failed", 401, 1)
    assert len(webhook.requests) == 1 and sink.received == []


def test_an_unreachable_function_is_retried(s3: EmbeddedS3, webhook: Webhook, sink: Sink) -> None:
    calls: list[int] = []

    def target() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("cold start failed")
        return webhook.url

    queue = s3.notify_queue([BUCKET])
    relay = NotificationRelay(
        s3.client("sqs"),
        s3.client("s3"),
        queue,
        target=target,
        token=TOKEN,
        access_key="k",
        wait_seconds=5,
    )
    relay.start()
    try:
        put(s3, "documents/late.txt")
        delivery = delivered(relay, "documents/late.txt")
    finally:
        relay.stop()
    assert [d.status for d in relay.deliveries] == [None, 200]
    assert delivery.outcome == "delivered" and len(sink.received) == 1


def test_buckets_come_from_the_topology() -> None:
    def service(name: str, env: dict[str, str]) -> ServiceSpec:
        return ServiceSpec(name, "eventfn", env, {}, 0, 0, 0, 60, name)

    topology = Topology(
        services={
            "a": service("a", {"EVENTFN_BUCKET": "lake"}),
            "b": service("b", {"ARCHIVE_BUCKET": "archive", "OTHER": "x"}),
        },
        triggers=[],
        brokers=[],
    )
    assert topology_buckets(topology) == ["archive", "eventfn-data", "lake"]
