"""The schema registry with JSON Schema: violations and their path, raw data, encoding, $ref."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from schema_testing import AVRO_CT, JSON_CT, write

from eventfn._errors import SchemaViolation, UndecodableData, UnsupportedContentType
from eventfn._schemas import JSON_SCHEMA_DIALECT, SchemaRegistry

ORDER_SCHEMA: dict[str, Any] = {
    "$schema": JSON_SCHEMA_DIALECT,
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "description": "Order identifier."},
        "status": {"enum": ["open", "closed"], "description": "Order status."},
        "customer": {
            "type": "object",
            "properties": {"email": {"type": "string", "pattern": "@"}},
            "required": ["email"],
            "description": "Who ordered.",
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "description": "Order lines.",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                },
                "required": ["sku", "quantity"],
            },
        },
        "odd name": {"type": "string", "description": "A key that needs brackets."},
        "placed_at": {"type": "string", "format": "date-time", "description": "When."},
    },
    "required": ["order_id", "items"],
}
VALID_ORDER: dict[str, Any] = {"order_id": "o-1", "items": [{"sku": "a", "quantity": 2}]}


@pytest.fixture
def orders(tmp_path: Path) -> SchemaRegistry:
    write(tmp_path, "shop.order.placed.v1.json", ORDER_SCHEMA)
    return SchemaRegistry.from_directory(tmp_path)


@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        (
            {"items": [{"sku": "a", "quantity": 1}]},
            "$.order_id",
            "'order_id' is a required property",
        ),
        ({**VALID_ORDER, "order_id": 7}, "$.order_id", "must be of type string"),
        ({**VALID_ORDER, "items": []}, "$.items", "must have at least 1 items"),
        (
            {**VALID_ORDER, "items": [{"sku": "a", "quantity": 1}, {"sku": "b"}]},
            "$.items[1].quantity",
            "'quantity' is a required property",
        ),
        (
            {**VALID_ORDER, "items": [{"sku": "a", "quantity": 0}]},
            "$.items[0].quantity",
            "must be greater than or equal to 1",
        ),
        ({**VALID_ORDER, "status": "lost"}, "$.status", 'must be one of ["open", "closed"]'),
        ({**VALID_ORDER, "customer": {}}, "$.customer.email", "'email' is a required property"),
        (
            {**VALID_ORDER, "customer": {"email": "nobody"}},
            "$.customer.email",
            'must match the pattern "@"',
        ),
        ({**VALID_ORDER, "odd name": 1}, "$['odd name']", "must be of type string"),
        (
            {**VALID_ORDER, "placed_at": "2024-02-30T10:00:00Z"},
            "$.placed_at",
            "must be a valid date-time",
        ),
        (
            {**VALID_ORDER, "placed_at": "2024-02-03 10:00:00Z"},
            "$.placed_at",
            "must be a valid date-time",
        ),
        (["not", "an", "object"], "$", "must be of type object"),
    ],
)
def test_json_violation_reports_path_and_detail(
    orders: SchemaRegistry, data: object, field: str, detail: str
) -> None:
    with pytest.raises(SchemaViolation) as caught:
        orders.decode("shop.order.placed.v1", data, JSON_CT)
    assert (caught.value.field, caught.value.detail) == (field, detail)
    assert caught.value.status == 422


def test_violation_detail_never_echoes_the_data(orders: SchemaRegistry) -> None:
    secret = "s3cr3t-value"
    with pytest.raises(SchemaViolation) as caught:
        orders.decode("shop.order.placed.v1", {**VALID_ORDER, "order_id": [secret]}, JSON_CT)
    assert secret not in json.dumps(caught.value.problem())


def test_most_relevant_error_is_reported_deterministically(orders: SchemaRegistry) -> None:
    data = {"order_id": 1, "items": [{"sku": 2, "quantity": "x"}]}
    fields = set()
    for _ in range(3):
        with pytest.raises(SchemaViolation) as caught:
            orders.decode("shop.order.placed.v1", data, JSON_CT)
        fields.add(caught.value.field)
    assert fields == {"$.order_id"}


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (VALID_ORDER, JSON_CT, VALID_ORDER),
        (json.dumps(VALID_ORDER).encode(), JSON_CT, VALID_ORDER),
        (json.dumps(VALID_ORDER).encode(), None, VALID_ORDER),
        (bytearray(json.dumps(VALID_ORDER).encode()), "application/vnd.shop+json", VALID_ORDER),
        (json.dumps(VALID_ORDER), "application/json; charset=utf-8", VALID_ORDER),
    ],
)
def test_json_data_is_parsed_when_raw(
    orders: SchemaRegistry, data: object, content_type: str | None, expected: object
) -> None:
    assert orders.decode("shop.order.placed.v1", data, content_type) == expected


def test_parsed_data_is_returned_as_is(orders: SchemaRegistry) -> None:
    data = dict(VALID_ORDER)
    assert orders.decode("shop.order.placed.v1", data, JSON_CT) is data


@pytest.mark.parametrize("body", [b'{"order_id": ', b"\xff\xfe", b""])
def test_bad_json_bytes_are_undecodable(orders: SchemaRegistry, body: bytes) -> None:
    with pytest.raises(UndecodableData):
        orders.decode("shop.order.placed.v1", body, JSON_CT)


def test_non_json_bytes_for_a_json_schema_are_refused(orders: SchemaRegistry) -> None:
    with pytest.raises(UnsupportedContentType):
        orders.decode("shop.order.placed.v1", b"<xml/>", "application/xml")


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (b'{"a": 1}', JSON_CT, {"a": 1}),
        (b"\x00\x01", "application/octet-stream", b"\x00\x01"),
        ({"a": 1}, JSON_CT, {"a": 1}),
        ("plain text", "text/plain", "plain text"),
    ],
)
def test_unregistered_types_pass_through(
    orders: SchemaRegistry, data: object, content_type: str, expected: object
) -> None:
    assert orders.decode("shop.unknown.v1", data, content_type) == expected


def test_unregistered_bad_json_is_still_undecodable() -> None:
    with pytest.raises(UndecodableData):
        SchemaRegistry.empty().decode("x.v1", b"{", JSON_CT)


def test_encode_json_is_compact_utf8(orders: SchemaRegistry) -> None:
    data = {**VALID_ORDER, "odd name": "café"}
    body, content_type = orders.encode("shop.order.placed.v1", data, None)
    assert content_type == JSON_CT
    assert body == json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"order_id": "o-1"}, SchemaViolation),
        ({**VALID_ORDER, "placed_at": datetime.now(tz=UTC)}, SchemaViolation),
        (b"{not json", SchemaViolation),
    ],
)
def test_encode_rejects_invalid_outgoing_data(
    orders: SchemaRegistry, data: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        orders.encode("shop.order.placed.v1", data, JSON_CT)


def test_encode_refuses_avro_for_a_json_schema(orders: SchemaRegistry) -> None:
    with pytest.raises(UnsupportedContentType):
        orders.encode("shop.order.placed.v1", VALID_ORDER, AVRO_CT)


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        ({"a": 1}, None, (b'{"a":1}', JSON_CT)),
        (b"\x00", None, (b"\x00", "application/octet-stream")),
        ("hi", "text/plain", (b"hi", "text/plain")),
    ],
)
def test_encode_unregistered(data: object, content_type: str | None, expected: object) -> None:
    assert SchemaRegistry.empty().encode("x.v1", data, content_type) == expected


def test_schemas_reference_each_other_by_id(tmp_path: Path) -> None:
    common = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": "urn:shop:money",
        "type": "object",
        "properties": {"cents": {"type": "integer"}},
        "required": ["cents"],
    }
    paid = {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": {"amount": {"$ref": "urn:shop:money"}},
    }
    write(tmp_path, "shop.money.v1.json", common)
    write(tmp_path, "shop.order.paid.v1.json", paid)
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.dataschema("shop.money.v1") == "urn:shop:money"
    assert registry.dataschema("shop.order.paid.v1") == "urn:eventfn:schema:shop.order.paid.v1"
    with pytest.raises(SchemaViolation) as caught:
        registry.decode("shop.order.paid.v1", {"amount": {"cents": "1"}}, JSON_CT)
    assert caught.value.field == "$.amount.cents"
