"""W3C trace context parsing, the disabled (propagate-only) tracer and the OpenTelemetry tracer."""

from __future__ import annotations

import subprocess
import sys
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

from eventfn._errors import ConfigurationError
from eventfn._tracing import (
    EVENTFN_TRACING,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
    TRACEPARENT,
    TRACESTATE,
    EventSpan,
    TraceContext,
    Tracer,
    parse_traceparent,
    tracer_from_env,
    traces_endpoint,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
ATTRIBUTES = {
    "id": "evt-1",
    "source": "/storage/bucket",
    "type": "eventfn.storage.object.created.v1",
    "subject": "documents/a.pdf",
    "specversion": "1.0",
}


def _is_id(value: str, length: int) -> bool:
    return len(value) == length and value.strip("0123456789abcdef") == "" and value.strip("0") != ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VALID, (TRACE_ID, PARENT_ID, True)),
        (f"00-{TRACE_ID}-{PARENT_ID}-00", (TRACE_ID, PARENT_ID, False)),
        (f"00-{TRACE_ID}-{PARENT_ID}-03", (TRACE_ID, PARENT_ID, True)),
        (f" {VALID}\t", (TRACE_ID, PARENT_ID, True)),
        (f"01-{TRACE_ID}-{PARENT_ID}-01", None),
        (f"ff-{TRACE_ID}-{PARENT_ID}-01", None),
        (f"00-{'0' * 32}-{PARENT_ID}-01", None),
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),
        (f"00-{TRACE_ID[:-1]}g-{PARENT_ID}-01", None),
        (f"00-{TRACE_ID}-{PARENT_ID}-0x", None),
        (f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", None),
        (f"00-{TRACE_ID}0-{PARENT_ID}-01", None),
        (f"00-{TRACE_ID}-{PARENT_ID[:-1]}-01", None),
        (f"00-{TRACE_ID}-{PARENT_ID}-1", None),
        (f"00-{TRACE_ID}-{PARENT_ID}-01-extra", None),
        (f"00_{TRACE_ID}_{PARENT_ID}_01", None),
        (f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", None),
        (f"00-{TRACE_ID}-{PARENT_ID.upper()}-01", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_traceparent(value: str | None, expected: tuple[str, str, bool] | None) -> None:
    assert parse_traceparent(value) == expected


def test_trace_context_headers() -> None:
    sampled = TraceContext(TRACE_ID, PARENT_ID, True, None)
    assert sampled.headers() == {TRACEPARENT: VALID}
    unsampled = TraceContext(TRACE_ID, PARENT_ID, False, "a=1,b=2")
    assert unsampled.headers() == {
        TRACEPARENT: f"00-{TRACE_ID}-{PARENT_ID}-00",
        TRACESTATE: "a=1,b=2",
    }


# --- tracing disabled: propagate only -------------------------------------------------------------


def _disabled_context(headers: dict[str, str]) -> TraceContext:
    tracer = Tracer("fn", enabled=False)
    with tracer.event_span(ATTRIBUTES, headers) as span:
        assert isinstance(span, EventSpan)
        span.set_outcome(200, "ok")
        span.record_error("ValueError")
        return span.context


def test_disabled_continues_incoming_trace_with_new_span_id() -> None:
    context = _disabled_context({"TraceParent": VALID, "TRACESTATE": "vendor=abc, other=1"})
    assert context.trace_id == TRACE_ID
    assert _is_id(context.span_id, 16)
    assert context.span_id != PARENT_ID
    assert context.sampled is True
    assert context.tracestate == "vendor=abc,other=1"
    assert context.headers()[TRACEPARENT] == f"00-{TRACE_ID}-{context.span_id}-01"


def test_disabled_keeps_unsampled_flag() -> None:
    context = _disabled_context({TRACEPARENT: f"00-{TRACE_ID}-{PARENT_ID}-00"})
    assert (context.trace_id, context.sampled, context.tracestate) == (TRACE_ID, False, None)


def test_disabled_starts_new_unsampled_trace_without_header() -> None:
    first = _disabled_context({"content-type": "application/json"})
    second = _disabled_context({})
    for context in (first, second):
        assert _is_id(context.trace_id, 32)
        assert _is_id(context.span_id, 16)
        assert context.sampled is False
        assert context.tracestate is None
    assert first.trace_id != second.trace_id
    assert first.headers() == {TRACEPARENT: f"00-{first.trace_id}-{first.span_id}-00"}


def test_disabled_invalid_traceparent_starts_new_trace_and_drops_tracestate() -> None:
    context = _disabled_context({TRACEPARENT: f"00-{'0' * 32}-{PARENT_ID}-01", TRACESTATE: "a=1"})
    assert context.trace_id != "0" * 32
    assert _is_id(context.trace_id, 32)
    assert context.tracestate is None


@pytest.mark.parametrize(
    "tracestate", ["", " , ", "novalue", ",".join(f"k{i}=v" for i in range(33))]
)
def test_disabled_drops_malformed_tracestate(tracestate: str) -> None:
    context = _disabled_context({TRACEPARENT: VALID, TRACESTATE: tracestate})
    assert context.trace_id == TRACE_ID
    assert context.tracestate is None


def test_disabled_tracer_never_imports_the_sdk() -> None:
    script = (
        "import sys\n"
        "from eventfn._tracing import Tracer\n"
        "tracer = Tracer('fn', enabled=False)\n"
        f"with tracer.event_span({{'type': 't'}}, {{'traceparent': '{VALID}'}}) as span:\n"
        "    span.set_outcome(500, 'error')\n"
        "assert not tracer.enabled\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


# --- tracing enabled ------------------------------------------------------------------------------


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
    assert _is_id(context.trace_id, 32)
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


# --- configuration from the environment -----------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318"}, True),
        ({OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces"}, True),
        ({EVENTFN_TRACING: "auto", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, True),
        ({EVENTFN_TRACING: "", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, True),
        ({EVENTFN_TRACING: "off", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, False),
        ({EVENTFN_TRACING: " ON "}, True),
        ({OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, False),
    ],
)
def test_tracer_from_env_modes(env: dict[str, str], enabled: bool) -> None:
    tracer = tracer_from_env("fn", env)
    try:
        assert tracer.enabled is enabled
    finally:
        tracer.shutdown()


def test_tracer_from_env_rejects_unknown_mode() -> None:
    with pytest.raises(ConfigurationError, match=EVENTFN_TRACING):
        tracer_from_env("fn", {EVENTFN_TRACING: "yes"})


def test_tracer_from_env_service_name() -> None:
    assert tracer_from_env("fn", {}).service_name == "fn"
    assert tracer_from_env("fn", {OTEL_SERVICE_NAME: "billing"}).service_name == "billing"


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, None),
        ({OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, "http://c:4318/v1/traces"),
        ({OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/otlp/"}, "http://c:4318/otlp/v1/traces"),
        (
            {
                OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
                OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:4318/custom",
            },
            "http://t:4318/custom",
        ),
    ],
)
def test_traces_endpoint(env: dict[str, str], endpoint: str | None) -> None:
    assert traces_endpoint(env) == endpoint
