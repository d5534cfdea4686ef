"""dlq-handler through the WSGI test client: SQLite store, a loopback broker stand-in.

The dead letters are the requests Knative's dispatcher sends: the original event in binary mode
plus knativeerrordest / knativeerrorcode / knativeerrordata (base64) and a traceparent header.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventfn._codec import decode_http
from eventfn._deadletters import dead_letter_id, decode_error_data

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import dlq_testing as dt  # noqa: E402


@pytest.fixture
def dlq(tmp_path: Path) -> Iterator[object]:
    with dt.dlq_harness(tmp_path) as harness:
        yield harness


def test_a_dead_letter_is_stored_with_its_extensions_decoded(dlq: object) -> None:
    h = dlq
    event = dt.poison_event()  # invalid for its schema (quantity 0): stored all the same
    response = h.deliver(*dt.dead_letter_request(event))
    assert response.status_code == 204, response.get_data(as_text=True)

    [row] = h.rows()
    assert row["id"] == dead_letter_id(event.source, event.id, dt.SUBSCRIBER_URL)
    assert (row["event_id"], row["event_type"], row["event_source"], row["subject"]) == (
        "order-1042", "eventfn.order.confirmed.v1", "/eventfn/ingest-api", "order-1042",
    )  # fmt: skip
    assert (row["error_dest"], row["error_code"]) == (dt.SUBSCRIBER_URL, 422)
    assert row["error_data"] == dt.PROBLEM.decode()
    assert row["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert row["attempts"] is None and row["replay_count"] == 0
    assert row["received_at"].endswith("Z")
    stored = json.loads(row["event_json"])
    assert stored["data"] == event.data
    assert stored["partitionkey"] == "c-1" and "knativearrivaltime" in stored
    assert not any(name.startswith("knativeerror") for name in stored)

    [recorded] = h.sink.events(dt.RECORDED)
    assert recorded.subject == "eventfn.order.confirmed.v1"
    assert recorded.source == "/eventfn/dlq-handler"
    assert recorded.data == {
        "id": row["id"],
        "event_id": "order-1042",
        "event_type": "eventfn.order.confirmed.v1",
        "event_source": "/eventfn/ingest-api",
        "subject": "order-1042",
        "error_code": 422,
        "error_dest": dt.SUBSCRIBER_URL,
        "error_excerpt": "Event data violates its schema: must be greater than or equal to 1",
        "attempts": None,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "received_at": row["received_at"],
        "repeated": False,
    }
    # the announcement continues the dead letter's trace
    assert h.sink.received[0][0]["traceparent"].split("-")[1] == row["trace_id"]


def test_a_redelivered_dead_letter_is_one_row_and_one_announcement(dlq: object) -> None:
    h = dlq
    request = dt.dead_letter_request(dt.poison_event())
    assert h.deliver(*request).status_code == 204
    assert h.deliver(*request).status_code == 204
    assert len(h.rows()) == 1
    assert len(h.sink.events(dt.RECORDED)) == 1


def test_the_same_event_failing_at_two_subscribers_is_two_rows(dlq: object) -> None:
    h = dlq
    event = dt.poison_event()
    h.deliver(*dt.dead_letter_request(event, dest="http://a.example/"))
    h.deliver(*dt.dead_letter_request(event, dest="http://b.example/"))
    assert sorted(row["error_dest"] for row in h.rows()) == [
        "http://a.example/",
        "http://b.example/",
    ]


def test_dead_lettered_again_after_a_replay_updates_the_row(dlq: object) -> None:
    h = dlq
    event = dt.poison_event()
    h.deliver(*dt.dead_letter_request(event))
    from eventfn._deadletters import record_replay

    letter_id = h.rows()[0]["id"]
    with h.engine.begin() as connection:
        record_replay(connection, letter_id, "ok: broker 202 (3 ms)", "2026-11-28T13:00:00Z")
    # the replay went through the broker again: a new arrival time, a new failure
    again = event.with_changes(
        extensions={**event.extensions, "knativearrivaltime": "2026-11-28T13:00:00.2Z"}
    )
    response = h.deliver(*dt.dead_letter_request(again, code=500, body=b"boom"))
    assert response.status_code == 204
    [row] = h.rows()
    assert row["replay_count"] == 1 and row["error_code"] == 500 and row["error_data"] == "boom"
    assert row["last_replay_result"].startswith("dead-lettered again (500) at ")
    first, second = h.sink.events(dt.RECORDED)
    assert first.id != second.id
    assert (first.data["repeated"], second.data["repeated"]) == (False, True)


def test_data_that_does_not_parse_is_stored_as_received(dlq: object) -> None:
    h = dlq
    broken = b'{"order_id": "order-7", "items": [}'
    headers, _ = dt.dead_letter_request(dt.poison_event("order-7"))
    response = h.deliver(headers, broken)
    assert response.status_code == 204, response.get_data(as_text=True)
    [row] = h.rows()
    stored = json.loads(row["event_json"])
    assert base64.b64decode(stored["data_base64"]) == broken
    assert stored["datacontenttype"] == "application/json"


def test_binary_data_is_kept_as_data_base64(dlq: object) -> None:
    h = dlq
    event = dt.poison_event(
        "blob-1", data=b"\x00\xffraw", datacontenttype="application/octet-stream"
    )
    assert h.deliver(*dt.dead_letter_request(event)).status_code == 204
    stored = json.loads(h.rows()[0]["event_json"])
    assert base64.b64decode(stored["data_base64"]) == b"\x00\xffraw"


def test_any_type_and_structured_mode_are_accepted(dlq: object) -> None:
    from eventfn._codec import encode_structured

    h = dlq
    event = dt.poison_event("x-1", type="com.example.never.heard.of.v9")
    headers, body = dt.dead_letter_request(event)
    structured = decode_http(headers, body)
    headers, body = encode_structured(structured)
    assert h.deliver(headers, body).status_code == 204
    assert h.rows()[0]["event_type"] == "com.example.never.heard.of.v9"


def test_a_dead_announcement_is_stored_but_not_announced_again(dlq: object) -> None:
    h = dlq
    announcement = dt.poison_event(
        "dl-1", type=dt.RECORDED, source="/eventfn/dlq-handler", data={"id": "x"}
    )
    request = dt.dead_letter_request(announcement, dest="http://notifier/", code=422)
    assert h.deliver(*request).status_code == 204
    assert h.rows()[0]["event_type"] == dt.RECORDED
    assert h.sink.received == []  # the loop guard: nothing emitted


def test_a_dead_letter_without_extensions_or_trace_is_stored(dlq: object) -> None:
    h = dlq
    event = dt.poison_event("plain-1")
    request = dt.dead_letter_request(event, dest=None, code=None, body=b"", traceparent=None)
    assert h.deliver(*request).status_code == 204
    [row] = h.rows()
    assert (row["error_dest"], row["error_code"], row["error_data"]) == (None, None, None)
    assert len(row["trace_id"]) == 32  # the trace this delivery started
    [recorded] = h.sink.events(dt.RECORDED)
    assert recorded.data["error_excerpt"] is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (base64.b64encode(b"plain text").decode(), "plain text"),
        (base64.b64encode("aé".encode()).decode()[:3], "a\ufffd"),  # base64 text cut short
        (base64.b64encode(b"\xff\xfebad utf-8").decode(), "\ufffd\ufffdbad utf-8"),
        ("not base64 at all!", "not base64 at all!"),
        ("", None),
        (None, None),
    ],
)
def test_error_data_is_decoded_leniently(value: str | None, text: str | None) -> None:
    assert decode_error_data(value) == text


def test_a_broker_outage_fails_the_dead_letter_delivery_retryably(tmp_path: Path) -> None:
    with dt.dlq_harness(tmp_path) as h:
        h.sink.statuses[:] = [503]
        request = dt.dead_letter_request(dt.poison_event())
        response = h.deliver(*request)
        assert response.status_code == 503  # the row is kept; the announcement is sent later
        assert len(h.rows()) == 1
        assert h.deliver(*request).status_code == 204
        assert len(h.sink.events(dt.RECORDED)) == 2  # the refused attempt and the delivered one
