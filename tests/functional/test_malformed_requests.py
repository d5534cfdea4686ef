"""A table of malformed requests: each gets the right 4xx and a problem body naming the field."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.test import Client

from eventfn import App, Event, create_app
from eventfn._tracing import Tracer

from .conftest import problem, settings_for

BASE = {
    "ce-specversion": "1.0",
    "ce-id": "evt-1",
    "ce-source": "/tests",
    "ce-type": "eventfn.echo.requested.v1",
    "content-type": "application/json",
}
GOOD_DATA = b'{"message": "hi"}'
STRUCTURED = "application/cloudevents+json"


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in BASE.items() if k != name}


def _structured(**changes: object) -> bytes:
    document: dict[str, object] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/tests",
        "type": "eventfn.echo.requested.v1",
        "datacontenttype": "application/json",
        "data": {"message": "hi"},
    }
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return json.dumps(document).encode()


def _drop(name: str) -> bytes:
    return _structured(**{name: None})


@dataclass(frozen=True)
class Case:
    name: str
    headers: dict[str, str]
    body: bytes
    status: int
    code: str
    field: str | None = None


CASES = [
    # binary mode
    Case(
        "binary missing specversion",
        _without("ce-specversion"),
        GOOD_DATA,
        400,
        "malformed-event",
        "specversion",
    ),
    Case("binary missing id", _without("ce-id"), GOOD_DATA, 400, "malformed-event", "id"),
    Case(
        "binary missing source", _without("ce-source"), GOOD_DATA, 400, "malformed-event", "source"
    ),
    Case("binary missing type", _without("ce-type"), GOOD_DATA, 400, "malformed-event", "type"),
    Case("binary empty id", {**BASE, "ce-id": ""}, GOOD_DATA, 400, "malformed-event", "id"),
    Case(
        "binary specversion 0.3",
        {**BASE, "ce-specversion": "0.3"},
        GOOD_DATA,
        400,
        "malformed-event",
        "specversion",
    ),
    Case(
        "binary specversion 2.0",
        {**BASE, "ce-specversion": "2.0"},
        GOOD_DATA,
        400,
        "malformed-event",
        "specversion",
    ),
    Case(
        "binary bad time",
        {**BASE, "ce-time": "yesterday"},
        GOOD_DATA,
        400,
        "malformed-event",
        "time",
    ),
    Case(
        "binary bad extension name",
        {**BASE, "ce-bad.name": "x"},
        GOOD_DATA,
        400,
        "malformed-event",
        "bad.name",
    ),
    Case("binary bad JSON data", BASE, b'{"message": ', 422, "undecodable-data", "data"),
    Case("binary data not UTF-8", BASE, b"\xff\xfe\x00", 422, "undecodable-data", "data"),
    Case(
        "binary missing required field",
        BASE,
        b'{"repeat": 2}',
        422,
        "schema-violation",
        "$.message",
    ),
    Case("binary wrong field type", BASE, b'{"message": 5}', 422, "schema-violation", "$.message"),
    Case(
        "binary field too long",
        BASE,
        json.dumps({"message": "x" * 1001}).encode(),
        422,
        "schema-violation",
        "$.message",
    ),
    Case(
        "binary repeat out of range",
        BASE,
        b'{"message": "a", "repeat": 99}',
        422,
        "schema-violation",
        "$.repeat",
    ),
    Case("binary data is an array", BASE, b"[1, 2]", 422, "schema-violation", "$"),
    Case("binary no data", BASE, b"", 422, "schema-violation", "$"),
    Case(
        "binary unknown type",
        {**BASE, "ce-type": "eventfn.nobody.v1"},
        GOOD_DATA,
        422,
        "unknown-event-type",
        "type",
    ),
    # neither mode
    Case(
        "no content type, no ce headers",
        {},
        GOOD_DATA,
        415,
        "unsupported-content-type",
        "content-type",
    ),
    Case(
        "plain JSON without ce headers",
        {"content-type": "application/json"},
        GOOD_DATA,
        415,
        "unsupported-content-type",
        "content-type",
    ),
    Case(
        "batch mode",
        {"content-type": "application/cloudevents-batch+json"},
        b"[]",
        415,
        "unsupported-content-type",
        "content-type",
    ),
    # structured mode
    Case("structured bad JSON", {"content-type": STRUCTURED}, b"{nope", 400, "malformed-event"),
    Case("structured array body", {"content-type": STRUCTURED}, b"[]", 400, "malformed-event"),
    Case(
        "structured missing specversion",
        {"content-type": STRUCTURED},
        _drop("specversion"),
        400,
        "malformed-event",
        "specversion",
    ),
    Case(
        "structured missing id",
        {"content-type": STRUCTURED},
        _drop("id"),
        400,
        "malformed-event",
        "id",
    ),
    Case(
        "structured missing source",
        {"content-type": STRUCTURED},
        _drop("source"),
        400,
        "malformed-event",
        "source",
    ),
    Case(
        "structured missing type",
        {"content-type": STRUCTURED},
        _drop("type"),
        400,
        "malformed-event",
        "type",
    ),
    Case(
        "structured numeric id",
        {"content-type": STRUCTURED},
        _structured(id=7),
        400,
        "malformed-event",
        "id",
    ),
    Case(
        "structured specversion 0.3",
        {"content-type": STRUCTURED},
        _structured(specversion="0.3"),
        400,
        "malformed-event",
        "specversion",
    ),
    Case(
        "structured bad time",
        {"content-type": STRUCTURED},
        _structured(time="noon"),
        400,
        "malformed-event",
        "time",
    ),
    Case(
        "structured bad base64",
        {"content-type": STRUCTURED},
        _structured(data=None, data_base64="***"),
        400,
        "malformed-event",
        "data_base64",
    ),
    Case(
        "structured schema violation",
        {"content-type": STRUCTURED},
        _structured(data={"message": ""}),
        422,
        "schema-violation",
        "$.message",
    ),
    Case(
        "structured unknown type",
        {"content-type": STRUCTURED},
        _structured(type="eventfn.nobody.v1"),
        422,
        "unknown-event-type",
        "type",
    ),
    Case(
        "structured data null",
        {"content-type": STRUCTURED},
        _structured(data=None),
        422,
        "schema-violation",
        "$",
    ),
]


@pytest.fixture
def wsgi_client(tmp_path: Path) -> Iterator[Client]:
    wsgi = create_app(
        "echo",
        settings=settings_for(tmp_path, None, max_body_bytes=64 * 1024),
        tracer=Tracer("echo", enabled=False),
        env={},
    )
    yield wsgi.test_client()
    wsgi.close()


def test_table_has_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_request(wsgi_client: Client, case: Case) -> None:
    response = wsgi_client.post("/", data=case.body, headers=case.headers)
    assert response.status_code == case.status, response.get_data(as_text=True)
    body = problem(response)
    assert body["type"] == f"urn:eventfn:problem:{case.code}"
    assert body["status"] == case.status
    assert body["retryable"] is False
    if case.field is not None:
        assert body.get("field") == case.field
    text = json.dumps(body)
    assert "Traceback" not in text and "Error(" not in text


def test_oversized_body_is_refused_before_reading(wsgi_client: Client) -> None:
    response = wsgi_client.post("/", data=b"x" * (64 * 1024 + 1), headers=BASE)
    assert response.status_code == 413
    assert problem(response)["type"] == "urn:eventfn:problem:payload-too-large"


def test_unknown_type_names_the_handlers_that_exist(wsgi_client: Client) -> None:
    response = wsgi_client.post("/", data=GOOD_DATA, headers={**BASE, "ce-type": "x.y.v1"})
    assert "eventfn.echo.requested.v1" in str(problem(response)["detail"])


def test_bad_avro_is_undecodable(tmp_path: Path) -> None:
    app = App("avro-probe")

    @app.on("eventfn.user.updated.v1", idempotent=False)
    def take(event: Event, ctx: object) -> None:
        return None

    wsgi = create_app(app, settings=settings_for(tmp_path, None), env={})
    client = wsgi.test_client()
    headers = {
        **BASE,
        "ce-type": "eventfn.user.updated.v1",
        "content-type": "application/avro",
    }
    response = client.post("/", data=b"\x07\xff\xff", headers=headers)
    assert response.status_code == 422
    assert problem(response)["type"] == "urn:eventfn:problem:undecodable-data"
    structured = json.dumps(
        {
            "specversion": "1.0",
            "id": "a1",
            "source": "/tests",
            "type": "eventfn.user.updated.v1",
            "datacontenttype": "application/avro",
            "data_base64": base64.b64encode(b"\x07\xff\xff").decode(),
        }
    ).encode()
    response = client.post("/", data=structured, headers={"content-type": STRUCTURED})
    assert response.status_code == 422
    wsgi.close()
