"""Shared by the schema compatibility tests: a base JSON Schema and Avro record, edits of them,
the table of JSON Schema changes and whether each breaks consumers.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventfn._schema_compat import Finding
from eventfn._schemas import JSON_SCHEMA_DIALECT

TYPE = "shop.order.placed.v1"

BASE: dict[str, Any] = {
    "$schema": JSON_SCHEMA_DIALECT,
    "type": "object",
    "description": "An order was placed.",
    "properties": {
        "order_id": {"type": "string", "description": "Order id."},
        "status": {"enum": ["open", "paid", "closed"], "description": "Status."},
        "note": {"type": "string", "maxLength": 100, "description": "Free text."},
        "items": {
            "type": "array",
            "description": "Lines.",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["sku", "quantity"],
            },
        },
    },
    "required": ["order_id", "items"],
}

AVRO_BASE: dict[str, Any] = {
    "type": "record",
    "name": "User",
    "namespace": "eventfn.user",
    "fields": [
        {"name": "user_id", "type": "string"},
        {"name": "email", "type": "string", "doc": "Address."},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}


def changed(
    edit: Callable[[dict[str, Any]], object], base: dict[str, Any] = BASE
) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    edit(schema)
    return schema


def props(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["properties"]  # type: ignore[no-any-return]


def item_props(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["properties"]["items"]["items"]["properties"]  # type: ignore[no-any-return]


def summary(findings: list[Finding]) -> set[tuple[str, bool]]:
    return {(f.path, f.breaking) for f in findings}


JSON_CASES: list[tuple[str, Callable[[dict[str, Any]], object], set[tuple[str, bool]]]] = [
    (
        "added optional field",
        lambda s: props(s).update(channel={"type": "string"}),
        {("$.channel", False)},
    ),
    ("description changed", lambda s: s.update(description="Placed."), {("$", False)}),
    ("enum widened", lambda s: props(s)["status"]["enum"].append("void"), {("$.status", False)}),
    ("maxLength relaxed", lambda s: props(s)["note"].update(maxLength=200), {("$.note", False)}),
    ("optional field removed", lambda s: props(s).pop("note"), {("$.note", False)}),
    ("closed object opened", lambda s: s.update(additionalProperties=True), set()),
    (
        "removed required field",
        lambda s: (props(s).pop("order_id"), s["required"].remove("order_id")),
        {("$.order_id", True)},
    ),
    ("type changed", lambda s: props(s)["order_id"].update(type="integer"), {("$.order_id", True)}),
    ("type narrowed", lambda s: props(s)["note"].update(type="null"), {("$.note", True)}),
    (
        "new required field",
        lambda s: (props(s).update(currency={"type": "string"}), s["required"].append("currency")),
        {("$.currency", True)},
    ),
    ("optional became required", lambda s: s["required"].append("note"), {("$.note", True)}),
    (
        "required became optional",
        lambda s: s["required"].remove("order_id"),
        {("$.order_id", True)},
    ),
    ("enum narrowed", lambda s: props(s)["status"]["enum"].remove("paid"), {("$.status", True)}),
    ("enum introduced", lambda s: props(s)["note"].update(enum=["a"]), {("$.note", True)}),
    ("maxLength narrowed", lambda s: props(s)["note"].update(maxLength=10), {("$.note", True)}),
    (
        "minimum added",
        lambda s: item_props(s)["quantity"].update(minimum=1),
        {("$.items[*].quantity", True)},
    ),
    ("format added", lambda s: props(s)["note"].update(format="date-time"), {("$.note", True)}),
    (
        "additionalProperties true->false",
        lambda s: s.update(additionalProperties=False),
        {("$", True)},
    ),
    (
        "nested type change",
        lambda s: item_props(s)["quantity"].update(type="string"),
        {("$.items[*].quantity", True)},
    ),
    (
        "nested required removed",
        lambda s: s["properties"]["items"]["items"]["required"].remove("sku"),
        {("$.items[*].sku", True)},
    ),
    (
        "composition changed",
        lambda s: props(s)["note"].update(anyOf=[{"type": "string"}]),
        {("$.note", True)},
    ),
]


def write(directory: Path, name: str, document: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(document))
