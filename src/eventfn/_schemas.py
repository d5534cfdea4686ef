"""The schema registry: event catalog contracts that incoming and outgoing data must satisfy.

`schemas/` holds one file per event type and version, named after the type: a JSON Schema
(draft 2020-12, `<type>.json`) or an Avro record schema (`<type>.avsc`). Validators are built
once when the directory is loaded, so validating an event costs one pass over its data.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeGuard

import fastavro
from fastavro.validation import ValidationError as AvroValidationError
from fastavro.validation import validate as avro_validate
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from eventfn._codec import is_json_content_type
from eventfn._errors import (
    ConfigurationError,
    SchemaViolation,
    UndecodableData,
    UnsupportedContentType,
)
from eventfn._schema_errors import avro_violation, json_violation

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
AVRO_CONTENT_TYPE = "application/avro"
JSON_CONTENT_TYPE = "application/json"
SCHEMA_SUFFIXES: dict[str, Literal["json", "avro"]] = {".json": "json", ".avsc": "avro"}
EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9][a-z0-9_-]*)*\.v[1-9][0-9]*$")
_AVRO_MEDIA_TYPES = frozenset({AVRO_CONTENT_TYPE, "avro/binary", "application/vnd.apache.avro"})
_URN = "urn:eventfn:schema:"
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$"
)


@dataclass(frozen=True)
class SchemaFile:
    """One parsed and meta-validated schema file of the catalog."""

    event_type: str
    kind: Literal["json", "avro"]
    path: Path
    document: Any


def schema_paths(directory: Path) -> list[Path]:
    """The schema files of `directory` (`*.json`, `*.avsc`), sorted; other files are ignored."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SCHEMA_SUFFIXES)


def read_schema_file(path: Path) -> SchemaFile:
    """Parse and check one schema file; ConfigurationError naming the file when it is wrong."""
    kind = SCHEMA_SUFFIXES.get(path.suffix)
    if kind is None:
        raise ConfigurationError(f"{path}: schema files end in .json or .avsc")
    event_type = path.name[: -len(path.suffix)]
    if not EVENT_TYPE_PATTERN.match(event_type):
        raise ConfigurationError(
            f"{path}: file name must be the event type with a version, e.g. eventfn.x.created.v1"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigurationError(f"{path}: not a readable JSON document ({error})") from None
    if kind == "json":
        _check_json_schema(path, document)
    else:
        _parse_avro(path, document)
    return SchemaFile(event_type, kind, path, document)


def _check_json_schema(path: Path, document: Any) -> None:
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path}: a JSON Schema file must hold a JSON object")
    if document.get("$schema") != JSON_SCHEMA_DIALECT:
        raise ConfigurationError(f"{path}: '$schema' must be {JSON_SCHEMA_DIALECT!r}")
    try:
        Draft202012Validator.check_schema(document)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise ConfigurationError(
            f"{path}: invalid JSON Schema at {where}: {error.message}"
        ) from None


