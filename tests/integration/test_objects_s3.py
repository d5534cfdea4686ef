"""ObjectStore against a real S3 API (moto's server on loopback) through boto3."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from eventfn import DependencyUnavailable, Settings
from eventfn._objects import InvalidObjectKey, ObjectStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield Settings(s3_endpoint_url=f"http://127.0.0.1:{port}", bucket="data")
    server.stop()


def test_put_get_head_round_trip(s3_settings: Settings) -> None:
    store = ObjectStore.from_settings(s3_settings)
    store.client.create_bucket(Bucket="data")
    etag = store.put("documents/report 1.txt", b"hello", content_type="text/plain")
    assert etag and '"' not in etag
    assert store.get("documents/report 1.txt") == b"hello"
    head = store.head("documents/report 1.txt")
    assert head["ContentLength"] == 5 and head["ContentType"] == "text/plain"
    assert store.open("documents/report 1.txt").read() == b"hello"


def test_traversal_keys_never_reach_s3(s3_settings: Settings) -> None:
    store = ObjectStore.from_settings(s3_settings)
    with pytest.raises(InvalidObjectKey):
        store.put("../escape", b"x")


def test_unreachable_endpoint_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    port = _free_port()
    store = ObjectStore.from_settings(Settings(s3_endpoint_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(DependencyUnavailable):
        store.get("documents/a.txt")
