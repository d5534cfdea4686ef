"""Catch-all registrations (`App.on_any`) and handlers that skip schema validation
(`validate=False`), as a dead-letter sink needs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from eventfn import App, Context, Event, RegistrationError, Settings, UnknownEventType, create_app
from eventfn._app import ANY_TYPE
from eventfn._codec import encode_binary
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]
CREATED = "eventfn.storage.object.created.v1"  # has a schema in schemas/


def _noop(event: Event, ctx: object) -> None:
    return None


def test_the_catch_all_takes_types_without_their_own_handler() -> None:
    app = App("f")
    exact = app.on("a.v1")(lambda e, c: "exact")
    fallback = app.on_any()(lambda e, c: "any")
    assert app.match(Event.new("a.v1", "/s")).func is exact
    assert app.match(Event.new("b.v1", "/s")).func is fallback
    assert app.event_types == {"a.v1"} and app.accepts_any_type


def test_an_exact_handler_with_a_prefix_falls_back_to_the_catch_all() -> None:
    app = App("f")
    docs = app.on("a.v1", subject_prefix="documents/")(lambda e, c: "docs")
    fallback = app.on_any()(lambda e, c: "any")
    assert app.match(Event.new("a.v1", "/s", subject="documents/x")).func is docs
    assert app.match(Event.new("a.v1", "/s", subject="logs/x")).func is fallback


def test_catch_all_with_a_subject_prefix_only_takes_that_prefix() -> None:
    app = App("f")
    app.on_any(subject_prefix="documents/")(_noop)
    assert app.match(Event.new("z.v1", "/s", subject="documents/x")).event_type == ANY_TYPE
    with pytest.raises(UnknownEventType, match="any type \\(subject documents/\\*\\)"):
        app.match(Event.new("z.v1", "/s", subject="logs/x"))


def test_a_catch_all_cannot_declare_a_reply_type() -> None:
    app = App("f")
    with pytest.raises(RegistrationError, match="catch-all"):
        app.on(ANY_TYPE, reply_type="x.replied.v1")(_noop)


def test_only_one_catch_all_per_subject_prefix() -> None:
    app = App("f")
    app.on_any()(_noop)
    with pytest.raises(RegistrationError, match="already registered"):
        app.on_any()(_noop)
    app.on_any(subject_prefix="documents/")(_noop)


def test_validate_flag_is_recorded() -> None:
    app = App("f")
    app.on("a.v1", validate=False)(_noop)
    app.on_any(validate=False, idempotent=False)(_noop)
    app.on("b.v1")(_noop)
    assert [h.validate for h in app.handlers] == [False, False, True]


# -- the pipeline honours validate=False --------------------------------------------------------


def _client(tmp_path: Path, app: App) -> Iterator[Client]:
    settings = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state",
        idempotency=False,
    )
    wsgi = create_app(app, settings=settings, tracer=Tracer(app.name, enabled=False), env={})
    try:
        yield wsgi.test_client()
    finally:
        wsgi.close()


@pytest.fixture
def seen() -> list[Any]:
    return []


@pytest.fixture
def client(tmp_path: Path, seen: list[Any]) -> Iterator[Client]:
    app = App("sink")

    @app.on(CREATED, subject_prefix="checked/")
    def checked(event: Event, ctx: Context) -> None:
        seen.append(("checked", event.data))

    @app.on_any(validate=False)
    def anything(event: Event, ctx: Context) -> None:
        seen.append(("any", event.data))

    yield from _client(tmp_path, app)


def _post(client: Client, event: Event, body: bytes | None = None) -> Any:
    headers, encoded = encode_binary(event)
    return client.post("/", data=encoded if body is None else body, headers=headers)


def test_schema_invalid_data_reaches_an_unvalidated_handler(
    client: Client, seen: list[Any]
) -> None:
    invalid = {"bucket": 7}
    event = Event.new(CREATED, "s3://b", invalid, subject="other/x")
    assert _post(client, event).status_code == 204
    assert seen == [("any", invalid)]


def test_validated_handlers_still_refuse_invalid_data(client: Client, seen: list[Any]) -> None:
    event = Event.new(CREATED, "s3://b", {"bucket": 7}, subject="checked/x")
    response = _post(client, event)
    assert response.status_code == 422
    assert json.loads(response.get_data())["type"] == "urn:eventfn:problem:schema-violation"
    assert seen == []


def test_unparseable_json_reaches_an_unvalidated_handler_as_bytes(
    client: Client, seen: list[Any]
) -> None:
    event = Event.new(CREATED, "s3://b", {"x": 1}, subject="other/x")
    assert _post(client, event, b'{"broken": ').status_code == 204
    assert seen == [("any", b'{"broken": ')]


def test_unparseable_json_for_a_validated_handler_is_still_422(
    client: Client, seen: list[Any]
) -> None:
    event = Event.new(CREATED, "s3://b", {"x": 1}, subject="checked/x")
    response = _post(client, event, b'{"broken": ')
    assert response.status_code == 422
    assert json.loads(response.get_data())["type"] == "urn:eventfn:problem:undecodable-data"
    assert seen == []


def test_an_app_without_unvalidated_handlers_refuses_unparseable_json(tmp_path: Path) -> None:
    app = App("strict")
    app.on_any()(_noop)
    for client in _client(tmp_path, app):
        response = _post(client, Event.new("z.v1", "/s", {"x": 1}), b"{")
        assert response.status_code == 422


def test_a_catch_all_handler_cannot_emit_the_type_it_handles(tmp_path: Path) -> None:
    app = App("echoing")

    @app.on_any(validate=False)
    def echo(event: Event, ctx: Context) -> None:
        ctx.emit(event.type, {"again": True})

    for client in _client(tmp_path, app):
        assert _post(client, Event.new("z.v1", "/s", {"x": 1})).status_code == 500
