"""csv-ingest's output: partitioned Parquet and its event, new versions and redeliveries, multipart
uploads; through the WSGI test client against moto's S3 server on loopback."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
from csv_ingest_testing import (
    SALES,
    Factory,
    Sink,
    Store,
    created,
    deliver,
    only_output,
    processed,
    upload_and_deliver,
)
from werkzeug.test import Client

WHEN = dt.datetime(2026, 11, 28, 9, 30, 0, 250000, tzinfo=dt.UTC)
PARTITION = "year=2026/month=11/day=28"
MiB = 1024 * 1024


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
