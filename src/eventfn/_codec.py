"""CloudEvents over HTTP: the only module that imports the cloudevents SDK (major version 2).

Binary mode (`ce-*` headers) and structured mode (`application/cloudevents+json`) decode to the
same `Event`. Batch mode is refused with a clear 415. JSON data is parsed; any other content type
is kept as bytes for the schema registry to decode (Avro) or the handler to read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventfn._errors import MalformedEvent, UndecodableData, UnsupportedContentType
from eventfn._event import CORE_ATTRIBUTES, Event

STRUCTURED_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"
_REQUIRED = ("specversion", "id", "source", "type")
_FORMAT = JSONFormat()


def is_json_content_type(content_type: str | None) -> bool:
    """True for `application/json`, `text/json` and `+json` suffixes (and a missing type)."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def _media_type(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


def _is_binary(headers: Mapping[str, str]) -> bool:
    return any(name[:3].lower() == "ce-" for name in headers)


def decode_http(headers: Mapping[str, str], body: bytes) -> Event:
    """Decode an HTTP request (binary or structured mode) into an `Event`."""
    media = _media_type(headers)
    if media == BATCH_JSON:
        raise UnsupportedContentType(
            "batched CloudEvents are not supported; send one event per request",
            field="content-type",
        )
    if _is_binary(headers):
        return _decode_binary(headers, body)
    if media == STRUCTURED_JSON:
        return _decode_structured(body)
    raise UnsupportedContentType(
        "not a CloudEvent: expected ce-* headers (binary mode) or "
        f"content type {STRUCTURED_JSON} (structured mode)",
        field="content-type",
    )


def _decode_binary(headers: Mapping[str, str], body: bytes) -> Event:
    lowered = {name.lower(): value for name, value in headers.items()}
    _require_attributes({name[3:] for name in lowered if name.startswith("ce-")})
    if lowered.get("ce-specversion") != "1.0":
        raise MalformedEvent("only CloudEvents specversion 1.0 is supported", field="specversion")
    raw_time = unquote(lowered["ce-time"]) if "ce-time" in lowered else None
    if raw_time is not None:
        _parse_time(raw_time)
    message = ce_http.HTTPMessage(headers=lowered, body=b"")
    try:
        sdk_event = ce_http.from_binary(message, _FORMAT, CloudEvent)
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise _malformed(error) from None
    content_type = lowered.get("content-type")
    data = _decode_data(body, content_type) if body else None
    return _from_sdk(sdk_event, data, raw_time)


def _decode_structured(body: bytes) -> Event:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("structured CloudEvent body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedEvent("structured CloudEvent body must be a JSON object")
    _require_attributes(set(document))
    if document.get("specversion") != "1.0":
        raise MalformedEvent("only CloudEvents specversion 1.0 is supported", field="specversion")
    raw_time = document.get("time")
    if raw_time is not None:
        if not isinstance(raw_time, str):
            raise MalformedEvent("attribute 'time' must be a string", field="time")
        _parse_time(raw_time)
    has_base64 = "data_base64" in document
    envelope = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    try:
        sdk_event = _FORMAT.read(CloudEvent, json.dumps(envelope).encode())
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise _malformed(error) from None
    data: Any = document.get("data")
    if has_base64:
        data = _decode_base64(document["data_base64"])
    elif isinstance(data, str) and not is_json_content_type(document.get("datacontenttype")):
        data = data.encode()
    return _from_sdk(sdk_event, data, raw_time)


def _decode_base64(value: object) -> bytes:
    import base64
    import binascii

    if not isinstance(value, str):
        raise MalformedEvent("data_base64 must be a string", field="data_base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvent("data_base64 is not valid base64", field="data_base64") from None


def _require_attributes(present: set[str]) -> None:
    for name in _REQUIRED:
        if name not in present:
            raise MalformedEvent(f"required attribute '{name}' is missing", field=name)


def _malformed(error: Exception) -> MalformedEvent:
    field = getattr(error, "attribute_name", None)
    errors = getattr(error, "errors", None)
    if field is None and isinstance(errors, dict) and errors:
        field = sorted(errors)[0]
    return MalformedEvent("invalid CloudEvent attribute", field=field)


def _decode_data(body: bytes, content_type: str | None) -> Any:
    if not is_json_content_type(content_type):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UndecodableData("event data is not valid JSON", field="data") from None


def _from_sdk(sdk_event: Any, data: Any, raw_time: str | None) -> Event:
    attributes: dict[str, Any] = dict(sdk_event.get_attributes())
    for name in _REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedEvent(f"attribute '{name}' must be a non-empty string", field=name)
    core = {name: attributes.pop(name, None) for name in CORE_ATTRIBUTES}
    return Event(
        type=core["type"],
        source=core["source"],
        id=core["id"],
        data=data,
        subject=core["subject"],
        time=raw_time,
        datacontenttype=core["datacontenttype"],
        dataschema=core["dataschema"],
        extensions={name: str(value) for name, value in attributes.items()},
    )


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(
            "attribute 'time' is not an RFC 3339 timestamp", field="time"
        ) from None


def encode_binary(event: Event, body: bytes | None = None) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body. `body` overrides the data serialisation (e.g. Avro bytes)."""
    sdk_event = _to_sdk(event)
    message = ce_http.to_binary(sdk_event, _FORMAT)
    if body is not None:
        return dict(message.headers), body
    return dict(message.headers), _encode_data(event)


def encode_structured(event: Event) -> tuple[dict[str, str], bytes]:
    """Structured-mode (`application/cloudevents+json`) headers and body."""
    document: dict[str, Any] = event.attributes()
    if isinstance(event.data, bytes | bytearray):
        import base64

        document["data_base64"] = base64.b64encode(event.data).decode()
    elif event.data is not None:
        document["data"] = event.data
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return {"content-type": STRUCTURED_JSON}, body


def _encode_data(event: Event) -> bytes:
    if event.data is None:
        return b""
    if isinstance(event.data, bytes | bytearray):
        return bytes(event.data)
    if isinstance(event.data, str) and not is_json_content_type(event.datacontenttype):
        return event.data.encode()
    return json.dumps(event.data, ensure_ascii=False, separators=(",", ":")).encode()


def _to_sdk(event: Event) -> CloudEvent:
    attributes: dict[str, Any] = event.attributes()
    if "time" in attributes:
        attributes["time"] = _parse_time(attributes["time"])
    try:
        return CloudEvent(attributes=attributes, data=None)
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise _malformed(error) from None
