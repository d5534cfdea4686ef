"""Shared by the csv-ingest tests: the CSV files most tests upload, the broker stand-in's record,
the S3 bucket of a test, and storage events delivered through the WSGI test client.

Importable by name: conftest.py puts this folder on sys.path.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from werkzeug.test import Client, TestResponse

from eventfn import Event
from eventfn._codec import decode_http, encode_binary

CREATED = "eventfn.storage.object.created.v1"
PROCESSED = "eventfn.dataset.file.processed.v1"
EVENT_TIME = "2026-11-28T09:30:00.250Z"

SALES = (
    b"id,price,name,day,flag\n"
    b'1,9.5,"Smith, John",2026-11-01,true\n'
    b'2,10.25,"say ""hi""",2026-11-02,false\n'
    b"3,,plain,2026-11-03,true\n"
)
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


@dataclass
class Sink:
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [decode_http(headers, body) for headers, body in self.received]


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


Factory = Callable[..., Client]


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