def _parse_avro(path: Path, document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path}: an event's Avro schema must be a record with fields")
    try:
        parsed = fastavro.parse_schema(document)
    except (fastavro.schema.SchemaParseException, fastavro.schema.UnknownType) as error:
        raise ConfigurationError(f"{path}: invalid Avro schema: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ConfigurationError(f"{path}: invalid Avro schema ({error!r})") from None
    record = document.get("type") == "record" and isinstance(document.get("fields"), list)
    if not record or not isinstance(parsed, dict):
        raise ConfigurationError(f"{path}: an event's Avro schema must be a record with fields")
    return parsed


def _is_date_time(instance: object) -> bool:
    """RFC 3339 `date-time`, checked without optional dependencies (leap second 60 allowed)."""
    if not isinstance(instance, str):
        return True
    match = _RFC3339.match(instance)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    offset_hour, offset_minute = (int(match.group(i) or 0) for i in (7, 8))
    try:
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60 and offset_hour <= 23 and offset_minute <= 59


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checks("date-time")(_is_date_time)
    return checker


@dataclass(frozen=True, slots=True)
class _JsonEntry:
    dataschema: str
    validator: Draft202012Validator


@dataclass(frozen=True, slots=True)
class _AvroEntry:
    dataschema: str
    parsed: dict[str, Any]
    plain: dict[str, Any]  # the same schema without logical types: its JSON form
    named: tuple[str, ...]  # full names of the record's named types, longest first


class SchemaRegistry:
    """Validators for every event type of the catalog, keyed by type; immutable once loaded."""

    def __init__(self, entries: dict[str, _JsonEntry | _AvroEntry]) -> None:
        self._entries = dict(entries)

    @classmethod
    def empty(cls) -> SchemaRegistry:
        """A registry without schemas: data passes through unvalidated."""
        return cls({})

    @classmethod
    def from_directory(cls, path: Path) -> SchemaRegistry:
        """Load and compile every schema file of `path`; ConfigurationError naming a bad file."""
        if not path.is_dir():
            raise ConfigurationError(f"{path}: schema directory does not exist")
        files = [read_schema_file(p) for p in schema_paths(path)]
        by_type: dict[str, SchemaFile] = {}
        for file in files:
            if (first := by_type.setdefault(file.event_type, file)) is not file:
                raise ConfigurationError(f"{file.path}: type already defined by {first.path}")
        return cls(_compile(files))

    def types(self) -> list[str]:
        """The registered event types, sorted."""
        return sorted(self._entries)

    def has(self, event_type: str) -> bool:
        """True when `event_type` has a registered schema."""
        return event_type in self._entries

    def dataschema(self, event_type: str) -> str | None:
        """The URI emitted events of `event_type` carry in `dataschema`."""
        entry = self._entries.get(event_type)
        return None if entry is None else entry.dataschema

    def is_avro(self, event_type: str) -> bool:
        """True when `event_type` is registered with an Avro schema."""
        return isinstance(self._entries.get(event_type), _AvroEntry)

    def decode(self, event_type: str, data: object, content_type: str | None) -> object:
        """Validate (and decode, for Avro or raw JSON) the `data` of an incoming event."""
        entry = self._entries.get(event_type)
        if entry is None:
            if _is_bytes(data) and is_json_content_type(content_type):
                return _parse_json(data)
            return data
        if isinstance(entry, _AvroEntry):
            return _decode_avro(entry, event_type, data, content_type)
        value = _incoming_json(event_type, data, content_type)
        _validate_json(entry.validator, value)
        return value

    def encode(self, event_type: str, data: object, content_type: str | None) -> tuple[bytes, str]:
        """Validate the `data` of an outgoing event and serialise it: (body, content type)."""
        entry = self._entries.get(event_type)
        if entry is None:
            return _encode_unregistered(data, content_type)
        if isinstance(entry, _AvroEntry):
            return _encode_avro(entry, event_type, data, content_type)
        if _is_avro_type(content_type):
            raise UnsupportedContentType(f"{event_type} has a JSON Schema, not an Avro schema")
        if _is_bytes(data):
            data = _parse_json(data, outgoing=True)
        _validate_json(entry.validator, data)
        ct = content_type if content_type and is_json_content_type(content_type) else None
        return _dump_json(data), ct or JSON_CONTENT_TYPE


def _compile(files: list[SchemaFile]) -> dict[str, _JsonEntry | _AvroEntry]:
    json_files = [f for f in files if f.kind == "json"]
    uris: dict[str, SchemaFile] = {}
    for file in json_files:
        uri = str(file.document.get("$id") or _URN + file.event_type)
        if uri in uris:
            raise ConfigurationError(f"{file.path}: $id {uri} already used by {uris[uri].path}")
        uris[uri] = file
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(f.document, default_specification=DRAFT202012))
        for uri, f in uris.items()
    )
    checker = _format_checker()
    entries: dict[str, _JsonEntry | _AvroEntry] = {}
    for uri, file in uris.items():
        validator = Draft202012Validator(file.document, registry=registry, format_checker=checker)
        entries[file.event_type] = _JsonEntry(uri, validator)
    for file in files:
        if file.kind == "avro":
            parsed = _parse_avro(file.path, file.document)
            plain = _parse_avro(file.path, _without_logical_types(file.document))
            named = sorted(parsed.get("__named_schemas", {}), key=len, reverse=True)
            uri = _URN + str(parsed["name"])
            entries[file.event_type] = _AvroEntry(uri, parsed, plain, tuple(named))
    return entries


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(item) for item in node]
    return node


