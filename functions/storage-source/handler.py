"""storage-source: bucket notifications in, `eventfn.storage.object.created.v1` CloudEvents out.

An HTTP webhook, not a CloudEvent consumer: MinIO's webhook target (or a relay of an AWS S3
notification from SQS) POSTs `{"Records": [...]}` (MinIO adds `EventName` and `Key`) to
`/webhook` with `Authorization: Bearer <STORAGE_SOURCE_TOKEN>`. Every ObjectCreated record
becomes one event sent to the broker (`K_SINK`); event ids derive from bucket, key, ETag and
sequencer, so a redelivered notification yields the same ids and consumers deduplicate it.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from eventfn import App, DependencyUnavailable, Event, EventfnError, InternalError, Unauthorized
from eventfn._context import derived_id
from eventfn._event import utc_now_rfc3339
from eventfn._logging import get_logger
from eventfn._pipeline import Response, problem_response
from eventfn._routes import HttpRequest, MalformedRequest, Route, RouteContext, json_response

ENV_TOKEN = "STORAGE_SOURCE_TOKEN"  # noqa: S105 - the variable name, not a secret
ENV_IGNORE_PREFIXES = "STORAGE_SOURCE_IGNORE_PREFIXES"
WEBHOOK_PATH = "/webhook"
CREATED_TYPE = "eventfn.storage.object.created.v1"
_TEST_EVENT = "s3:TestEvent"

app = App("storage-source")


@dataclass(frozen=True)
class WebhookConfig:
    """The shared token and the key prefixes whose objects produce no event."""

    token: str = ""
    ignore_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookConfig:
        """Read `STORAGE_SOURCE_TOKEN` and `STORAGE_SOURCE_IGNORE_PREFIXES` (comma separated)."""
        prefixes = (part.strip() for part in env.get(ENV_IGNORE_PREFIXES, "").split(","))
        return cls(env.get(ENV_TOKEN, ""), tuple(prefix for prefix in prefixes if prefix))


@dataclass(frozen=True)
class ObjectCreated:
    """One ObjectCreated record, key decoded."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str | None
    event_time: str | None
    version_id: str | None
    sequencer: str | None


class StorageWebhook:
    """The `/webhook` route; configured from the environment when the function starts."""

    def __init__(self) -> None:
        self.config = WebhookConfig()

    def configure(self) -> None:
        """Start hook: read the token and prefixes once."""
        self.config = WebhookConfig.from_env(os.environ)
        if not self.config.token:
            app_logger().warning("%s is not set: every notification is refused (401)", ENV_TOKEN)

    def __call__(self, request: HttpRequest, ctx: RouteContext) -> Response:
        if not authorized(request.headers.get("authorization"), self.config.token):
            refused = problem_response(
                Unauthorized("missing or invalid bearer token"), ctx.trace.trace_id
            )
            headers = {**refused.headers, "www-authenticate": 'Bearer realm="storage-source"'}
            return Response(refused.status, headers, refused.body)
        records = notification_records(request.json())
        created = [read_record(record, index) for index, record in enumerate(records)]
        wanted = [
            item
            for item in created
            if item is not None and not item.key.startswith(self.config.ignore_prefixes)
        ]
        events = [created_event(item, ctx) for item in wanted]
        try:
            ctx.emit_all(events)
        except InternalError:
            raise
        except EventfnError:
            raise DependencyUnavailable(
                "the broker did not accept the events; retry the notification", retry_after=1
            ) from None
        ignored = len(records) - len(wanted)
        ctx.logger.info("notification: %d emitted, %d ignored", len(events), ignored)
        body = {"emitted": len(events), "ignored": ignored, "trace_id": ctx.trace.trace_id}
        return json_response(200, body)


def app_logger() -> logging.Logger:
    """The function's logger (the one the runtime gives its handlers)."""
    return get_logger(f"function.{app.name}")


def authorized(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` matches the configured token (constant-time compare)."""
    if not token or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def notification_records(document: Any) -> list[Any]:
    """The `Records` of a MinIO webhook body or an S3 notification (SQS message body).

    S3's `s3:TestEvent` (sent when a notification is configured) has no records.
    """
    if isinstance(document, dict):
        records = document.get("Records")
        if isinstance(records, list):
            return records
        if document.get("Event") == _TEST_EVENT:
            return []
    raise MalformedRequest("expected a bucket notification with a Records list", field="Records")


def read_record(record: Any, index: int) -> ObjectCreated | None:
    """The created object of one record, or None for any other event (removed, accessed...)."""
    name = _required(record, index, "eventName").removeprefix("s3:")
    if not name.startswith("ObjectCreated:"):
        return None
    size = _get(record, "s3", "object", "size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedRequest(
            "a record has no valid size", field=f"Records[{index}].s3.object.size"
        )
    return ObjectCreated(
        bucket=_required(record, index, "s3", "bucket", "name"),
        key=unquote_plus(_required(record, index, "s3", "object", "key")),
        size=size,
        etag=str(_get(record, "s3", "object", "eTag") or "").strip('"'),
        content_type=_text(_get(record, "s3", "object", "contentType")),
        event_time=_timestamp(_get(record, "eventTime")),
        version_id=_text(_get(record, "s3", "object", "versionId")),
        sequencer=_text(_get(record, "s3", "object", "sequencer")),
    )


def _get(document: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(document, dict):
            return None
        document = document.get(name)
    return document


def _required(record: Any, index: int, *path: str) -> str:
    value = _get(record, *path)
    if not isinstance(value, str) or not value:
        field = ".".join((f"Records[{index}]", *path))
        raise MalformedRequest(f"a record has no {path[-1]}", field=field)
    return value


def created_event(item: ObjectCreated, ctx: RouteContext) -> Event:
    """The CloudEvent of one created object; the distributed-tracing extension keeps the trace
    this notification started, as the CloudEvents spec intends it."""
    data: dict[str, Any] = {
        "bucket": item.bucket,
        "key": item.key,
        "size": item.size,
        "etag": item.etag,
        "version_id": item.version_id,
    }
    if item.content_type is not None:
        data["content_type"] = item.content_type
    if item.event_time is not None:
        data["event_time"] = item.event_time
    version = item.sequencer or item.event_time or ""
    return Event(
        type=CREATED_TYPE,
        source=f"s3://{item.bucket}",
        id=derived_id(app.name, item.bucket, item.key, item.etag, version),
        data=data,
        subject=item.key,
        time=item.event_time or utc_now_rfc3339(),
        datacontenttype="application/json",
        extensions=ctx.trace.headers(),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: Any) -> str | None:
    """`value` when it is an RFC 3339 timestamp, else None (the event then gets the time now)."""
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


webhook = StorageWebhook()
app.on_start(webhook.configure)
app.add_route(Route(WEBHOOK_PATH, ("POST",), webhook))
