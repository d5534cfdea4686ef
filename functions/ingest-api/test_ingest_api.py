"""ingest-api's event routes with valid tokens: events reach a loopback broker stand-in as
binary-mode CloudEvents (JSON and Avro), limits and validation answer problems, Idempotency-Key
gives stable ids, and /openapi.json is a valid OpenAPI 3.1 document (openapi-spec-validator).
Uploads: test_ingest_api_uploads.py."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import domain_testing as dt  # noqa: E402

KEY = dt.SigningKey.ec("ec-1")
ORDER, USER = dt.ORDER, dt.USER_UPDATED
SCOPES = f"events:write:{ORDER} events:write:{USER} events:write:eventfn.nothing.here.v1"
USER_DATA = {
    "user_id": "u-7",
    "email": "ada@example.com",
    "name": "Ada",
    "version": 3,
    "updated_at": 1_764_000_000_000,
    "tags": ["admin"],
}


@dataclass
class Api:
    client: Any
    sink: Any

    def token(self, scope: str = SCOPES, **claims: Any) -> dict[str, str]:
        return dt.bearer(KEY.sign(dt.claims(scope, **claims)))

    def post(self, event_type: str, data: Any, **headers: str) -> Any:
        return dt.post_json(self.client, event_type, data, **self.token(), **headers)


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dt.ingest_env(
        monkeypatch,
        INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "jwks.json", KEY)),
        INGEST_JWT_ISSUER=dt.ISSUER,
        INGEST_MAX_BODY_BYTES="4096",
    )


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    _env(tmp_path, monkeypatch)
    with ExitStack() as stack:
        sink = stack.enter_context(dt.sink_server())
        wsgi = stack.enter_context(dt.serve("ingest-api", dt.settings(tmp_path, sink)))
        yield Api(wsgi.test_client(), sink)


def test_a_valid_order_is_published_to_the_broker_in_binary_mode(api: Api) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = api.post(ORDER, {**dt.ORDER_DATA, "note": "kept"}, traceparent=traceparent)
    assert response.status_code == 202
    accepted = response.get_json()
    [(headers, body)] = api.sink.received
    assert headers["ce-type"] == ORDER and headers["ce-id"] == accepted["id"]
    assert headers["ce-source"] == "/eventfn/ingest-api" and headers["ce-specversion"] == "1.0"
    assert headers["ce-dataschema"] == f"urn:eventfn:schema:{ORDER}"
    assert headers["content-type"] == "application/json"
    assert headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "ce-partitionkey" not in headers
    assert json.loads(body) == {**dt.ORDER_DATA, "note": "kept"}
    assert accepted == {"id": accepted["id"], "type": ORDER}


def test_an_avro_body_is_validated_and_published_as_avro_with_a_partition_key(api: Api) -> None:
    schema = fastavro.parse_schema(json.loads((ROOT / "schemas" / f"{USER}.avsc").read_text()))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, USER_DATA)
    response = api.client.post(
        f"/v1/events/{USER}",
        data=buffer.getvalue(),
        headers={**api.token(), "content-type": "application/avro"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    [event] = api.sink.events()
    assert event.datacontenttype == "application/avro"
    assert event.extensions["partitionkey"] == "u-7"
    assert api.sink.received[0][1] == buffer.getvalue()


def test_a_json_body_for_an_avro_type_is_published_as_avro(api: Api) -> None:
    assert api.post(USER, USER_DATA).status_code == 202
    [(headers, body)] = api.sink.received
    assert headers["content-type"] == "application/avro"
    assert headers["ce-partitionkey"] == "u-7"
    schema = fastavro.parse_schema(json.loads((ROOT / "schemas" / f"{USER}.avsc").read_text()))
    decoded = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
    assert decoded["email"] == "ada@example.com" and decoded["version"] == 3


def test_bad_avro_is_422(api: Api) -> None:
    response = api.client.post(
        f"/v1/events/{USER}",
        data=b"\xff\xff\xff",
        headers={**api.token(), "content-type": "application/avro"},
    )
    assert response.status_code == 422
    assert dt.problem(response)["type"] == "urn:eventfn:problem:undecodable-data"


@pytest.mark.parametrize(
    ("event_type", "data", "content_type", "status", "code", "field"),
    [
        (
            ORDER,
            {"order_id": "o", "items": [{"sku": "A", "quantity": 0}]},
            "application/json",
            422,
            "schema-violation",
            "$.items[0].quantity",
        ),
        (
            ORDER,
            {"items": [{"sku": "A", "quantity": 1}]},
            "application/json",
            422,
            "schema-violation",
            "$.order_id",
        ),
        ("eventfn.nothing.here.v1", {}, "application/json", 404, "unknown-event-type", "type"),
        (ORDER, dt.ORDER_DATA, "text/plain", 415, "unsupported-content-type", "content-type"),
        (ORDER, dt.ORDER_DATA, "application/avro", 415, "unsupported-content-type", "content-type"),
    ],
    ids=["quantity-0", "no-order-id", "unknown-type", "text-plain", "avro-for-json-type"],
)
def test_invalid_requests_are_problems_naming_the_field(
    api: Api, event_type: str, data: Any, content_type: str, status: int, code: str, field: str
) -> None:
    response = api.client.post(
        f"/v1/events/{event_type}",
        data=json.dumps(data),
        headers={**api.token(), "content-type": content_type},
    )
    assert response.status_code == status
    body = dt.problem(response)
    assert body["type"] == f"urn:eventfn:problem:{code}" and body["field"] == field
    assert api.sink.received == []


@pytest.mark.parametrize(
    "body", [b'{"order_id": "o", "items": [', b'{"order_id": NaN}'], ids=["truncated", "NaN"]
)
def test_a_body_that_is_not_strict_json_is_400(api: Api, body: bytes) -> None:
    response = api.client.post(
        f"/v1/events/{ORDER}",
        data=body,
        headers={**api.token(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert dt.problem(response)["type"] == "urn:eventfn:problem:malformed-request"


def test_a_body_over_the_limit_is_413(api: Api) -> None:
    items = [{"sku": f"SKU-{i:04d}", "quantity": 1} for i in range(200)]
    response = api.post(ORDER, {"order_id": "big", "items": items})
    assert response.status_code == 413
    assert dt.problem(response)["type"] == "urn:eventfn:problem:payload-too-large"
    assert api.sink.received == []


def test_idempotency_key_gives_the_same_event_id_for_a_retried_post(api: Api) -> None:
    first = api.post(ORDER, dt.ORDER_DATA, **{"Idempotency-Key": "order-o-100-attempt"})
    retry = api.post(ORDER, dt.ORDER_DATA, **{"Idempotency-Key": "order-o-100-attempt"})
    other_key = api.post(ORDER, dt.ORDER_DATA, **{"Idempotency-Key": "another"})
    no_key = [api.post(ORDER, dt.ORDER_DATA) for _ in range(2)]
    other_subject = dt.post_json(
        api.client,
        ORDER,
        dt.ORDER_DATA,
        **api.token(sub="someone-else"),
        **{"Idempotency-Key": "order-o-100-attempt"},
    )
    ids = [r.get_json()["id"] for r in (first, retry, other_key, *no_key, other_subject)]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 5
    published = [event.id for event in api.sink.events()]
    assert published == ids  # the retry is published again, with the same id: consumers dedup


@pytest.mark.parametrize("key", ["", "a" * 256, "naïve", "with space"])
def test_an_invalid_idempotency_key_is_400(api: Api, key: str) -> None:
    response = api.post(ORDER, dt.ORDER_DATA, **{"Idempotency-Key": key})
    assert response.status_code == 400
    assert dt.problem(response)["type"] == "urn:eventfn:problem:invalid-idempotency-key"


def test_a_broker_that_refuses_the_event_is_a_retryable_503(api: Api) -> None:
    api.sink.statuses.extend([503])
    response = api.post(ORDER, dt.ORDER_DATA)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert dt.problem(response)["retryable"] is True


# -- OpenAPI -------------------------------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1_generated_from_the_registry(api: Api) -> None:
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"
    types = sorted(
        p.name.rsplit(".", 1)[0]
        for p in (ROOT / "schemas").iterdir()
        if p.suffix in (".json", ".avsc")
    )
    assert (
        sorted(
            p.removeprefix("/v1/events/") for p in document["paths"] if p.startswith("/v1/events/")
        )
        == types
    )
    operation = document["paths"][f"/v1/events/{ORDER}"]["post"]
    assert operation["security"] == [{"bearer": [f"events:write:{ORDER}"]}]
    schema = document["components"]["schemas"][ORDER]
    catalog = json.loads((ROOT / "schemas" / f"{ORDER}.json").read_text())
    assert schema == {k: v for k, v in catalog.items() if k != "$schema"}
    assert set(document["paths"][f"/v1/events/{USER}"]["post"]["requestBody"]["content"]) == {
        "application/json",
        "application/avro",
    }
    Draft202012Validator(document["components"]["schemas"][USER]).validate(USER_DATA)
    upload = document["paths"]["/v1/uploads/{prefix}"]["post"]
    assert upload["parameters"][0]["schema"]["enum"] == ["documents", "raw", "backup-logs", "logs"]
