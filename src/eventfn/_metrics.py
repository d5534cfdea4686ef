"""Prometheus metrics of one function, served on ``/metrics`` of the function's own port.

Metrics (all labelled with ``function``):

- ``eventfn_events_total{type,outcome}``: events handled, by CloudEvent type and outcome;
- ``eventfn_handler_duration_seconds{type}``: handler duration histogram (1 ms to 10 s);
- ``eventfn_emits_total{type,outcome}``: events emitted or replied;
- ``eventfn_idempotent_hits_total{type}``: deliveries answered from the idempotency record;
- ``eventfn_start_duration_seconds``: seconds from process start to ready (cold start).

Label cardinality stays bounded because the caller passes a registered event type or
``"unknown"``, never an arbitrary type taken from a request.

Each `Metrics` owns a `CollectorRegistry` (no process-global state), so apps and tests never see
each other's samples.

Gunicorn with several workers: every worker is a separate process with its own counters, so a
scrape would see one worker only. Set ``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable
directory in the environment *before* gunicorn starts (prometheus_client chooses its file-backed
storage when it is first imported), wipe it at container start, and call
``prometheus_client.multiprocess.mark_process_dead(worker.pid)`` from gunicorn's ``child_exit``
hook. `render` then aggregates the files of all workers through
`prometheus_client.multiprocess.MultiProcessCollector`; the start duration gauge reports the
slowest worker (multiprocess mode ``max``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from eventfn._errors import ConfigurationError

PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN_TYPE = "unknown"
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The metrics of one function; label children are cached per (type, outcome)."""

    def __init__(
        self,
        function: str,
        registry: CollectorRegistry | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`env` (default: the process environment) is read once for PROMETHEUS_MULTIPROC_DIR."""
        self.function = function
        self.registry = CollectorRegistry() if registry is None else registry
        self._scrape_registry = self.registry
        multiproc_dir = (os.environ if env is None else env).get(PROMETHEUS_MULTIPROC_DIR)
        if multiproc_dir:
            if not os.path.isdir(multiproc_dir):
                raise ConfigurationError(
                    f"{PROMETHEUS_MULTIPROC_DIR}={multiproc_dir!r} is not a directory"
                )
            self._scrape_registry = CollectorRegistry()
            MultiProcessCollector(self._scrape_registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
        labels = ("function", "type")
        self._events = Counter(
            "eventfn_events",
            "CloudEvents handled, by type and outcome.",
            (*labels, "outcome"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "eventfn_handler_duration_seconds",
            "Time spent handling one event.",
            labels,
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self._emits = Counter(
            "eventfn_emits",
            "CloudEvents emitted or replied, by type and outcome.",
            (*labels, "outcome"),
            registry=self.registry,
        )
        self._idempotent_hits = Counter(
            "eventfn_idempotent_hits",
            "Deliveries answered from the idempotency record instead of the handler.",
            labels,
            registry=self.registry,
        )
        self._start = Gauge(
            "eventfn_start_duration_seconds",
            "Seconds from process start until the function was ready to serve.",
            ("function",),
            registry=self.registry,
            multiprocess_mode="max",
        )
        self._event_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._emit_children: dict[tuple[str, str], Counter] = {}
        self._hit_children: dict[str, Counter] = {}

    def observe_event(self, event_type: str, outcome: str, seconds: float) -> None:
        """Count one handled event and observe its handler duration."""
        key = (event_type, outcome)
        children = self._event_children.get(key)
        if children is None:
            children = (
                self._events.labels(self.function, event_type, outcome),
                self._duration.labels(self.function, event_type),
            )
            self._event_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_emit(self, event_type: str, outcome: str) -> None:
        """Count one emitted or replied event."""
        key = (event_type, outcome)
        child = self._emit_children.get(key)
        if child is None:
            child = self._emits.labels(self.function, event_type, outcome)
            self._emit_children[key] = child
        child.inc()

    def count_idempotent_hit(self, event_type: str) -> None:
        """Count one delivery answered from the idempotency record."""
        child = self._hit_children.get(event_type)
        if child is None:
            child = self._idempotent_hits.labels(self.function, event_type)
            self._hit_children[event_type] = child
        child.inc()

    def count_cold_start(self, seconds: float) -> None:
        """Record how long the process took from start to ready."""
        self._start.labels(self.function).set(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition body for ``/metrics`` and its content type."""
        return generate_latest(self._scrape_registry), CONTENT_TYPE_LATEST
