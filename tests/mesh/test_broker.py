"""The broker ingress (WSGI), its problem answers, the event log, hops and stats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mesh_testing as mt
import pytest
from werkzeug.test import Client

from eventfn._codec import encode_structured
from eventfn._event import Event
from eventfn.mesh._broker import Broker, Hop
from eventfn.mesh._ingress import IngressApp
from eventfn.mesh._topology import load_topology

TOPOLOGY = load_topology(mt.DATA / "broker")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PROBLEM = "application/problem+json"


class Shop:
    def __init__(self, tmp_path: Path) -> None:
        self.subs = {name: mt.Subscriber() for name in ("orders", "audit")}
        self.seen: list[Hop] = []
        self.db = tmp_path / "broker.db"
        self.broker = self.new_broker()
        self.client = Client(self.broker.wsgi())

    def new_broker(self) -> Broker:
        return Broker(
            TOPOLOGY, self.db, lambda name: self.subs[name].url, on_hop=self.seen.append, workers=4
        )

    def post(self, headers: dict[str, str], body: bytes, path: str = "/shop/default") -> Any:
        return self.client.post(path, headers=headers, data=body)

    def close(self) -> None:
        self.broker.close()
        for sub in self.subs.values():
            sub.close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    state = Shop(tmp_path)
    yield state
    state.close()


def order(event_id: str = "o-1", **extra: str) -> dict[str, str]:
    headers: dict[str, str] = mt.binary_headers("shop.order.created.v1", event_id, **extra)
    return headers


def test_binary_ingress_answers_202_and_delivers_in_binary_mode(shop: Shop) -> None:
    shop.broker.start()
    answer = shop.post(
        order(**{"ce-subject": "orders/1", "ce-tenant": "acme", "traceparent": TRACEPARENT}),
        b'{"total": 12}',
    )
    assert answer.status_code == 202
    assert answer.data == b""
    assert shop.broker.wait_idle(mt.WAIT)
    (received,) = shop.subs["orders"].requests
    assert received.path == "/"
    assert received.ce["id"] == "o-1"
    assert received.ce["subject"] == "orders/1"
    assert received.ce["tenant"] == "acme"
    assert received.body == b'{"total": 12}'  # data forwarded byte for byte
    assert received.headers["content-type"] == "application/json"
    assert received.headers["prefer"] == "reply"
    assert received.headers["traceparent"] == TRACEPARENT
    assert received.ce["knativearrivaltime"].endswith("Z")
    assert "ce-knativebrokerttl" not in received.headers


def test_structured_ingress_is_delivered_in_binary_mode(shop: Shop) -> None:
    shop.broker.start()
    event = Event.new(
        "shop.order.created.v1",
        "/web",
        {"total": 3},
        subject="orders/2",
        extensions={"tenant": "acme"},
    )
    headers, body = encode_structured(event)
    assert shop.post(headers, body).status_code == 202
    assert shop.broker.wait_idle(mt.WAIT)
    (received,) = shop.subs["orders"].requests
    assert received.headers["content-type"] == "application/json"
    assert received.ce["id"] == event.id
    assert received.ce["tenant"] == "acme"
    assert json.loads(received.body) == {"total": 3}


@pytest.mark.parametrize(
    "path", ["/shop/unknown", "/other/default", "/", "/shop", "/shop/default/extra"]
)
def test_unknown_broker_paths_are_404_problems(shop: Shop, path: str) -> None:
    answer = shop.post(order(), b"{}", path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert answer.get_json()["type"] == "urn:eventfn:problem:unknown-broker"
    assert shop.broker.stats["accepted"] == 0


def test_only_post_is_allowed(shop: Shop) -> None:
    answer = shop.client.get("/shop/default")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


BAD_INPUT = [
    (
        "missing id",
        {k: v for k, v in order().items() if k != "ce-id"},
        b"{}",
        400,
        "malformed-event",
        "id",
    ),
    (
        "old specversion",
        {**order(), "ce-specversion": "0.3"},
        b"{}",
        400,
        "malformed-event",
        "specversion",
    ),
    ("bad time", {**order(), "ce-time": "yesterday"}, b"{}", 400, "malformed-event", "time"),
    (
        "not a cloudevent",
        {"content-type": "text/plain"},
        b"hello",
        415,
        "unsupported-content-type",
        "content-type",
    ),
    (
        "batch mode",
        {"content-type": "application/cloudevents-batch+json"},
        b"[]",
        415,
        "unsupported-content-type",
        "content-type",
    ),
    (
        "structured body not JSON",
        {"content-type": "application/cloudevents+json"},
        b"{nope",
        400,
        "malformed-event",
        None,
    ),
    (
        "structured without type",
        {"content-type": "application/cloudevents+json"},
        b'{"specversion":"1.0","id":"x","source":"/s"}',
        400,
        "malformed-event",
        "type",
    ),
    (
        "hop budget used up",
        {**order(), "ce-knativebrokerttl": "1"},
        b"{}",
        400,
        "ttl-exceeded",
        None,
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code", "field"),
    [c[1:] for c in BAD_INPUT],
    ids=[c[0] for c in BAD_INPUT],
)
def test_bad_input_gets_a_problem_body(
    shop: Shop, headers: dict[str, str], body: bytes, status: int, code: str, field: str | None
) -> None:
    answer = shop.post(headers, body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.get_json()
    assert problem["type"] == f"urn:eventfn:problem:{code}"
    assert problem["status"] == status
    assert problem.get("field") == field
    assert shop.broker.stats["accepted"] == 0
    assert shop.broker.events() == []


def test_binary_data_is_not_parsed_at_ingress(shop: Shop) -> None:
    # Knative's broker does not look at data; a function decides what invalid JSON means.
    assert shop.post(order(), b"{not json").status_code == 202


def test_a_too_large_body_is_413(shop: Shop) -> None:
    client = Client(IngressApp(shop.broker, max_body=64))
    answer = client.post("/shop/default", headers=order(), data=b"x" * 65)
    assert answer.status_code == 413
    assert answer.get_json()["type"] == "urn:eventfn:problem:payload-too-large"


def test_an_event_no_trigger_wants_is_accepted_and_counted(shop: Shop) -> None:
    assert shop.post(mt.binary_headers("shop.cart.abandoned.v1", "c-1"), b"{}").status_code == 202
    assert shop.broker.stats["no_match"] == 1
    assert shop.broker.stats["accepted"] == 1
    (logged,) = shop.broker.events()
    assert (logged["status"], logged["deliveries"]) == ("no-match", [])
    assert [hop.outcome for hop in shop.broker.hops("c-1")] == ["accepted", "no-match"]
    assert shop.broker.wait_idle(0.0)


def test_fan_out_rows_are_written_with_the_event(shop: Shop) -> None:
    shop.post(order("o-fan"), b"{}")  # dispatcher not started: only what ingress stored
    (logged,) = shop.broker.events()
    assert logged["status"] == "pending"
    assert [(d["trigger"], d["state"], d["attempts"]) for d in logged["deliveries"]] == [
        ("orders-created", "pending", 0),
        ("audit-orders", "pending", 0),
    ]
    shop.broker.start()
    assert shop.broker.wait_idle(mt.WAIT)
    assert [len(sub.requests) for sub in shop.subs.values()] == [1, 1]
    (logged,) = shop.broker.events()
    assert logged["status"] == "delivered"
    assert {
        (d["trigger"], d["state"], d["attempts"], d["last_status"]) for d in logged["deliveries"]
    } == {
        ("orders-created", "delivered", 1, 204),
        ("audit-orders", "delivered", 1, 204),
    }


def test_the_event_log_lists_newest_first_with_a_type_prefix(shop: Shop) -> None:
    shop.post(order("o-1"), b"{}")
    shop.post(mt.binary_headers("shop.invoice.v1", "i-1", **{"ce-subject": "inv/1"}), b'{"n":1}')
    shop.post(order("o-2"), b"{}")
    assert [e["id"] for e in shop.broker.events()] == ["o-2", "i-1", "o-1"]
    assert [e["id"] for e in shop.broker.events(limit=2)] == ["o-2", "i-1"]
    assert [e["id"] for e in shop.broker.events(type_prefix="shop.order.")] == ["o-2", "o-1"]
    invoice = shop.broker.events(type_prefix="shop.invoice")[0]
    assert invoice["type"] == "shop.invoice.v1"
    assert invoice["source"] == "/tests/mesh"
    assert invoice["subject"] == "inv/1"
    assert (invoice["namespace"], invoice["broker"]) == ("shop", "default")
    assert invoice["attributes"]["subject"] == "inv/1"
    assert invoice["size"] == len(b'{"n":1}')
    assert invoice["reply_to"] is None
    assert invoice["ttl"] == 254


def test_hops_record_every_step(shop: Shop) -> None:
    shop.broker.start()
    shop.post(
        mt.binary_headers(
            "shop.invoice.v1", "i-9", **{"ce-subject": "inv/9", "traceparent": TRACEPARENT}
        ),
        b"{}",
    )
    assert shop.broker.wait_idle(mt.WAIT)
    accepted, delivered = shop.broker.hops("i-9")
    assert (accepted.outcome, accepted.trigger, accepted.destination, accepted.status) == (
        "accepted",
        None,
        "shop/default",
        202,
    )
    assert delivered.outcome == "delivered"
    assert delivered.trigger == "invoices"
    assert delivered.destination == shop.subs["orders"].url + "/invoices"
    assert (delivered.status, delivered.attempt) == (204, 1)
    assert (delivered.event_type, delivered.event_source, delivered.subject) == (
        "shop.invoice.v1",
        "/tests/mesh",
        "inv/9",
    )
    assert delivered.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert delivered.latency_ms > 0
    assert shop.seen == [accepted, delivered]  # the same hops went to on_hop
    assert shop.broker.hops() == [accepted, delivered]


def test_stats_name_every_counter(shop: Shop) -> None:
    assert set(shop.broker.stats) >= {
        "accepted",
        "delivered",
        "retried",
        "dead_lettered",
        "no_match",
        "replies",
    }
    assert all(value == 0 for value in shop.broker.stats.values())


def test_pending_deliveries_survive_a_restart(shop: Shop) -> None:
    shop.post(order("o-restart"), b'{"n": 1}')
    shop.broker.close()  # never started: both deliveries are only in SQLite
    shop.broker = shop.new_broker()
    shop.broker.start()
    assert shop.broker.wait_idle(mt.WAIT)
    assert [len(sub.requests) for sub in shop.subs.values()] == [1, 1]
    assert shop.subs["orders"].requests[0].body == b'{"n": 1}'
    assert [hop.outcome for hop in shop.broker.hops("o-restart")] == [
        "accepted",
        "delivered",
        "delivered",
    ]


def test_a_failing_on_hop_callback_does_not_stop_delivery(shop: Shop, tmp_path: Path) -> None:
    def explode(hop: Hop) -> None:
        raise RuntimeError("printer broke")

    broker = Broker(
        TOPOLOGY, tmp_path / "other.db", lambda name: shop.subs[name].url, on_hop=explode
    )
    broker.start()
    try:
        broker.publish(order("o-cb"), b"{}", "shop", "default")
        assert broker.wait_idle(mt.WAIT)
        assert broker.stats["delivered"] == 2
    finally:
        broker.close()


def test_publish_refuses_unknown_brokers(shop: Shop) -> None:
    with pytest.raises(LookupError):
        shop.broker.publish(order(), b"{}", "shop", "nope")
