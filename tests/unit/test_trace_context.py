"""W3C trace context parsing and the disabled (propagate-only) tracer."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tracing_testing import ATTRIBUTES, PARENT_ID, TRACE_ID, VALID, is_id

from eventfn._tracing import (
    TRACEPARENT,
    TRACESTATE,
    EventSpan,
    TraceContext,
    Tracer,
    parse_traceparent,
)


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
    assert is_id(context.span_id, 16)
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
        assert is_id(context.trace_id, 32)
        assert is_id(context.span_id, 16)
        assert context.sampled is False
        assert context.tracestate is None
    assert first.trace_id != second.trace_id
    assert first.headers() == {TRACEPARENT: f"00-{first.trace_id}-{first.span_id}-00"}


def test_disabled_invalid_traceparent_starts_new_trace_and_drops_tracestate() -> None:
    context = _disabled_context({TRACEPARENT: f"00-{'0' * 32}-{PARENT_ID}-01", TRACESTATE: "a=1"})
    assert context.trace_id != "0" * 32
    assert is_id(context.trace_id, 32)
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
