"""csv-ingest's refusals and failures: permanent errors, storage that is down or fails mid-way,
objects that are not its business; through the WSGI test client against moto's S3 server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from csv_ingest_testing import (
    RAGGED,
    Factory,
    Sink,
    Store,
    created,
    deliver,
    free_port,
    problem,
    processed,
    upload_and_deliver,
)
from werkzeug.test import Client

from eventfn._objects import ObjectStore


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
    client = make_client(s3_endpoint=f"http://127.0.0.1:{free_port()}")
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
