"""The per-event path with small inline functions, in binary and structured mode."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import fastavro
import pytest
from werkzeug.test import Client

from eventfn import (
    App,
    Context,
    DependencyUnavailable,
    Event,
    Rejected,
    Reply,
    Settings,
    create_app,
)
from eventfn._codec import decode_http
from eventfn._logging import configure_logging
from eventfn._tracing import Tracer
from eventfn._wsgi import FunctionWSGI

from .conftest import MODES, Sink, encode, post, problem, settings_for

ROOT = Path(__file__).resolve().parents[2]
USER_SCHEMA = json.loads((ROOT / "schemas" / "eventfn.user.updated.v1.avsc").read_text())

Build = Callable[[App], Client]


@pytest.fixture
def build(tmp_path: Path, sink: Sink) -> Iterator[Build]:
    created: list[FunctionWSGI] = []

    def make(app: App, **overrides: object) -> Client:
        settings: Settings = settings_for(tmp_path, sink, **overrides)
        wsgi = create_app(app, settings=settings, tracer=Tracer(app.name, enabled=False), env={})
        created.append(wsgi)
        return wsgi.test_client()

    yield make
    for wsgi in created:
        wsgi.close()


def _event(event_type: str = "t.requested.v1", data: object = None) -> Event:
    return Event.new(event_type, "/tests", data if data is not None else {"n": 1})


@pytest.mark.parametrize("mode", MODES)
def test_returning_nothing_gives_204_without_body(build: Build, mode: str) -> None:
    app = App("quiet")
    app.on("t.requested.v1")(lambda event, ctx: None)
    response = post(build(app), _event(), mode)
    assert response.status_code == 204 and response.get_data() == b""


@pytest.mark.parametrize("mode", MODES)
def test_returning_an_event_replies_with_it(build: Build, mode: str) -> None:
    app = App("eventer")

    @app.on("t.requested.v1")
    def handle(event: Event, ctx: Context) -> Event:
        return Event.new("t.done.v1", ctx.source, {"ok": True}, subject="s")

    response = post(build(app), _event(), mode)
    reply = decode_http(dict(response.headers), response.get_data())
    assert response.status_code == 200
    assert (reply.type, reply.source, reply.data, reply.subject) == (
        "t.done.v1",
        "/eventfn/eventer",
        {"ok": True},
        "s",
    )


@pytest.mark.parametrize("mode", MODES)
def test_reply_with_explicit_type_and_deterministic_id(build: Build, mode: str) -> None:
    app = App("replier")
    app.on("t.requested.v1", idempotent=False)(
        lambda event, ctx: Reply({"x": 1}, type="t.other.v1")
    )
    client = build(app)
    event = _event()
    first = post(client, event, mode)
    second = post(client, event, mode)
    assert first.headers["ce-type"] == "t.other.v1"
    assert first.headers["ce-id"] == second.headers["ce-id"]


@pytest.mark.parametrize("mode", MODES)
def test_data_without_declared_reply_type_is_a_500(build: Build, mode: str) -> None:
    app = App("untyped")
    app.on("t.requested.v1")(lambda event, ctx: {"x": 1})
    response = post(build(app), _event(), mode)
    assert response.status_code == 500


@pytest.mark.parametrize("mode", MODES)
def test_unexpected_exception_is_500_with_trace_id_and_no_text(build: Build, mode: str) -> None:
    app = App("crasher")

    @app.on("t.requested.v1")
    def crash(event: Event, ctx: Context) -> None:
        raise RuntimeError("database password is hunter2")

    client = build(app)
    logs = io.StringIO()
    configure_logging("crasher", stream=logs)
    try:
        response = post(client, _event(), mode)
    finally:
        configure_logging("crasher")
    body = problem(response)
    assert response.status_code == 500
    assert "hunter2" not in response.get_data(as_text=True)
    assert body["trace_id"] == response.headers["traceparent"].split("-")[1]
    errors = [json.loads(line) for line in logs.getvalue().splitlines()]
    errors = [entry for entry in errors if entry["level"] == "ERROR"]
    assert [entry["trace_id"] for entry in errors] == [body["trace_id"]]
    assert errors[0]["event_type"] == "t.requested.v1"


@pytest.mark.parametrize("mode", MODES)
def test_rejected_is_permanent_and_releases_the_claim(build: Build, mode: str) -> None:
    calls: list[str] = []
    app = App("rejecter")

    @app.on("t.requested.v1")
    def reject(event: Event, ctx: Context) -> None:
        calls.append(event.id)
        raise Rejected("order total is negative", field="$.total")

    client = build(app)
    event = _event()
    response = post(client, event, mode)
    assert response.status_code == 422
    assert problem(response)["field"] == "$.total"
    assert post(client, event, mode).status_code == 422
    assert len(calls) == 2


@pytest.mark.parametrize("mode", MODES)
def test_dependency_down_is_retryable_with_retry_after(build: Build, mode: str) -> None:
    attempts: list[int] = []
    app = App("flaky")

    @app.on("t.requested.v1")
    def flaky(event: Event, ctx: Context) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise DependencyUnavailable("search index is down", retry_after=7)

    client = build(app)
    event = _event()
    first = post(client, event, mode)
    assert first.status_code == 503 and first.headers["retry-after"] == "7"
    assert problem(first)["retryable"] is True
    assert post(client, event, mode).status_code == 204
    assert post(client, event, mode).status_code == 204
    assert len(attempts) == 2


@pytest.mark.parametrize("mode", MODES)
def test_avro_data_is_decoded_with_the_registered_schema(build: Build, mode: str) -> None:
    seen: list[object] = []
    app = App("avro-reader")
    app.on("eventfn.user.updated.v1")(lambda event, ctx: seen.append(event.data))
    record = {
        "user_id": "u1",
        "email": "a@example.org",
        "name": "Ada",
        "version": 3,
        "updated_at": 1_700_000_000_000,
        "tags": ["x"],
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(USER_SCHEMA), record)
    event = Event.new(
        "eventfn.user.updated.v1",
        "/tests",
        buffer.getvalue(),
        datacontenttype="application/avro",
        extensions={"partitionkey": "u1"},
    )
    response = post(build(app), event, mode)
    assert response.status_code == 204, response.get_data(as_text=True)
    decoded = seen[0]
    assert isinstance(decoded, dict) and decoded["user_id"] == "u1" and decoded["version"] == 3


def test_readiness_fails_while_the_database_is_unreachable(build: Build) -> None:
    app = App("needs-db")
    app.on("t.requested.v1")(lambda event, ctx: None)
    client = build(
        app,
        database_url="postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=1",
        auto_migrate=False,
    )
    response = client.get("/health/readiness")
    assert response.status_code == 503
    assert response.json is not None and response.json["checks"]["database"] is False
    assert client.get("/health/liveness").status_code == 200
    event_response = post(client, _event(), "binary")
    assert event_response.status_code == 503
    assert problem(event_response)["type"] == "urn:eventfn:problem:dependency-unavailable"


def test_emit_of_the_input_type_is_refused(build: Build, sink: Sink) -> None:
    app = App("looper")

    @app.on("t.requested.v1")
    def loop(event: Event, ctx: Context) -> None:
        ctx.emit("t.requested.v1", {"n": 2})

    response = post(build(app), _event(), "binary")
    assert response.status_code == 500
    assert sink.received == []


@pytest.mark.parametrize("mode", MODES)
def test_structured_and_binary_requests_reach_the_handler_identically(
    build: Build, mode: str
) -> None:
    seen: list[Event] = []
    app = App("recorder")
    app.on("t.requested.v1", idempotent=False)(lambda event, ctx: seen.append(event))
    client = build(app)
    event = Event.new("t.requested.v1", "/tests", {"n": 1}, subject="a b", extensions={"k": "v"})
    other = "structured" if mode == "binary" else "binary"
    headers, body = encode(event, mode)
    client.post("/", data=body, headers=headers)
    headers, body = encode(event, other)
    client.post("/", data=body, headers=headers)
    assert seen[0] == seen[1]
