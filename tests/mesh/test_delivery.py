"""Delivery semantics of the local broker against real loopback subscribers.

Time is a ManualClock: the broker schedules retries on it and `drive()` advances it to the next
due delivery whenever nothing is in flight, so backoff sequences are asserted exactly (from the
clock time at which each attempt reached the subscriber) and no test sleeps.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mesh_testing as mt
import pytest

from eventfn._codec import encode_binary, encode_structured
from eventfn._event import Event
from eventfn.mesh._broker import Broker, Hop, ManualClock
from eventfn.mesh._topology import load_topology

SERVICES = ("subscriber", "responder", "dead-letter", "pinger", "ponger")


@dataclass
class Mesh:
    broker: Broker
    clock: ManualClock
    subs: dict[str, Any]
    hops: list[Hop] = field(default_factory=list)

    def publish(
        self, event_type: str, event_id: str = "e-1", body: bytes = b'{"n":1}', **extra: str
    ) -> None:
        headers: dict[str, str] = mt.binary_headers(event_type, event_id)
        headers.update({name.replace("_", "-"): value for name, value in extra.items()})
        self.broker.publish(headers, body, "test", "default")

    def run(self) -> None:
        mt.drive(self.broker, self.clock)

    def requests(self, service: str) -> list[Any]:
        return list(self.subs[service].requests)

    def script(self, service: str, script: Any) -> None:
        self.subs[service].script = script

    def outcomes(self, trigger: str) -> list[str]:
        return [hop.outcome for hop in self.hops if hop.trigger == trigger and hop.attempt]


def delays(requests: list[Any]) -> list[float]:
    times = [request.at for request in requests]
    return [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]


Answer = tuple[int, dict[str, str], bytes]
Script = Callable[[Any, int], Answer]


def failing(times: int, status: int = 503, body: bytes = b"not yet", **headers: str) -> Script:
    def script(request: Any, call: int) -> Answer:
        if call < times:
            return status, {"content-type": "text/plain", **headers}, body
        return 204, {}, b""

    return script


def always(status: int, body: bytes = b"", **headers: str) -> Script:
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    return lambda request, call: (status, headers, body)


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    clock = ManualClock()
    subs = {name: mt.Subscriber(now=clock.now) for name in SERVICES}
    topology = load_topology(mt.DATA / "delivery")
    hops: list[Hop] = []
    broker = Broker(
        topology,
        tmp_path / "broker.db",
        lambda name: subs[name].url,
        clock=clock,
        on_hop=hops.append,
        workers=2,
    )
    state = Mesh(broker, clock, subs, hops)
    state.broker.start()
    yield state
    state.broker.close()
    for sub in subs.values():
        sub.close()


def test_linear_backoff_fails_twice_then_succeeds(mesh: Mesh) -> None:
    mesh.script("subscriber", failing(2))
    mesh.publish("test.linear.v1")
    mesh.run()
    requests = mesh.requests("subscriber")
    assert len(requests) == 3
    # Knative's core dispatcher: backoffDelay * n with zero-based n -> 0 s, then 1 s.
    assert delays(requests) == [0.0, 1.0]
    assert mesh.outcomes("linear") == ["retrying", "retrying", "delivered"]
    assert mesh.broker.stats["retried"] == 2
    assert mesh.broker.stats["delivered"] == 1


def test_exponential_backoff_exhausts_retries_into_the_dead_letter_sink(mesh: Mesh) -> None:
    mesh.script("subscriber", always(500, b"boom: database down", content_type="text/plain"))
    mesh.publish(
        "test.exponential.v1",
        "e-dls",
        b'{"order":7}',
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    mesh.run()
    requests = mesh.requests("subscriber")
    assert len(requests) == 5  # retry: 4 -> 5 attempts
    assert delays(requests) == [0.5, 1.0, 2.0, 4.0]  # backoffDelay * 2^n, n = 0, 1, 2, 3
    assert {request.path for request in requests} == {"/events"}  # uri relative to the ref
    (dead,) = mesh.requests("dead-letter")
    assert dead.ce["id"] == "e-dls"
    assert dead.ce["type"] == "test.exponential.v1"
    assert dead.headers["content-type"] == "application/json"
    assert json.loads(dead.body) == {"order": 7}
    assert dead.ce["knativeerrordest"] == mesh.subs["subscriber"].url + "/events"
    assert dead.ce["knativeerrorcode"] == "500"
    assert base64.b64decode(dead.ce["knativeerrordata"]) == b"boom: database down"
    assert dead.headers["traceparent"] == "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert mesh.outcomes("exponential") == ["retrying"] * 4 + ["failed", "dead-lettered"]
    assert mesh.broker.stats["dead_lettered"] == 1
    (logged,) = mesh.broker.events()
    assert logged["status"] == "dead-lettered"


def test_error_data_is_the_body_truncated_to_1024_bytes_then_base64(mesh: Mesh) -> None:
    body = bytes(range(256)) * 20  # 5120 bytes, not text
    mesh.script("subscriber", always(503, body))
    mesh.publish("test.exponential.v1")
    mesh.run()
    (dead,) = mesh.requests("dead-letter")
    data = base64.b64decode(dead.ce["knativeerrordata"], validate=True)
    assert data == body[:1024]
    assert dead.ce["knativeerrorcode"] == "503"


def test_a_400_is_not_retried_and_goes_to_the_dead_letter_sink(mesh: Mesh) -> None:
    problem = b'{"type":"urn:eventfn:problem:malformed-event","status":400}'
    mesh.script("subscriber", always(400, problem, content_type="application/problem+json"))
    mesh.publish("test.permanent.v1")
    mesh.run()
    assert len(mesh.requests("subscriber")) == 1
    (dead,) = mesh.requests("dead-letter")
    assert dead.ce["knativeerrorcode"] == "400"
    assert base64.b64decode(dead.ce["knativeerrordata"]) == problem
    assert mesh.broker.stats["retried"] == 0


@pytest.mark.parametrize(
    ("status", "attempts"),
    [
        (500, 4),
        (502, 4),
        (503, 4),
        (404, 4),
        (408, 4),
        (409, 4),
        (429, 4),
        (400, 1),
        (401, 1),
        (403, 1),
        (413, 1),
        (415, 1),
        (422, 1),
        (301, 1),
        (302, 1),
        (307, 1),
    ],
)
def test_which_statuses_are_retried(mesh: Mesh, status: int, attempts: int) -> None:
    extra = {"location": "/elsewhere"} if 300 <= status < 400 else {}
    mesh.script("subscriber", always(status, b"", **extra))
    mesh.publish("test.linear.v1")
    mesh.run()
    assert len(mesh.requests("subscriber")) == attempts
    hops = [hop for hop in mesh.hops if hop.trigger == "linear"]
    assert hops[-1].outcome == "failed"  # no dead-letter sink on this trigger
    assert hops[-1].status == status
    (logged,) = mesh.broker.events()
    assert logged["status"] == "failed"
    assert logged["deliveries"][0]["attempts"] == attempts


def test_timeouts_are_retried(mesh: Mesh) -> None:
    def stall_first(request: object, call: int) -> tuple[int, dict[str, str], bytes]:
        if call == 0:
            mesh.subs["subscriber"].release.wait(5.0)
        return 204, {}, b""

    mesh.script("subscriber", stall_first)
    mesh.publish("test.timeout.v1")
    mesh.run()
    assert len(mesh.requests("subscriber")) == 2
    first, second = (hop for hop in mesh.hops if hop.trigger == "timeout")
    assert (first.outcome, first.status) == ("retrying", None)
    assert first.latency_ms >= 250.0  # the 0.3 s delivery timeout, give or take a timer tick
    assert (second.outcome, second.status) == ("delivered", 204)
    assert delays(mesh.requests("subscriber")) == [0.0]


def test_network_errors_are_retried_and_the_dead_letter_has_no_error_code(
    tmp_path: Path, mesh: Mesh
) -> None:
    closed = mt.Subscriber()
    dead_url = closed.url
    closed.close()  # nothing listens there any more
    broker = Broker(
        load_topology(mt.DATA / "delivery"),
        tmp_path / "other.db",
        lambda name: dead_url if name == "subscriber" else mesh.subs[name].url,
        clock=mesh.clock,
        workers=1,
    )
    broker.start()
    try:
        broker.publish(mt.binary_headers("test.exponential.v1", "e-net"), b"{}", "test", "default")
        mt.drive(broker, mesh.clock)
        (dead,) = mesh.requests("dead-letter")
        assert dead.ce["knativeerrordest"] == dead_url + "/events"
        assert "knativeerrorcode" not in dead.ce
        assert "knativeerrordata" not in dead.ce
        assert broker.stats["retried"] == 4
        attempts = [hop for hop in broker.hops("e-net") if hop.trigger == "exponential"]
        assert [hop.status for hop in attempts[:5]] == [None] * 5
    finally:
        broker.close()


def test_retry_after_on_429_and_503_is_honoured_but_never_shortens_backoff(mesh: Mesh) -> None:
    answers = [
        (429, {"retry-after": "7"}),
        (503, {"retry-after": "1"}),
        (429, {"retry-after": "3600"}),
    ]

    def script(request: Any, call: int) -> Answer:
        if call < len(answers):
            status, headers = answers[call]
            return status, headers, b""
        return 204, {}, b""

    mesh.script("subscriber", script)
    mesh.publish("test.throttled.v1")
    mesh.run()
    # backoff 1, 2, 4 s: Retry-After 7 s wins, 1 s loses to 2 s,
    # and 3600 s is bounded by the trigger's retryAfterMax PT30S
    assert delays(mesh.requests("subscriber")) == [7.0, 2.0, 30.0]


def test_a_trigger_without_delivery_uses_the_brokers(mesh: Mesh) -> None:
    mesh.script("subscriber", always(503))
    mesh.publish("test.default.v1")
    mesh.run()
    assert delays(mesh.requests("subscriber")) == [0.0]  # broker: retry 1, linear PT3S


def test_a_broker_ingress_uri_as_dead_letter_sink_is_a_second_local_broker(mesh: Mesh) -> None:
    mesh.script("subscriber", always(422, b"rejected"))
    mesh.publish("test.dead-broker.v1", "e-second")
    mesh.run()
    (dead,) = mesh.requests("dead-letter")
    assert dead.ce["id"] == "e-second"
    assert dead.ce["knativeerrorcode"] == "422"
    assert mesh.broker.stats["dead_lettered"] == 1


def _responder(reply: Event, mode: str, status: int = 200, **extra: str) -> Script:
    encode = encode_binary if mode == "binary" else encode_structured

    def script(request: Any, call: int) -> Answer:
        headers, body = encode(reply)
        return status, {**headers, **extra}, body

    return script


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_200_reply_is_republished_and_matched_by_another_trigger(mesh: Mesh, mode: str) -> None:
    reply = Event.new("test.response.v1", "/responder", {"answer": 42}, subject="s-1")
    traceparent = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    mesh.script("responder", _responder(reply, mode, traceparent=traceparent))
    mesh.publish("test.request.v1", "e-req")
    mesh.run()
    (request,) = mesh.requests("responder")
    assert request.path == "/reply"
    assert request.headers["prefer"] == "reply"
    (delivered,) = mesh.requests("subscriber")
    assert delivered.ce["type"] == "test.response.v1"
    assert delivered.ce["id"] == reply.id
    assert delivered.ce["subject"] == "s-1"
    assert json.loads(delivered.body) == {"answer": 42}
    assert delivered.headers["traceparent"] == traceparent  # replies keep the response's trace
    assert mesh.broker.stats["replies"] == 1
    logged = mesh.broker.events()
    assert [entry["type"] for entry in logged] == ["test.response.v1", "test.request.v1"]
    assert logged[0]["reply_to"] == "e-req"
    assert [hop.outcome for hop in mesh.broker.hops(reply.id)] == ["reply", "delivered"]


@pytest.mark.parametrize("status", [201, 202, 204])
def test_non_200_answers_with_an_event_are_not_replies(mesh: Mesh, status: int) -> None:
    reply = Event.new("test.response.v1", "/responder", {"answer": 42})
    answer = _responder(reply, "binary", status) if status != 204 else always(204)
    mesh.script("responder", answer)
    mesh.publish("test.request.v1")
    mesh.run()
    assert mesh.requests("subscriber") == []
    assert mesh.broker.stats["replies"] == 0
    assert mesh.broker.stats["delivered"] == 1


def test_an_empty_200_is_not_a_reply(mesh: Mesh) -> None:
    mesh.script("responder", always(200))
    mesh.publish("test.request.v1")
    mesh.run()
    assert mesh.broker.stats == {**mesh.broker.stats, "delivered": 1, "replies": 0}


def test_a_200_with_a_body_that_is_no_event_fails_like_knatives_502(mesh: Mesh) -> None:
    mesh.script("subscriber", always(200, b"OK", content_type="text/plain"))
    mesh.publish("test.exponential.v1")
    mesh.run()
    assert len(mesh.requests("subscriber")) == 5
    (dead,) = mesh.requests("dead-letter")
    assert dead.ce["knativeerrorcode"] == "502"
    assert base64.b64decode(dead.ce["knativeerrordata"]) == b"OK"


def _echo_as(reply_type: str) -> Script:
    def script(request: Any, call: int) -> Answer:
        event = Event.new(reply_type, "/loop", {"hop": call})
        headers, body = encode_binary(event)
        return 200, headers, body

    return script


def test_the_ttl_extension_stops_a_ping_pong_reply_loop(mesh: Mesh) -> None:
    mesh.script("pinger", _echo_as("test.pong.v1"))
    mesh.script("ponger", _echo_as("test.ping.v1"))
    mesh.publish("test.ping.v1", "e-loop", ce_knativebrokerttl="6")
    mesh.run()
    # ingress leaves 5 hops; every reply spends one: ping(5) pong(4) ping(3) pong(2) ping(1),
    # and the reply of the last delivery would have 0 left, so it is dropped.
    assert len(mesh.requests("pinger")) == 3
    assert len(mesh.requests("ponger")) == 2
    stats = mesh.broker.stats
    assert (stats["replies"], stats["ttl_exceeded"], stats["delivered"]) == (4, 1, 5)
    seen = mesh.requests("pinger") + mesh.requests("ponger")
    assert all("ce-knativebrokerttl" not in request.headers for request in seen)
    assert all("ce-knativearrivaltime" in request.headers for request in seen)
    assert mesh.hops[-1].outcome == "failed" and mesh.hops[-1].status is None


def test_the_default_ttl_of_255_bounds_an_unguarded_loop(mesh: Mesh) -> None:
    mesh.script("pinger", _echo_as("test.pong.v1"))
    mesh.script("ponger", _echo_as("test.ping.v1"))
    mesh.publish("test.ping.v1", "e-loop")
    mesh.run()
    deliveries = len(mesh.requests("pinger")) + len(mesh.requests("ponger"))
    assert deliveries == 254
    assert mesh.broker.stats["ttl_exceeded"] == 1
