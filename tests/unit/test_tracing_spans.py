"""The OpenTelemetry tracer: the spans it records and their export over OTLP/HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tracing_testing import ATTRIBUTES, PARENT_ID, TRACE_ID, VALID, is_id

from eventfn._errors import ConfigurationError
from eventfn._tracing import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_SDK_DISABLED,
    TRACEPARENT,
    TRACESTATE,
    TraceContext,
    Tracer,
    tracer_from_env,
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    tracer = Tracer("csv-ingest", enabled=True, span_processor=SimpleSpanProcessor(exporter))
    yield tracer
    tracer.shutdown()


def _only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1
    return spans[0]


def test_enabled_span_continues_remote_parent(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    assert tracer.enabled
    headers = {"Traceparent": VALID, "Tracestate": "vendor=abc"}
    with tracer.event_span(ATTRIBUTES, headers) as event_span:
        assert trace.get_current_span().get_span_context().trace_id == int(TRACE_ID, 16)
        event_span.set_outcome(200, "ok")
        context = event_span.context
    assert trace.get_current_span() is trace.INVALID_SPAN
    span = _only_span(exporter)
    assert span.name == "eventfn.storage.object.created.v1 process"
    assert span.kind is SpanKind.SERVER
    assert span.parent is not None
    assert span.parent.is_remote
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert dict(span.attributes or {}) == {
        "cloudevents.event_id": "evt-1",
        "cloudevents.event_source": "/storage/bucket",
        "cloudevents.event_type": "eventfn.storage.object.created.v1",
        "cloudevents.event_subject": "documents/a.pdf",
        "cloudevents.event_spec_version": "1.0",
        "http.response.status_code": 200,
        "eventfn.outcome": "ok",
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "csv-ingest"
    assert context == TraceContext(TRACE_ID, f"{span.context.span_id:016x}", True, "vendor=abc")
    assert context.headers()[TRACESTATE] == "vendor=abc"


def test_enabled_span_starts_new_trace_without_header(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    attributes = {"id": "1", "source": "/s", "type": "t.v1", "subject": None}
    with tracer.event_span(attributes, {}) as event_span:
        context = event_span.context
    span = _only_span(exporter)
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" == context.trace_id
    assert is_id(context.trace_id, 32)
    assert "cloudevents.event_subject" not in (span.attributes or {})


def test_enabled_span_ignores_traceparent_the_strict_parser_refuses(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    future_version = f"01-{TRACE_ID}-{PARENT_ID}-01"
    with tracer.event_span(ATTRIBUTES, {TRACEPARENT: future_version, TRACESTATE: "a=1"}):
        pass
    span = _only_span(exporter)
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" != TRACE_ID


def test_enabled_5xx_outcome_sets_error_status_with_type_only(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.event_span(ATTRIBUTES, {TRACEPARENT: VALID}) as event_span:
        event_span.record_error("DependencyUnavailable")
        event_span.set_outcome(503, "retryable")
    span = _only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "DependencyUnavailable"
    attributes = span.attributes or {}
    assert attributes["http.response.status_code"] == 503
    assert attributes["eventfn.outcome"] == "retryable"
    assert attributes["error.type"] == "DependencyUnavailable"
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("exception", {"exception.type": "DependencyUnavailable"})
    ]


def test_enabled_4xx_outcome_is_not_a_server_error(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.event_span(ATTRIBUTES, {}) as event_span:
        event_span.set_outcome(422, "permanent")
        event_span.record_error("SchemaViolation")
    span = _only_span(exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["error.type"] == "SchemaViolation"


def test_enabled_escaping_exception_records_type_not_message(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(RuntimeError), tracer.event_span(ATTRIBUTES, {}):
        raise RuntimeError("card number 4111 1111 1111 1111")
    span = _only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError"
    assert (span.attributes or {})["error.type"] == "RuntimeError"
    assert "4111" not in repr(span.to_json())
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_shutdown_flushes_batched_spans(exporter: InMemorySpanExporter) -> None:
    tracer = Tracer("fn", enabled=True, span_processor=BatchSpanProcessor(exporter))
    with tracer.event_span(ATTRIBUTES, {}):
        pass
    tracer.shutdown()
    assert len(exporter.get_finished_spans()) == 1


def test_otel_sdk_disabled_falls_back_to_propagation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OTEL_SDK_DISABLED, "true")
    exporter = InMemorySpanExporter()
    tracer = Tracer("fn", enabled=True, span_processor=SimpleSpanProcessor(exporter))
    assert not tracer.enabled
    with tracer.event_span(ATTRIBUTES, {TRACEPARENT: VALID}) as event_span:
        assert event_span.context.trace_id == TRACE_ID
    assert exporter.get_finished_spans() == ()


def test_invalid_otlp_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Tracer("fn", enabled=True, otlp_endpoint="collector:4318")


# --- OTLP export to a real loopback collector -----------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.path, self.headers["Content-Type"], self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_env_endpoint_exports_spans_over_otlp_http(
    collector: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, received = collector
    tracer = tracer_from_env("fn", {OTEL_EXPORTER_OTLP_ENDPOINT: url + "/"})
    assert tracer.enabled
    with tracer.event_span(ATTRIBUTES, {TRACEPARENT: VALID}) as event_span:
        event_span.set_outcome(200, "ok")
    tracer.shutdown()
    assert [(path, kind) for path, kind, _ in received] == [
        ("/v1/traces", "application/x-protobuf")
    ]
    request = ExportTraceServiceRequest.FromString(received[0][2])
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [(s.name, s.trace_id.hex(), s.parent_span_id.hex()) for s in spans] == [
        ("eventfn.storage.object.created.v1 process", TRACE_ID, PARENT_ID)
    ]
