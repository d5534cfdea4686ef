"""Binary content mode (`ce-*` headers): the hot path of every delivery.

Attributes are validated with the rules of the cloudevents SDK (v2 `core`) without building SDK
objects; a property test (tests/unit/test_binary_vs_sdk.py) keeps the two in agreement. The SDK
itself stays in `_codec.py`, the only module importing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from eventfn._errors import MalformedEvent, UndecodableData
from eventfn._event import Event

REQUIRED = ("specversion", "id", "source", "type")
OPTIONAL_STRINGS = ("subject", "datacontenttype", "dataschema")
_EXTENSION_NAME = re.compile(r"[a-z0-9]+")
# HTTP binding 3.1.3.2: printable ASCII except space, double quote and percent is sent as is.
_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_NEEDS_QUOTING = re.compile(r'[^\x21-\x7e]|["%]')
_JSON_SUFFIX = "+json"


def is_json_content_type(content_type: str | None) -> bool:
    """True for `application/json`, `text/json` and `+json` suffixes (and a missing type)."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith(_JSON_SUFFIX)


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp with a zone offset (`Z` or `±hh:mm`)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        detail = "attribute 'time' is not an RFC 3339 timestamp"
        raise MalformedEvent(detail, field="time") from None
    if parsed.tzinfo is None:
        raise MalformedEvent("attribute 'time' must carry a time zone offset", field="time")
    return parsed


def validate_attributes(attributes: Mapping[str, object]) -> None:
    """Raise MalformedEvent naming the first attribute that breaks the CloudEvents 1.0 rules."""
    for name in REQUIRED:
        if name not in attributes:
            raise MalformedEvent(f"required attribute '{name}' is missing", field=name)
        value = attributes[name]
        if not isinstance(value, str) or not value:
            raise MalformedEvent(f"attribute '{name}' must be a non-empty string", field=name)
    if attributes["specversion"] != "1.0":
        raise MalformedEvent("only CloudEvents specversion 1.0 is supported", field="specversion")
    for name in OPTIONAL_STRINGS:
        if name in attributes:
            value = attributes[name]
            if not isinstance(value, str) or not value:
                raise MalformedEvent(f"attribute '{name}' must be a non-empty string", field=name)
    if "time" in attributes:
        time = attributes["time"]
        if not isinstance(time, str):
            raise MalformedEvent("attribute 'time' must be a string", field="time")
        parse_time(time)
    for name in attributes:
        if name in REQUIRED or name in OPTIONAL_STRINGS or name == "time":
            continue
        if name == "data" or not _EXTENSION_NAME.fullmatch(name):
            raise MalformedEvent(
                "extension attribute names are lowercase letters and digits ('data' is reserved)",
                field=name,
            )


def decode_binary(headers: Mapping[str, str], body: bytes) -> Event:
    """An `Event` from binary-mode headers (case-insensitive) and body."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("ce-"):
            attributes[lowered[3:]] = unquote(value) if "%" in value else value
        elif lowered == "content-type":
            content_type = value
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    validate_attributes(attributes)
    data = decode_data(body, content_type) if body else None
    return _event(attributes, data)


def decode_data(body: bytes, content_type: str | None) -> Any:
    """JSON content types are parsed; anything else stays bytes."""
    if not is_json_content_type(content_type):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UndecodableData("event data is not valid JSON", field="data") from None


def _event(attributes: dict[str, str], data: Any) -> Event:
    return Event(
        specversion=attributes.pop("specversion"),
        id=attributes.pop("id"),
        source=attributes.pop("source"),
        type=attributes.pop("type"),
        subject=attributes.pop("subject", None),
        time=attributes.pop("time", None),
        datacontenttype=attributes.pop("datacontenttype", None),
        dataschema=attributes.pop("dataschema", None),
        data=data,
        extensions=attributes,
    )


def header_value(value: str) -> str:
    """Percent-encode an attribute value for a `ce-*` header only where the binding requires."""
    if _NEEDS_QUOTING.search(value) is None:
        return value
    return quote(value, safe=_SAFE)


def encode_binary(event: Event, body: bytes | None = None) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body. `body` overrides the data serialisation (e.g. Avro)."""
    attributes = event.attributes()
    validate_attributes(attributes)
    headers: dict[str, str] = {}
    for name, value in attributes.items():
        if name == "datacontenttype":
            headers["content-type"] = value
        else:
            headers["ce-" + name] = header_value(value)
    return headers, encode_data(event) if body is None else body


def encode_data(event: Event) -> bytes:
    """The body of an event's data for its content type."""
    data = event.data
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str) and not is_json_content_type(event.datacontenttype):
        return data.encode()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
