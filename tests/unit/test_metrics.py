"""Prometheus metrics: names, labels, buckets, isolation and gunicorn multiprocess aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from eventfn._errors import ConfigurationError
from eventfn._metrics import DURATION_BUCKETS, PROMETHEUS_MULTIPROC_DIR, Metrics

TYPE = "eventfn.order.confirmed.v1"


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return _samples(metrics).get((name, frozenset(labels.items())))


def test_events_counter_by_type_and_outcome() -> None:
    metrics = Metrics("inventory-updater", env={})
    metrics.observe_event(TYPE, "ok", 0.01)
    metrics.observe_event(TYPE, "ok", 0.02)
    metrics.observe_event(TYPE, "retryable", 0.5)
    metrics.observe_event("unknown", "permanent", 0.001)
    name = "eventfn_events_total"
    fn = "inventory-updater"
    assert _value(metrics, name, function=fn, type=TYPE, outcome="ok") == 2
    assert _value(metrics, name, function=fn, type=TYPE, outcome="retryable") == 1
    assert _value(metrics, name, function=fn, type="unknown", outcome="permanent") == 1
    assert _value(metrics, name, function=fn, type="unknown", outcome="ok") is None


def test_handler_duration_histogram() -> None:
    metrics = Metrics("fn", env={})
    metrics.observe_event(TYPE, "ok", 0.003)
    metrics.observe_event(TYPE, "permanent", 0.2)
    metrics.observe_event(TYPE, "ok", 30.0)
    samples = _samples(metrics)
    prefix = "eventfn_handler_duration_seconds"

    def bucket(le: str) -> float:
        labels = frozenset({"function": "fn", "type": TYPE, "le": le}.items())
        return samples[(f"{prefix}_bucket", labels)]

    assert (bucket("0.001"), bucket("0.005"), bucket("0.25"), bucket("10.0")) == (0, 1, 2, 2)
    assert bucket("+Inf") == 3
    labels = frozenset({"function": "fn", "type": TYPE}.items())
    assert samples[(f"{prefix}_count", labels)] == 3
    assert samples[(f"{prefix}_sum", labels)] == pytest.approx(30.203)
    assert DURATION_BUCKETS[0] == 0.001
    assert DURATION_BUCKETS[-1] == 10.0


def test_emits_idempotent_hits_and_start_duration() -> None:
    metrics = Metrics("fn", env={})
    metrics.count_emit("eventfn.inventory.updated.v1", "sent")
    metrics.count_emit("eventfn.inventory.updated.v1", "sent")
    metrics.count_emit("eventfn.inventory.updated.v1", "failed")
    metrics.count_idempotent_hit(TYPE)
    metrics.count_cold_start(1.25)
    updated = "eventfn.inventory.updated.v1"
    assert _value(metrics, "eventfn_emits_total", function="fn", type=updated, outcome="sent") == 2
    assert (
        _value(metrics, "eventfn_emits_total", function="fn", type=updated, outcome="failed") == 1
    )
    assert _value(metrics, "eventfn_idempotent_hits_total", function="fn", type=TYPE) == 1
    assert _value(metrics, "eventfn_start_duration_seconds", function="fn") == 1.25


def test_render_content_type_and_help_text() -> None:
    metrics = Metrics("fn", env={})
    metrics.observe_event(TYPE, "ok", 0.01)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    text = body.decode()
    assert "# TYPE eventfn_events_total counter" in text
    assert "# TYPE eventfn_handler_duration_seconds histogram" in text


def test_registries_are_isolated() -> None:
    first = Metrics("fn", env={})
    second = Metrics("fn", env={})
    first.observe_event(TYPE, "ok", 0.01)
    assert _value(first, "eventfn_events_total", function="fn", type=TYPE, outcome="ok") == 1
    assert _value(second, "eventfn_events_total", function="fn", type=TYPE, outcome="ok") is None


def test_given_registry_receives_the_metrics() -> None:
    registry = CollectorRegistry()
    metrics = Metrics("fn", registry, env={})
    metrics.count_idempotent_hit(TYPE)
    labels = {"function": "fn", "type": TYPE}
    assert registry.get_sample_value("eventfn_idempotent_hits_total", labels) == 1


def test_missing_multiprocess_dir_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=PROMETHEUS_MULTIPROC_DIR):
        Metrics("fn", env={PROMETHEUS_MULTIPROC_DIR: str(tmp_path / "missing")})


_WORKER = """
import sys
from eventfn._metrics import Metrics
metrics = Metrics("fn")
for _ in range(int(sys.argv[1])):
    metrics.observe_event("t.v1", "ok", 0.004)
metrics.count_emit("r.v1", "sent")
metrics.count_cold_start(float(sys.argv[2]))
"""


def test_multiprocess_render_aggregates_every_worker(tmp_path: Path) -> None:
    env = {**os.environ, PROMETHEUS_MULTIPROC_DIR: str(tmp_path)}
    for count, start in (("2", "0.5"), ("3", "1.5")):
        subprocess.run(
            [sys.executable, "-c", _WORKER, count, start], env=env, check=True, timeout=60
        )
    metrics = Metrics("fn", env={PROMETHEUS_MULTIPROC_DIR: str(tmp_path)})
    metrics.observe_event("t.v1", "ok", 0.004)  # this process is not file-backed: not rendered
    events = _value(metrics, "eventfn_events_total", function="fn", type="t.v1", outcome="ok")
    assert events == 5
    emits = _value(metrics, "eventfn_emits_total", function="fn", type="r.v1", outcome="sent")
    assert emits == 2
    duration = "eventfn_handler_duration_seconds_count"
    assert _value(metrics, duration, function="fn", type="t.v1") == 5
    assert _value(metrics, "eventfn_start_duration_seconds", function="fn") == 1.5
