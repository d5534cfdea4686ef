"""Loading a schema directory: invalid files are named with their reason, what is ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from schema_testing import write

from eventfn._errors import ConfigurationError
from eventfn._schemas import JSON_SCHEMA_DIALECT, SchemaRegistry

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
