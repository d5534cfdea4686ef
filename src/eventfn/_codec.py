"""CloudEvents over HTTP: the only module that imports the cloudevents SDK (major version 2).

Binary mode (`ce-*` headers) and structured mode (`application/cloudevents+json`) decode to the
same `Event`. Batch mode is refused with a clear 415. JSON data is parsed; any other content type
is kept as bytes for the schema registry to decode (Avro) or the handler to read. The binary
path, taken by every broker delivery, lives in `_binary.py` and follows the SDK's rules without
building SDK objects.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from eventfn._binary import (
    decode_binary,
    encode_binary,
    is_json_content_type,
    parse_time,
    validate_attributes,
)
from eventfn._errors import MalformedEvent, UnsupportedContentType
from eventfn._event import CORE_ATTRIBUTES, Event

__all__ = [
    "BATCH_JSON",
    "STRUCTURED_JSON",
    "decode_http",
    "encode_binary",
    "encode_structured",
    "is_json_content_type",
]

STRUCTURED_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"


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
        return decode_binary(headers, body)
    if media == STRUCTURED_JSON:
        return _decode_structured(body)
    raise UnsupportedContentType(
        "not a CloudEvent: expected ce-* headers (binary mode) or "
        f"content type {STRUCTURED_JSON} (structured mode)",
        field="content-type",
    )


def _decode_structured(body: bytes) -> Event:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("structured CloudEvent body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedEvent("structured CloudEvent body must be a JSON object")
    envelope = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    validate_attributes(envelope)
    # imported here: the structured path is rare, and the SDK costs cold-start time
    from cloudevents.core.exceptions import BaseCloudEventException
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    try:
        sdk_event = JSONFormat().read(CloudEvent, json.dumps(envelope).encode())
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise _malformed(error) from None
    data: Any = document.get("data")
    if "data_base64" in document:
        data = _decode_base64(document["data_base64"])
    elif isinstance(data, str) and not is_json_content_type(document.get("datacontenttype")):
        data = data.encode()
    return _from_sdk(sdk_event, data, document.get("time"))


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise MalformedEvent("data_base64 must be a string", field="data_base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvent("data_base64 is not valid base64", field="data_base64") from None


def _malformed(error: Exception) -> MalformedEvent:
    field = getattr(error, "attribute_name", None)
    errors = getattr(error, "errors", None)
    if field is None and isinstance(errors, dict) and errors:
        field = sorted(errors)[0]
    return MalformedEvent("invalid CloudEvent attribute", field=field)


def _from_sdk(sdk_event: Any, data: Any, raw_time: str | None) -> Event:
    attributes: dict[str, Any] = dict(sdk_event.get_attributes())
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


def encode_structured(event: Event) -> tuple[dict[str, str], bytes]:
    """Structured-mode (`application/cloudevents+json`) headers and body."""
    document: dict[str, Any] = event.attributes()
    validate_attributes(document)
    if "time" in document:
        parse_time(document["time"])
    if isinstance(event.data, bytes | bytearray):
        document["data_base64"] = base64.b64encode(event.data).decode()
    elif event.data is not None:
        document["data"] = event.data
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return {"content-type": STRUCTURED_JSON}, body
