"""The checked-in schema catalog: every file is a valid schema, its types, contracts, ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from jsonschema import Draft202012Validator
from schema_testing import JSON_CT, REPO_SCHEMAS

from eventfn._errors import SchemaViolation
from eventfn._schemas import JSON_SCHEMA_DIALECT, SchemaRegistry, schema_paths


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
