"""The echo function through the test client, in binary AND structured mode for every case."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client

from eventfn._codec import decode_http
from eventfn._tables import echo_messages
from eventfn._wsgi import FunctionWSGI

from .conftest import MODES, Sink, echo_event, post, problem

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _reply(response):  # type: ignore[no-untyped-def]
    return decode_http(dict(response.headers), response.get_data())


def _rows(wsgi: FunctionWSGI) -> int:
    assert wsgi.services.database is not None
    with wsgi.services.database.engine().connect() as conn:
        return int(conn.execute(select(func.count()).select_from(echo_messages)).scalar_one())


@pytest.mark.parametrize("mode", MODES)
def test_reply_is_a_binary_mode_cloudevent(client: Client, mode: str) -> None:
    response = post(client, echo_event("hi", subject="greetings"), mode)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "eventfn.echo.replied.v1"
    reply = _reply(response)
    assert reply.source == "/eventfn/echo"
    assert reply.subject == "greetings"
    assert reply.dataschema is not None
    assert reply.data["message"] == "hi"
    assert reply.data["length"] == 2


@pytest.mark.parametrize("mode", MODES)
def test_emit_reaches_the_broker_with_the_same_trace(client: Client, sink: Sink, mode: str) -> None:
    event = echo_event("traced")
    from .conftest import encode

    headers, body = encode(event, mode)
    response = client.post("/", data=body, headers={**headers, "traceparent": TRACEPARENT})
    assert response.status_code == 200
    assert response.headers["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert len(sink.received) == 1
    sent_headers, sent_body = sink.received[0]
    assert sent_headers["ce-type"] == "eventfn.echo.recorded.v1"
    assert sent_headers["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert sent_headers["ce-dataschema"]
    assert json.loads(sent_body)["source_event"] == f"{event.source}/{event.id}"


@pytest.mark.parametrize("mode", MODES)
def test_duplicate_delivery_replays_without_second_effect(
    echo_wsgi: FunctionWSGI, client: Client, sink: Sink, mode: str
) -> None:
    event = echo_event("once")
    first = post(client, event, mode)
    second = post(client, event, mode)
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    assert first.headers["ce-id"] == second.headers["ce-id"]
    assert _rows(echo_wsgi) == 1
    assert len(sink.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_broker_down_gives_retryable_status_and_redelivery_emits_once(
    echo_wsgi: FunctionWSGI, client: Client, sink: Sink, mode: str
) -> None:
    echo_wsgi.services.emitter.sleep = lambda seconds: None
    sink.statuses.extend([503] * (echo_wsgi.services.emitter.retries + 1))
    event = echo_event("later")
    failed = post(client, event, mode)
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "1"
    assert problem(failed)["type"] == "urn:eventfn:problem:dependency-unavailable"
    retried = post(client, event, mode)
    assert retried.status_code == 200
    assert _rows(echo_wsgi) == 1
    accepted = [h for h, _ in sink.received]
    assert len(accepted) == echo_wsgi.services.emitter.retries + 2
    assert len({h["ce-id"] for h in accepted}) == 1
    third = post(client, event, mode)
    assert third.status_code == 200
    assert len(sink.received) == len(accepted)


@pytest.mark.parametrize("mode", MODES)
def test_new_trace_is_started_without_traceparent(client: Client, mode: str) -> None:
    response = post(client, echo_event(), mode)
    version, trace_id, span_id, _flags = response.headers["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16


def test_health_and_metrics(client: Client) -> None:
    assert client.get("/health/liveness").status_code == 200
    ready = client.get("/health/readiness")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready", "checks": {"database": True, "function": True}}
    post(client, echo_event(), "binary")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (
        'eventfn_events_total{function="echo",outcome="ok",type="eventfn.echo.requested.v1"}'
        in (metrics)
    )


def test_other_paths_get_problem_bodies(client: Client) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert problem(response)["status"] == 404
