"""Schema compatibility of Avro record changes: what is breaking, what is informational."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from schema_compat_testing import AVRO_BASE, TYPE, changed, summary

from eventfn._schema_compat import compare_avro_schemas


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema["fields"]  # type: ignore[no-any-return]


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in fields(schema) if f["name"] == name)


AVRO_CASES: list[tuple[str, Callable[[dict[str, Any]], object], set[tuple[str, bool]]]] = [
    (
        "field with default added",
        lambda s: fields(s).append({"name": "age", "type": ["null", "int"], "default": None}),
        {("$.age", False)},
    ),
    (
        "field with default removed",
        lambda s: fields(s).remove(field(s, "tags")),
        {("$.tags", False)},
    ),
    ("doc changed", lambda s: field(s, "email").update(doc="E-mail address."), set()),
    (
        "field without default added",
        lambda s: fields(s).append({"name": "age", "type": "int"}),
        {("$.age", True)},
    ),
    (
        "field without default removed",
        lambda s: fields(s).remove(field(s, "email")),
        {("$.email", True)},
    ),
    ("type changed", lambda s: field(s, "email").update(type="bytes"), {("$.email", True)}),
    (
        "array item type changed",
        lambda s: field(s, "tags").update(type={"type": "array", "items": "int"}),
        {("$.tags[*]", True)},
    ),
    (
        "logical type added",
        lambda s: field(s, "user_id").update(type={"type": "string", "logicalType": "uuid"}),
        {("$.user_id", True)},
    ),
    ("record renamed", lambda s: s.update(name="Person"), {("$", True)}),
]


@pytest.mark.parametrize(("label", "edit", "expected"), AVRO_CASES, ids=[c[0] for c in AVRO_CASES])
def test_avro_schema_changes(
    label: str, edit: Callable[[dict[str, Any]], object], expected: set[tuple[str, bool]]
) -> None:
    assert summary(compare_avro_schemas(TYPE, AVRO_BASE, changed(edit, AVRO_BASE))) == expected


def test_avro_enum_symbols() -> None:
    def with_enum(*symbols: str) -> dict[str, Any]:
        enum = {"type": "enum", "name": "Plan", "symbols": list(symbols)}
        return changed(lambda s: fields(s).append({"name": "plan", "type": enum}), AVRO_BASE)

    wider = compare_avro_schemas(TYPE, with_enum("FREE"), with_enum("FREE", "PRO"))
    narrower = compare_avro_schemas(TYPE, with_enum("FREE", "PRO"), with_enum("FREE"))
    assert (summary(wider), summary(narrower)) == ({("$.plan", False)}, {("$.plan", True)})
