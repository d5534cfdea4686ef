"""The emitter against a loopback broker: retries, refusals, trace headers, validation."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from eventfn import DependencyUnavailable, Event, SchemaViolation
from eventfn._emitter import EmitRefused, Emitter
from eventfn._schemas import SchemaRegistry

from .conftest import ROOT, Sink

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def _emitter(url: str | None, **kw: object) -> tuple[Emitter, list[float]]:
    sleeps: list[float] = []
    registry = SchemaRegistry.from_directory(ROOT / "schemas")
    emitter = Emitter(url, registry=registry, sleep=sleeps.append, **kw)  # type: ignore[arg-type]
    return emitter, sleeps


def _event() -> Event:
    return Event.new(
        "eventfn.echo.recorded.v1", "/tests", {"message_id": "m1", "source_event": "/s/1"}
    )


def test_emit_sends_binary_mode_with_dataschema_and_trace(sink: Sink) -> None:
    emitter, _ = _emitter(sink.url)
    emitter.emit(_event(), TRACE)
    headers, _body = sink.received[0]
    assert headers["ce-type"] == "eventfn.echo.recorded.v1"
    assert headers["ce-dataschema"]
    assert headers["traceparent"] == TRACE["traceparent"]
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("status", [500, 503, 429, 404, 409, 408])
def test_retryable_statuses_are_retried_with_backoff(sink: Sink, status: int) -> None:
    emitter, sleeps = _emitter(sink.url, retries=3)
    sink.statuses.extend([status, status])
    emitter.emit(_event())
    assert len(sink.received) == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9


def test_permanent_refusal_is_not_retried(sink: Sink) -> None:
    emitter, sleeps = _emitter(sink.url)
    sink.statuses.append(400)
    with pytest.raises(EmitRefused):
        emitter.emit(_event())
    assert len(sink.received) == 1 and sleeps == []


def test_exhausted_retries_raise_dependency_unavailable(sink: Sink) -> None:
    emitter, sleeps = _emitter(sink.url, retries=2)
    sink.statuses.extend([503, 503, 503])
    with pytest.raises(DependencyUnavailable):
        emitter.emit(_event())
    assert len(sink.received) == 3 and len(sleeps) == 2


def test_connection_refused_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emitter, sleeps = _emitter(f"http://127.0.0.1:{port}/", retries=2, timeout=1.0)
    with pytest.raises(DependencyUnavailable):
        emitter.emit(_event())
    assert len(sleeps) == 2


def test_invalid_event_is_refused_before_sending(sink: Sink) -> None:
    emitter, _ = _emitter(sink.url)
    bad = Event.new("eventfn.echo.recorded.v1", "/tests", {"message_id": 5})
    with pytest.raises(SchemaViolation):
        emitter.emit(bad)
    assert sink.received == []


def test_no_sink_is_a_retryable_configuration_gap(tmp_path: Path) -> None:
    emitter, _ = _emitter(None)
    with pytest.raises(DependencyUnavailable, match="K_SINK"):
        emitter.emit(_event())
