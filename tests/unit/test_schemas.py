"""The schema registry: loading the catalog, validating and (de)serialising event data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from jsonschema import Draft202012Validator

from eventfn._errors import (
    ConfigurationError,
    SchemaViolation,
    UndecodableData,
    UnsupportedContentType,
)
from eventfn._schemas import JSON_SCHEMA_DIALECT, SchemaRegistry, schema_paths

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
JSON_CT = "application/json"
AVRO_CT = "application/avro"

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
USER: dict[str, Any] = {
    "user_id": "u-1",
    "email": "ada@example.org",
    "name": "Ada",
    "version": 3,
    "updated_at": 1_700_000_000_000,
}
USER_TIME = datetime.fromtimestamp(1_700_000_000, tz=UTC)


def write(directory: Path, name: str, document: object) -> Path:
    path = directory / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


@pytest.fixture(scope="module")
def repo_registry() -> SchemaRegistry:
    return SchemaRegistry.from_directory(REPO_SCHEMAS)


@pytest.fixture
def orders(tmp_path: Path) -> SchemaRegistry:
    write(tmp_path, "shop.order.placed.v1.json", ORDER_SCHEMA)
    return SchemaRegistry.from_directory(tmp_path)


# --- the checked-in catalog -------------------------------------------------------------------


@pytest.mark.parametrize("path", schema_paths(REPO_SCHEMAS), ids=lambda p: p.name)
def test_every_catalog_file_is_a_valid_schema(path: Path) -> None:
    document = json.loads(path.read_text())
    if path.suffix == ".json":
        assert document["$schema"] == JSON_SCHEMA_DIALECT
        Draft202012Validator.check_schema(document)
        assert document.get("additionalProperties", True) is not False
        for name, prop in document["properties"].items():
            assert prop.get("description"), f"{path.name}: {name} has no description"
    else:
        parsed = fastavro.parse_schema(document)
        assert parsed["type"] == "record"


def test_catalog_loads_with_the_issue_types(repo_registry: SchemaRegistry) -> None:
    expected = {
        "eventfn.echo.requested.v1",
        "eventfn.echo.replied.v1",
        "eventfn.echo.recorded.v1",
        "eventfn.storage.object.created.v1",
        "eventfn.user.created.v1",
        "eventfn.user.updated.v1",
    }
    assert expected <= set(repo_registry.types())
    assert repo_registry.types() == sorted(repo_registry.types())


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("eventfn.echo.requested.v1", {"message": "hi", "repeat": 3}, None),
        ("eventfn.echo.requested.v1", {"message": "hi", "extra": True}, None),
        ("eventfn.echo.requested.v1", {"message": ""}, "$.message"),
        ("eventfn.echo.requested.v1", {"message": "x" * 1001}, "$.message"),
        ("eventfn.echo.requested.v1", {"message": "hi", "repeat": 11}, "$.repeat"),
        ("eventfn.echo.requested.v1", {"repeat": 1}, "$.message"),
        (
            "eventfn.echo.replied.v1",
            {"message": "a", "length": 1, "received_at": "now"},
            "$.received_at",
        ),
        (
            "eventfn.echo.replied.v1",
            {"message": "a", "length": -1, "received_at": "2024-01-01T00:00:00Z"},
            "$.length",
        ),
        (
            "eventfn.echo.replied.v1",
            {"message": "a", "length": 1, "received_at": "2024-01-01T00:00:00+02:00"},
            None,
        ),
        ("eventfn.echo.recorded.v1", {"message_id": "m", "source_event": "e"}, None),
        ("eventfn.echo.recorded.v1", {"message_id": "m"}, "$.source_event"),
        (
            "eventfn.storage.object.created.v1",
            {"bucket": "b", "key": "k", "size": 0, "version_id": None},
            None,
        ),
        ("eventfn.storage.object.created.v1", {"bucket": "b", "key": "k", "size": "1"}, "$.size"),
        (
            "eventfn.storage.object.created.v1",
            {"bucket": "b", "key": "k", "size": 1, "version_id": 2},
            "$.version_id",
        ),
    ],
)
def test_catalog_json_contracts(
    repo_registry: SchemaRegistry, event_type: str, data: dict[str, Any], field: str | None
) -> None:
    if field is None:
        assert repo_registry.decode(event_type, data, JSON_CT) == data
    else:
        with pytest.raises(SchemaViolation) as caught:
            repo_registry.decode(event_type, data, JSON_CT)
        assert caught.value.field == field


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("eventfn.echo.requested.v1", "urn:eventfn:schema:eventfn.echo.requested.v1"),
        ("eventfn.user.created.v1", "urn:eventfn:schema:eventfn.user.User"),
        ("eventfn.user.updated.v1", "urn:eventfn:schema:eventfn.user.User"),
        ("eventfn.not.registered.v1", None),
    ],
)
def test_dataschema_of_catalog_types(
    repo_registry: SchemaRegistry, event_type: str, expected: str | None
) -> None:
    assert repo_registry.dataschema(event_type) == expected
    assert repo_registry.has(event_type) is (expected is not None)


def test_is_avro(repo_registry: SchemaRegistry) -> None:
    assert repo_registry.is_avro("eventfn.user.created.v1")
    assert not repo_registry.is_avro("eventfn.echo.requested.v1")
    assert not repo_registry.is_avro("eventfn.not.registered.v1")


# --- JSON Schema validation -------------------------------------------------------------------


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


# --- Avro -------------------------------------------------------------------------------------


def test_avro_round_trip(repo_registry: SchemaRegistry) -> None:
    body, content_type = repo_registry.encode("eventfn.user.created.v1", USER, AVRO_CT)
    assert content_type == AVRO_CT
    decoded = repo_registry.decode("eventfn.user.updated.v1", body, AVRO_CT)
    assert decoded == {**USER, "updated_at": USER_TIME, "tags": []}


def test_avro_encode_accepts_datetimes_and_tags(repo_registry: SchemaRegistry) -> None:
    user = {**USER, "updated_at": USER_TIME, "tags": ["vip"]}
    body, _ = repo_registry.encode("eventfn.user.updated.v1", user, AVRO_CT)
    assert repo_registry.decode("eventfn.user.updated.v1", body, AVRO_CT) == user


def test_avro_type_as_json_reads_like_avro(repo_registry: SchemaRegistry) -> None:
    expected = {**USER, "updated_at": USER_TIME, "tags": []}
    for data in (USER, json.dumps(USER).encode(), json.dumps(USER)):
        assert repo_registry.decode("eventfn.user.created.v1", data, JSON_CT) == expected


def test_avro_type_encoded_as_json(repo_registry: SchemaRegistry) -> None:
    user = {**USER, "updated_at": USER_TIME}
    body, content_type = repo_registry.encode("eventfn.user.created.v1", user, None)
    assert content_type == JSON_CT
    assert json.loads(body) == {**USER, "tags": []}


@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        ({**USER, "email": 5}, "$.email", "must be of Avro type string"),
        (
            {k: v for k, v in USER.items() if k != "name"},
            "$.name",
            "is missing or null, expected string",
        ),
        ({**USER, "version": "3"}, "$.version", "must be of Avro type long"),
        (
            {**USER, "updated_at": "yesterday"},
            "$.updated_at",
            "must be of Avro type timestamp-millis",
        ),
        ({**USER, "tags": ["ok", 1]}, "$.tags", "must be of Avro type string"),
        (["not", "a", "record"], "$", "must be of Avro type eventfn.user.User"),
    ],
)
def test_avro_violations(
    repo_registry: SchemaRegistry, data: object, field: str, detail: str
) -> None:
    for operation in (
        lambda: repo_registry.decode("eventfn.user.created.v1", data, JSON_CT),
        lambda: repo_registry.encode("eventfn.user.created.v1", data, AVRO_CT),
    ):
        with pytest.raises(SchemaViolation) as caught:
            operation()
        assert (caught.value.field, caught.value.detail) == (field, detail)


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage bytes that are not avro", b"\x02\xff\xfe", b"\xff" * 12],
    ids=["empty", "text", "bad-utf8", "huge-varint"],
)
def test_garbage_avro_is_undecodable(repo_registry: SchemaRegistry, body: bytes) -> None:
    with pytest.raises(UndecodableData):
        repo_registry.decode("eventfn.user.created.v1", body, AVRO_CT)


def test_trailing_bytes_after_an_avro_record_are_undecodable(repo_registry: SchemaRegistry) -> None:
    body, _ = repo_registry.encode("eventfn.user.created.v1", USER, AVRO_CT)
    with pytest.raises(UndecodableData):
        repo_registry.decode("eventfn.user.created.v1", body + b"\x00", AVRO_CT)


def test_avro_type_refuses_other_content_types(repo_registry: SchemaRegistry) -> None:
    with pytest.raises(UnsupportedContentType):
        repo_registry.decode("eventfn.user.created.v1", b"x", "text/plain")
    with pytest.raises(UnsupportedContentType):
        repo_registry.encode("eventfn.user.created.v1", USER, "text/csv")


# --- loading errors ---------------------------------------------------------------------------

GOOD_JSON = {"$schema": JSON_SCHEMA_DIALECT, "type": "object"}
GOOD_AVRO = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}


@pytest.mark.parametrize(
    ("name", "document", "message"),
    [
        ("shop.order.placed.json", GOOD_JSON, "file name must be the event type"),
        ("Shop.Order.v1.json", GOOD_JSON, "file name must be the event type"),
        ("shop.order.v1.json", "{not json", "not a readable JSON document"),
        ("shop.order.v1.json", {"type": "object"}, "'$schema' must be"),
        (
            "shop.order.v1.json",
            {**GOOD_JSON, "$schema": "http://json-schema.org/draft-07/schema#"},
            "'$schema' must be",
        ),
        ("shop.order.v1.json", {**GOOD_JSON, "type": "thing"}, "invalid JSON Schema at type"),
        (
            "shop.order.v1.json",
            {**GOOD_JSON, "properties": {"a": {"minLength": -1}}},
            "invalid JSON Schema at properties/a/minLength",
        ),
        ("shop.order.v1.json", [1], "must hold a JSON object"),
        ("shop.order.v1.avsc", {"type": "record", "fields": []}, "invalid Avro schema"),
        ("shop.order.v1.avsc", {"type": "record", "name": "R"}, "must be a record with fields"),
        (
            "shop.order.v1.avsc",
            {**GOOD_AVRO, "fields": [{"name": "a", "type": "nope"}]},
            "invalid Avro schema",
        ),
        ("shop.order.v1.avsc", "string", "must be a record"),
    ],
)
def test_invalid_schema_files_are_named(
    tmp_path: Path, name: str, document: object, message: str
) -> None:
    if name.endswith(".avsc") and document == "string":
        document = '"string"'
    path = write(tmp_path, name, document)
    with pytest.raises(ConfigurationError) as caught:
        SchemaRegistry.from_directory(tmp_path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_duplicate_event_type_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "shop.order.v1.json", GOOD_JSON)
    write(tmp_path, "shop.order.v1.avsc", GOOD_AVRO)
    with pytest.raises(ConfigurationError, match="already defined by"):
        SchemaRegistry.from_directory(tmp_path)


def test_duplicate_id_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "shop.a.v1.json", {**GOOD_JSON, "$id": "urn:same"})
    write(tmp_path, "shop.b.v1.json", {**GOOD_JSON, "$id": "urn:same"})
    with pytest.raises(ConfigurationError, match="already used"):
        SchemaRegistry.from_directory(tmp_path)


def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SchemaRegistry.from_directory(tmp_path / "absent")


def test_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# catalog")
    write(tmp_path, "shop.order.v1.json", GOOD_JSON)
    assert SchemaRegistry.from_directory(tmp_path).types() == ["shop.order.v1"]


def test_empty_registry() -> None:
    registry = SchemaRegistry.empty()
    assert registry.types() == []
    assert registry.dataschema("x.v1") is None


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2024-06-01T12:30:00Z", True),
        ("2024-06-01t12:30:00.123456z", True),
        ("2024-06-01T12:30:00-05:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2024-06-01T12:30:61Z", False),
        ("2024-06-01T24:00:00Z", False),
        ("2024-06-01T12:30:00+24:00", False),
        ("2024-06-01T12:30:00", False),
        ("2023-02-29T00:00:00Z", False),
        ("2024-06-01", False),
    ],
)
def test_date_time_format(repo_registry: SchemaRegistry, value: str, valid: bool) -> None:
    data = {"message": "a", "length": 1, "received_at": value}
    if valid:
        assert repo_registry.decode("eventfn.echo.replied.v1", data, JSON_CT) == data
    else:
        with pytest.raises(SchemaViolation, match="date-time"):
            repo_registry.decode("eventfn.echo.replied.v1", data, JSON_CT)
