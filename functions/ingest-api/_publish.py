"""`POST /v1/events/<type>`: a request body becomes one CloudEvent in the broker.

The body is validated once, against the schema registry the runtime loaded, and the bytes that
were validated are the bytes published (binary mode, to `K_SINK`): JSON re-serialised compactly
(so `NaN` or duplicate keys never reach consumers), Avro as sent (the registry read exactly one
record from it). A JSON body for an Avro type is encoded to Avro: Avro types always travel as
`application/avro`, with a `partitionkey` extension for user events (the user id), so ordered
brokers keep each user's events in order.

Idempotency-Key: the event id is derived from (token subject, event type, key), so a retried POST
publishes an event with the same `source` and `id`. Nothing is stored: every consumer
deduplicates on (source, id) — eventfn's idempotency records, the lake's exactly-once archive —
so the retry's event is recognised as the same event and applied once. A client must not reuse a
key for a different body (the second body would be dropped as a duplicate, as the IETF draft's
"same key, same request" rule assumes).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from eventfn import Event, PayloadTooLarge, UnsupportedContentType
from eventfn._binary import is_json_content_type
from eventfn._codec import encode_binary
from eventfn._context import derived_id
from eventfn._event import utc_now_rfc3339
from eventfn._pipeline import Response
from eventfn._routes import HttpRequest, MalformedRequest, RouteContext, json_response
from eventfn._schemas import AVRO_CONTENT_TYPE, JSON_CONTENT_TYPE, SchemaRegistry

from ._auth import Authenticator
from ._config import IngestConfig
from ._errors import InvalidIdempotencyKey, UnknownEventType

EVENTS_PATH = "/v1/events/<event_type>"
MAX_IDEMPOTENCY_KEY = 255
PARTITION_KEYS = {"eventfn.user.": "user_id"}
"""Event type prefix -> data field whose value becomes the `partitionkey` extension."""
_AVRO_MEDIA = frozenset({AVRO_CONTENT_TYPE, "avro/binary", "application/vnd.apache.avro"})


@dataclass(frozen=True)
class Payload:
    """What is published: the body bytes, their content type and (when parsed) the data."""

    body: bytes
    content_type: str
    data: Any = None


def publish_event(
    request: HttpRequest, ctx: RouteContext, config: IngestConfig, auth: Authenticator
) -> Response:
    """Authenticate, authorise, check, validate, publish; 202 with the event id."""
    principal = auth.authenticate(request.headers.get("authorization"))
    event_type = request.path_params["event_type"]
    auth.require(principal, f"events:write:{event_type}")
    if len(request.body) > config.max_body:
        raise PayloadTooLarge(f"the request body exceeds {config.max_body} bytes")
    registry = ctx.emitter.registry
    if not isinstance(registry, SchemaRegistry) or not registry.has(event_type):
        raise UnknownEventType(f"no schema is registered for {event_type}", field="type")
    payload = read_payload(registry, event_type, request, validate=config.validate)
    key = idempotency_key(request.headers.get("idempotency-key"))
    event_id = (
        str(uuid.uuid4())
        if key is None
        else derived_id(ctx.function, principal.subject, event_type, key)
    )
    event = Event(
        type=event_type,
        source=ctx.source,
        id=event_id,
        time=utc_now_rfc3339(),
        datacontenttype=payload.content_type,
        dataschema=registry.dataschema(event_type),
        extensions=_extensions(event_type, payload.data, ctx),
    )
    headers, body = encode_binary(event, payload.body)
    send(ctx, headers, body)
    return json_response(202, {"id": event.id, "type": event_type})


def send(ctx: RouteContext, headers: dict[str, str], body: bytes) -> None:
    """Post to the broker; any refusal is a 503 for the caller to retry (same id with a key)."""
    from eventfn import DependencyUnavailable, EventfnError

    try:
        ctx.emitter.send(headers, body, ctx.trace.headers())
    except EventfnError:
        raise DependencyUnavailable(
            "the broker did not accept the event; retry the request", retry_after=1
        ) from None


def read_payload(
    registry: SchemaRegistry, event_type: str, request: HttpRequest, *, validate: bool
) -> Payload:
    """The body as it will be published, validated unless `validate` is off."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    avro_type = registry.is_avro(event_type)
    if media in _AVRO_MEDIA:
        if not avro_type:
            raise UnsupportedContentType(
                f"{event_type} has a JSON Schema: send application/json", field="content-type"
            )
        data = registry.decode(event_type, request.body, AVRO_CONTENT_TYPE) if validate else None
        return Payload(request.body, AVRO_CONTENT_TYPE, data)
    if not is_json_content_type(media):
        raise UnsupportedContentType(
            "send application/json" + (" or application/avro" if avro_type else ""),
            field="content-type",
        )
    if not validate:
        return Payload(request.body, JSON_CONTENT_TYPE)
    value = parse_json(request.body)
    data = registry.decode(event_type, value, JSON_CONTENT_TYPE)
    if avro_type:
        body, _ = registry.encode(event_type, data, AVRO_CONTENT_TYPE)
        return Payload(body, AVRO_CONTENT_TYPE, data)
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Payload(compact.encode(), JSON_CONTENT_TYPE, value)


def parse_json(body: bytes) -> Any:
    """Strict JSON: `NaN`/`Infinity` are not JSON; 400 for anything that is not JSON."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(body, parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedRequest("the request body is not valid JSON", field="body") from None


def idempotency_key(raw: str | None) -> str | None:
    """The `Idempotency-Key` header: 1-255 printable ASCII characters, or absent."""
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not all(" " < c <= "~" for c in key):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            field="idempotency-key",
        )
    return key


def _extensions(event_type: str, data: Any, ctx: RouteContext) -> dict[str, str]:
    extensions = dict(ctx.trace.headers())  # distributed tracing extension, as storage-source
    for prefix, field in PARTITION_KEYS.items():
        if event_type.startswith(prefix) and isinstance(data, dict):
            value = data.get(field)
            if isinstance(value, str) and value:
                extensions["partitionkey"] = value
    return extensions
