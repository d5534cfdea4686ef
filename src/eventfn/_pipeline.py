"""The per-event path, independent of WSGI: (headers, body) in, (status, headers, body) out.

decode -> match handler -> validate data -> [idempotency claim -> handler in a transaction ->
reply/emits encoded and stored in the same transaction] -> send emits -> reply.
Every failure becomes exactly one problem response here, and nowhere else.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventfn._codec import decode_http
from eventfn._context import Context, Reply, derived_id
from eventfn._errors import (
    PROBLEM_CONTENT_TYPE,
    EventfnError,
    InternalError,
    SchemaViolation,
    UndecodableData,
)
from eventfn._event import Event, utc_now_rfc3339
from eventfn._logging import log_context
from eventfn._stored import StoredResponse

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from eventfn._app import App, Handler
    from eventfn._catalog import SchemaCatalog
    from eventfn._database import Database
    from eventfn._emitter import Emitter
    from eventfn._metrics import Metrics
    from eventfn._objects import ObjectStore
    from eventfn._settings import Settings
    from eventfn._tracing import EventSpan, Tracer


_NO_ATTRIBUTES: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer, framework-free."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Services:
    """The collaborators of the event path, built once per process."""

    settings: Settings
    schemas: SchemaCatalog
    emitter: Emitter
    tracer: Tracer
    metrics: Metrics
    logger: logging.Logger
    database: Database | None = None
    idempotency: bool = False
    objects_factory: Callable[[], ObjectStore] | None = None


def problem_response(error: EventfnError, trace_id: str | None = None) -> Response:
    """The `application/problem+json` answer for an error."""
    body = error.problem()
    if trace_id:
        body["trace_id"] = trace_id
    headers = {"content-type": PROBLEM_CONTENT_TYPE}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return Response(error.status, headers, json.dumps(body).encode())


class EventProcessor:
    """Runs one function's handlers for incoming HTTP CloudEvents."""

    def __init__(self, app: App, services: Services) -> None:
        self.app = app
        self.services = services
        self._known_types = app.event_types
        self._unvalidated = any(not handler.validate for handler in app.handlers)

    def process(self, headers: Mapping[str, str], body: bytes) -> Response:
        """Handle one request; never raises."""
        started = time.perf_counter()
        services = self.services
        try:
            event = self._decode(headers, body)
        except EventfnError as error:
            services.metrics.observe_event("unknown", "permanent", time.perf_counter() - started)
            services.logger.info("refused request: %s", error.code)
            return problem_response(error)
        type_label = event.type if event.type in self._known_types else "unknown"
        span_attributes = event.attributes() if services.tracer.enabled else _NO_ATTRIBUTES
        with services.tracer.event_span(span_attributes, headers) as span:
            trace_id = span.context.trace_id
            with log_context(
                trace_id=trace_id,
                span_id=span.context.span_id,
                event_id=event.id,
                event_type=event.type,
                event_source=event.source,
                function=self.app.name,
            ):
                response, outcome = self._guarded(event, span)
            if response.status >= 400:
                response.headers.update(span.context.headers())
            span.set_outcome(response.status, outcome)
        services.metrics.observe_event(type_label, outcome, time.perf_counter() - started)
        return response

    def _decode(self, headers: Mapping[str, str], body: bytes) -> Event:
        try:
            return decode_http(headers, body)
        except UndecodableData:
            event = self._undecoded(headers, body) if self._unvalidated else None
            if event is None:
                raise
            return event

    def _undecoded(self, headers: Mapping[str, str], body: bytes) -> Event | None:
        """The event with its unparseable JSON data kept as bytes, when it goes to a handler
        registered with `validate=False` (a dead-letter sink stores such events as received)."""
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        raw = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        raw["content-type"] = "application/octet-stream"
        try:
            event = decode_http(raw, body).with_changes(datacontenttype=content_type)
            handler = self.app.match(event)
        except EventfnError:
            return None
        return None if handler.validate else event

    def _guarded(self, event: Event, span: EventSpan) -> tuple[Response, str]:
        try:
            return self._handle(event, span)
        except EventfnError as error:
            outcome = "retryable" if error.retryable else "permanent"
            level = logging.WARNING if error.retryable else logging.INFO
            self.services.logger.log(level, "event failed: %s", error.code)
            span.record_error(type(error).__name__)
            return problem_response(error, span.context.trace_id), outcome
        except Exception as error:
            self.services.logger.exception("handler raised an unexpected exception")
            span.record_error(type(error).__name__)
            internal = InternalError("the function failed unexpectedly; quote the trace id")
            return problem_response(internal, span.context.trace_id), "error"

    def _handle(self, event: Event, span: EventSpan) -> tuple[Response, str]:
        handler = self.app.match(event)
        services = self.services
        if handler.validate:
            data = services.schemas.decode(event.type, event.data, event.datacontenttype)
            if data is not event.data:
                event = event.with_changes(data=data)
        key = handler.idempotency_key(event)

        def work(transaction: Callable[[], Connection] | None) -> StoredResponse:
            return self._run_handler(handler, event, span, key, transaction)

        stored = self._execute(handler, key, work)
        outcome = "ok"
        if stored.replayed:
            outcome = "replayed"
            services.metrics.count_idempotent_hit(event.type)
        if stored.emits and not stored.emits_sent:
            self._send_emits(stored.emits, span)
            if services.database is not None and services.idempotency and handler.idempotent:
                services.database.idempotency().mark_emits_sent(key)
        headers = {**stored.headers, **span.context.headers()}
        return Response(stored.status, headers, stored.body), outcome

    def _execute(
        self,
        handler: Handler,
        key: str,
        work: Callable[[Callable[[], Connection] | None], StoredResponse],
    ) -> StoredResponse:
        services = self.services
        database = services.database
        if database is None:
            return work(None)
        if services.idempotency and handler.idempotent:
            store = database.idempotency()
            return store.run(key, lambda connection: work(lambda: connection))

        from eventfn._transaction import LazyTransaction

        lazy = LazyTransaction(database.engine)
        try:
            stored = work(lazy)
        except BaseException:
            lazy.finish(commit=False)
            raise
        lazy.finish(commit=True)
        return stored

    def _run_handler(
        self,
        handler: Handler,
        event: Event,
        span: EventSpan,
        key: str,
        transaction: Callable[[], Connection] | None,
    ) -> StoredResponse:
        services = self.services
        ctx = Context(
            function=self.app.name,
            event=event,
            settings=services.settings,
            trace=span.context,
            logger=services.logger,
            transaction=transaction,
            idempotency_key=key,
            objects_factory=services.objects_factory,
        )
        result = handler.func(event, ctx)
        reply = self._reply_event(handler, event, result, key)
        emits = [self._encode_for_store(emitted) for emitted in ctx.emitted]
        if reply is None:
            return StoredResponse(204, {}, b"", emits, False)
        reply_headers, body = self._prepare(reply)
        return StoredResponse(200, reply_headers, body, emits, False)

    def _reply_event(self, handler: Handler, event: Event, result: Any, key: str) -> Event | None:
        if result is None:
            return None
        if isinstance(result, Event):
            reply = result
        else:
            reply = self._build_reply(handler, event, result, key)
        if reply.type == event.type:
            raise InternalError("a handler replied with the type of its input event (loop)")
        return reply

    def _build_reply(self, handler: Handler, event: Event, result: Any, key: str) -> Event:
        spec = result if isinstance(result, Reply) else Reply(data=result)
        reply_type = spec.type or handler.reply_type
        if reply_type is None:
            raise InternalError("a handler returned data but declares no reply type")
        return Event(
            type=reply_type,
            source=self.services.settings.event_source,
            id=derived_id(self.app.name, key, "reply"),
            data=spec.data,
            subject=spec.subject if spec.subject is not None else event.subject,
            time=utc_now_rfc3339(),
            datacontenttype=spec.datacontenttype
            or ("application/json" if spec.data is not None else None),
            extensions=dict(spec.extensions),
        )

    def _prepare(self, event: Event) -> tuple[dict[str, str], bytes]:
        try:
            return self.services.emitter.prepare(event)
        except SchemaViolation as violation:
            self.services.logger.error(
                "outgoing event %s violates its schema at %s", event.type, violation.field
            )
            raise InternalError("the function produced an event that violates its schema") from None

    def _encode_for_store(self, event: Event) -> dict[str, Any]:
        headers, body = self._prepare(event)
        return {"type": event.type, "headers": headers, "body": base64.b64encode(body).decode()}

    def _send_emits(self, emits: list[dict[str, Any]], span: EventSpan) -> None:
        services = self.services
        trace_headers = span.context.headers()
        for emitted in emits:
            try:
                services.emitter.send(
                    emitted["headers"], base64.b64decode(emitted["body"]), trace_headers
                )
            except EventfnError:
                services.metrics.count_emit(emitted["type"], "failed")
                raise
            services.metrics.count_emit(emitted["type"], "sent")