def _is_bytes(data: object) -> TypeGuard[bytes | bytearray | memoryview]:
    return isinstance(data, bytes | bytearray | memoryview)


def _is_avro_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in _AVRO_MEDIA_TYPES


def _parse_json(data: object, *, outgoing: bool = False) -> Any:
    raw = bytes(data) if _is_bytes(data) else str(data)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        if outgoing:
            raise SchemaViolation("event data is not valid JSON", field="$") from None
        raise UndecodableData("event data is not valid JSON", field="data") from None


def _incoming_json(event_type: str, data: object, content_type: str | None) -> Any:
    """JSON data as a Python value. A str is JSON text only when it holds an object or array."""
    json_type = is_json_content_type(content_type)
    if _is_bytes(data):
        if not json_type:
            raise UnsupportedContentType(f"{event_type} data cannot be read as {content_type}")
        return _parse_json(data)
    if isinstance(data, str) and json_type and data.lstrip()[:1] in ("{", "["):
        return _parse_json(data)
    return data


def _validate_json(validator: Draft202012Validator, value: Any) -> None:
    errors: Iterator[ValidationError] = validator.iter_errors(value)
    first = next(errors, None)
    if first is not None:
        error = best_match([first, *errors])
        raise json_violation(error)


def _dump_json(data: Any) -> bytes:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError):
        raise SchemaViolation("event data cannot be represented as JSON", field="$") from None


def _encode_unregistered(data: object, content_type: str | None) -> tuple[bytes, str]:
    if _is_bytes(data):
        return bytes(data), content_type or "application/octet-stream"
    if isinstance(data, str) and content_type and not is_json_content_type(content_type):
        return data.encode(), content_type
    if _is_avro_type(content_type):
        raise UnsupportedContentType("no Avro schema is registered for this event type")
    return _dump_json(data), content_type or JSON_CONTENT_TYPE


def _check_avro(entry: _AvroEntry, datum: Any) -> None:
    try:
        avro_validate(datum, entry.parsed, raise_errors=True)
    except AvroValidationError as error:
        raise avro_violation(error.errors, entry.named) from None


def _write_avro(entry: _AvroEntry, datum: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, entry.parsed, datum)
    return buffer.getvalue()


def _read_avro(schema: dict[str, Any], raw: bytes) -> Any:
    buffer = io.BytesIO(raw)
    try:
        value = fastavro.schemaless_reader(buffer, schema, None)
    except (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError, MemoryError):
        raise UndecodableData("event data is not valid Avro for its schema", field="data") from None
    if buffer.tell() != len(raw):
        raise UndecodableData("event data has bytes after the Avro record", field="data")
    return value


def _decode_avro(entry: _AvroEntry, event_type: str, data: object, ct: str | None) -> object:
    """Avro bytes are read with the schema; a JSON record is validated and read the same way."""
    if _is_bytes(data) and _is_avro_type(ct):
        return _read_avro(entry.parsed, bytes(data))
    data = _incoming_json(event_type, data, ct)
    _check_avro(entry, data)
    return _read_avro(entry.parsed, _write_avro(entry, data))


def _encode_avro(
    entry: _AvroEntry, event_type: str, data: object, content_type: str | None
) -> tuple[bytes, str]:
    _check_avro(entry, data)
    body = _write_avro(entry, data)
    if _is_avro_type(content_type):
        return body, str(content_type)
    if not is_json_content_type(content_type):
        raise UnsupportedContentType(f"{event_type} data can be sent as Avro or JSON only")
    return _dump_json(_read_avro(entry.plain, body)), content_type or JSON_CONTENT_TYPE
