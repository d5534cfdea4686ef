"""W3C trace context and one OpenTelemetry span per event, kept cheap.

Every event runs inside `Tracer.event_span`, which continues the trace of the request's
``traceparent``/``tracestate`` HTTP headers (or starts a new trace) and yields an `EventSpan`
whose `TraceContext` goes on replies and emitted events (``span.context.headers()``) and into
the logs (``span.context.trace_id``).

- Tracing disabled: no OpenTelemetry object is created or even imported. A small W3C parser
  keeps the incoming trace id (and sampled flag and tracestate) and makes a fresh span id for
  this hop, so trace ids still flow through logs and replies. A new trace started here is not
  sampled (flags ``00``): nothing was recorded for it.
- Tracing enabled: an SDK `TracerProvider` owned by the Tracer (the global provider is never
  set) creates one SERVER span per event, named ``"<type> process"``, with the CloudEvents
  attributes of the OpenTelemetry semantic conventions. Spans go to an OTLP/HTTP exporter
  behind a `BatchSpanProcessor` when an endpoint is given, and nowhere otherwise. No WSGI or
  Flask auto-instrumentation is used: it cost about a third of the throughput.

`tracer_from_env` reads `EVENTFN_TRACING` (``on``, ``off`` or ``auto``; ``auto`` means on when an
OTLP endpoint is configured and ``OTEL_SDK_DISABLED`` is not ``true``). The OTLP exporter and the
SDK themselves still read their standard variables (``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_TRACES_SAMPLER``, ``OTEL_RESOURCE_ATTRIBUTES``, ...) from
the process environment when the Tracer is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from eventfn._errors import ConfigurationError
from eventfn._logging import get_logger

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.trace import Span

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

EVENTFN_TRACING = "EVENTFN_TRACING"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
TRACING_MODES = ("on", "off", "auto")
_TRACES_PATH = "v1/traces"

_TRACEPARENT_RE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16
_MAX_TRACESTATE_MEMBERS = 32
# CloudEvent attribute -> span attribute (OpenTelemetry semantic conventions for CloudEvents).
_SPAN_ATTRIBUTES = (
    ("id", "cloudevents.event_id"),
    ("source", "cloudevents.event_source"),
    ("type", "cloudevents.event_type"),
    ("subject", "cloudevents.event_subject"),
    ("specversion", "cloudevents.event_spec_version"),
)

_log = get_logger("eventfn.tracing")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The W3C trace context of the current hop; `span_id` is this hop's span."""

    trace_id: str
    span_id: str
    sampled: bool
    tracestate: str | None

    def headers(self) -> dict[str, str]:
        """The ``traceparent`` (and ``tracestate``) headers for a reply or an emitted event."""
        flags = "01" if self.sampled else "00"
        headers = {TRACEPARENT: f"00-{self.trace_id}-{self.span_id}-{flags}"}
        if self.tracestate:
            headers[TRACESTATE] = self.tracestate
        return headers


def parse_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    """``(trace_id, parent_span_id, sampled)`` of a version-00 traceparent, None if invalid."""
    if value is None:
        return None
    match = _TRACEPARENT_RE.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    return trace_id, span_id, int(flags, 16) & 1 == 1


def _clean_tracestate(value: str | None) -> str | None:
    """The tracestate list without empty members; None when absent or malformed (W3C 3.3)."""
    if not value:
        return None
    members = [member.strip(" \t") for member in value.split(",")]
    members = [member for member in members if member]
    if not members or len(members) > _MAX_TRACESTATE_MEMBERS:
        return None
    if any("=" not in member for member in members):
        return None
    return ",".join(members)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header `name` (lower case) from a mapping whose keys may use any case."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    if value is None:
        for key, item in headers.items():
            if key.lower() == name:
                return item
    return value


def _new_id(size: int) -> str:
    while True:
        value = os.urandom(size).hex()
        if value.strip("0"):
            return value


def continue_trace(headers: Mapping[str, str]) -> TraceContext:
    """A new hop of the trace in `headers`, or the first hop of a new, unsampled trace."""
    parsed = parse_traceparent(_header(headers, TRACEPARENT))
    if parsed is None:
        return TraceContext(_new_id(16), _new_id(8), False, None)
    trace_id, _parent, sampled = parsed
    return TraceContext(
        trace_id, _new_id(8), sampled, _clean_tracestate(_header(headers, TRACESTATE))
    )


class EventSpan:
    """The span of one event. This base class records nothing (tracing disabled)."""

    __slots__ = ("context",)

    def __init__(self, context: TraceContext) -> None:
        self.context = context

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def set_outcome(self, http_status: int, outcome: str) -> None:
        """Record the HTTP status answered and eventfn's outcome name; 5xx marks an error."""

    def record_error(self, error_type: str) -> None:
        """Record the exception class name of a failure (never its message: it may hold data)."""


class _Otel:
    """The OpenTelemetry objects of one enabled Tracer, imported only when tracing is on."""

    def __init__(
        self,
        service_name: str,
        otlp_endpoint: str | None,
        span_processor: SpanProcessor | None,
    ) -> None:
        from opentelemetry import context, trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: service_name})
        )
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            exporter = OTLPSpanExporter(endpoint=otlp_endpoint)
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        if span_processor is not None:
            self.provider.add_span_processor(span_processor)
        self.tracer = self.provider.get_tracer("eventfn")
        self.noop = isinstance(self.tracer, trace.NoOpTracer)
        self.propagator = TraceContextTextMapPropagator()
        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context = trace.set_span_in_context
        self.server = trace.SpanKind.SERVER
        self.error = trace.StatusCode.ERROR
        self.status = trace.Status


