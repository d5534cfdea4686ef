"""Schema violations as eventfn writes them: a JSONPath field, and data never echoed back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from jsonschema.exceptions import ValidationError

from eventfn._errors import SchemaViolation

_JSON_DETAILS: dict[str, str] = {
    "type": "must be of type {types}",
    "enum": "must be one of {value}",
    "const": "must equal {value}",
    "minLength": "must have at least {value} characters",
    "maxLength": "must have at most {value} characters",
    "minimum": "must be greater than or equal to {value}",
    "maximum": "must be less than or equal to {value}",
    "exclusiveMinimum": "must be greater than {value}",
    "exclusiveMaximum": "must be less than {value}",
    "multipleOf": "must be a multiple of {value}",
    "minItems": "must have at least {value} items",
    "maxItems": "must have at most {value} items",
    "uniqueItems": "must not contain duplicate items",
    "pattern": "must match the pattern {value}",
    "format": "must be a valid {raw}",
    "anyOf": "does not match any of the allowed shapes",
    "oneOf": "must match exactly one of the allowed shapes",
    "not": "matches a shape that is not allowed",
    "None": "is not allowed here",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Iterable[str | int]) -> str:
    """A JSONPath such as `$.items[0].quantity` for a sequence of keys and indexes."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _NAME.match(part):
            path += f".{part}"
        else:
            path += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path


def json_violation(error: ValidationError) -> SchemaViolation:
    """A SchemaViolation written by eventfn: the data's values are never echoed back."""
    path: list[str | int] = list(error.absolute_path)
    keyword, value, instance = str(error.validator), error.validator_value, error.instance
    subschema = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "required" and isinstance(instance, dict):
        missing = next(name for name in value if name not in instance)
        detail = f"'{missing}' is a required property"
        return SchemaViolation(detail, field=json_path([*path, missing]))
    if keyword == "additionalProperties" and isinstance(instance, dict):
        patterns = subschema.get("patternProperties", {})
        allowed = subschema.get("properties", {})
        extra = sorted(
            k for k in instance if k not in allowed and not any(re.search(p, k) for p in patterns)
        )
        detail = f"'{extra[0]}' is not an allowed property"
        return SchemaViolation(detail, field=json_path([*path, extra[0]]))
    template = _JSON_DETAILS.get(keyword, "violates the '{raw}' constraint")
    types = " or ".join(value) if isinstance(value, list) else str(value)
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    raw = value if keyword == "format" else keyword
    detail = template.format(types=types, value=shown, raw=raw)
    return SchemaViolation(detail, field=json_path(path))


def _avro_type_name(schema: Any) -> str:
    if isinstance(schema, list):
        return " or ".join(_avro_type_name(branch) for branch in schema)
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        name = schema.get("name") if schema.get("type") in ("record", "enum", "fixed") else None
        return str(logical or name or schema.get("type"))
    return str(schema)


def avro_violation(errors: Iterable[Any], named: Iterable[str]) -> SchemaViolation:
    """The first fastavro validation error as a SchemaViolation with a JSONPath field."""
    first = next(iter(errors), None)
    if first is None:
        return SchemaViolation("does not match the Avro schema", field="$")
    field = str(first.field)
    for name in named:
        field = field.replace(f".{name}.", ".").removeprefix(f"{name}.").removeprefix(name)
    expected = _avro_type_name(first.schema)
    if first.datum is None:
        detail = f"is missing or null, expected {expected}"
    else:
        detail = f"must be of Avro type {expected}"
    return SchemaViolation(detail, field=json_path([p for p in field.split(".") if p]))