class _RecordingEventSpan(EventSpan):
    """An EventSpan backed by an OpenTelemetry SDK span; started on enter, ended on exit."""

    __slots__ = (
        "_attributes",
        "_carrier",
        "_error_type",
        "_http_status",
        "_otel",
        "_span",
        "_token",
    )
    _span: Span
    _token: Token[Context]

    def __init__(self, otel: _Otel, attributes: dict[str, str], carrier: dict[str, str]) -> None:
        self._otel = otel
        self._attributes = attributes
        self._carrier = carrier
        self._http_status = 0
        self._error_type: str | None = None

    def __enter__(self) -> Self:
        otel = self._otel
        parent = otel.propagator.extract(self._carrier)
        name = f"{self._attributes.get('cloudevents.event_type', 'unknown')} process"
        span = otel.tracer.start_span(
            name, context=parent, kind=otel.server, attributes=self._attributes
        )
        self._span = span
        self._token = otel.attach(otel.set_span_in_context(span, parent))
        span_context = span.get_span_context()
        trace_state = span_context.trace_state.to_header()
        self.context = TraceContext(
            f"{span_context.trace_id:032x}",
            f"{span_context.span_id:016x}",
            span_context.trace_flags.sampled,
            trace_state or None,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        otel = self._otel
        span = self._span
        try:
            if exc_type is not None:
                self.record_error(exc_type.__name__)
                span.set_status(otel.status(otel.error, exc_type.__name__))
            elif self._http_status >= 500:
                span.set_status(otel.status(otel.error, self._error_type))
        finally:
            otel.detach(self._token)
            span.end()

    def set_outcome(self, http_status: int, outcome: str) -> None:
        self._http_status = http_status
        self._span.set_attribute("http.response.status_code", http_status)
        self._span.set_attribute("eventfn.outcome", outcome)

    def record_error(self, error_type: str) -> None:
        self._error_type = error_type
        self._span.set_attribute("error.type", error_type)
        self._span.add_event("exception", {"exception.type": error_type})


class Tracer:
    """Creates the span of each event; owns its TracerProvider when enabled."""

    def __init__(
        self,
        service_name: str,
        *,
        enabled: bool,
        otlp_endpoint: str | None = None,
        span_processor: SpanProcessor | None = None,
    ) -> None:
        self.service_name = service_name
        self._otel: _Otel | None = None
        if not enabled:
            return
        if otlp_endpoint and not otlp_endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"OTLP endpoint {otlp_endpoint!r} is not an http:// or https:// URL"
            )
        otel = _Otel(service_name, otlp_endpoint, span_processor)
        if otel.noop:
            otel.provider.shutdown()
            _log.info("tracing disabled by %s; propagating trace context only", OTEL_SDK_DISABLED)
            return
        if not otlp_endpoint and span_processor is None:
            _log.warning("tracing is on but no OTLP endpoint is set: spans are not exported")
        self._otel = otel

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded (False: trace context is only propagated)."""
        return self._otel is not None

    def event_span(
        self, attributes: Mapping[str, str | None], headers: Mapping[str, str]
    ) -> AbstractContextManager[EventSpan]:
        """The span of one event, continuing the trace in `headers` or starting a new one.

        `attributes` are the CloudEvent attributes (id, source, type, subject, specversion);
        `headers` are the request's HTTP headers, looked up case-insensitively.
        """
        otel = self._otel
        if otel is None:
            return EventSpan(continue_trace(headers))
        span_attributes = {}
        for name, key in _SPAN_ATTRIBUTES:
            value = attributes.get(name)
            if value is not None:
                span_attributes[key] = value
        return _RecordingEventSpan(otel, span_attributes, _carrier(headers))

    def shutdown(self) -> None:
        """Export the spans still queued and stop the exporter."""
        if self._otel is not None:
            self._otel.provider.shutdown()


def _carrier(headers: Mapping[str, str]) -> dict[str, str]:
    """The propagator's carrier: only a valid traceparent, and tracestate only alongside it."""
    traceparent = _header(headers, TRACEPARENT)
    if traceparent is None or parse_traceparent(traceparent) is None:
        return {}
    carrier = {TRACEPARENT: traceparent.strip(" \t")}
    tracestate = _clean_tracestate(_header(headers, TRACESTATE))
    if tracestate is not None:
        carrier[TRACESTATE] = tracestate
    return carrier


def traces_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL: the traces-specific variable as is, else base + /v1/traces."""
    specific = env.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "").strip()
    if specific:
        return specific
    base = env.get(OTEL_EXPORTER_OTLP_ENDPOINT, "").strip()
    if not base:
        return None
    return f"{base.rstrip('/')}/{_TRACES_PATH}"


def tracer_from_env(service_name: str, env: Mapping[str, str]) -> Tracer:
    """The Tracer configured by `env` (see the module docstring); ConfigurationError if invalid.

    The service name is ``OTEL_SERVICE_NAME`` when set, else `service_name`.
    """
    mode = env.get(EVENTFN_TRACING, "auto").strip().lower() or "auto"
    if mode not in TRACING_MODES:
        raise ConfigurationError(
            f"{EVENTFN_TRACING}={env[EVENTFN_TRACING]!r} is not one of {', '.join(TRACING_MODES)}"
        )
    endpoint = traces_endpoint(env)
    sdk_disabled = env.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"
    enabled = mode == "on" or (mode == "auto" and endpoint is not None and not sdk_disabled)
    name = env.get(OTEL_SERVICE_NAME, "").strip() or service_name
    return Tracer(name, enabled=enabled, otlp_endpoint=endpoint if enabled else None)
