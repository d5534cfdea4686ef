"""What `eventfn dev` prints: one line per hop as it happens, and a summary on exit.

Human lines (colours only on a terminal) or, with `--json`, one JSON object per line whose
`kind` is `ready`, `hop`, `webhook`, `call` (a request to a Service's own address, through the
activator), `cold-start`, `stop`, `message`, `demo` or `summary`.
The printer also keeps the numbers the summary needs, so it sees everything the mesh does.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TextIO

from eventfn.mesh._activator import DirectCall
from eventfn.mesh._records import Hop
from eventfn.mesh._s3_notify import WebhookDelivery
from eventfn.mesh._supervisor import ColdStart
from eventfn.mesh._topology import Topology

_GREEN, _YELLOW, _RED, _DIM, _BOLD, _CYAN, _RESET = (
    "\033[32m",
    "\033[33m",
    "\033[31m",
    "\033[2m",
    "\033[1m",
    "\033[36m",
    "\033[0m",
)
_OUTCOME_COLOURS = {
    "accepted": _GREEN,
    "delivered": _GREEN,
    "reply": _GREEN,
    "retrying": _YELLOW,
    "failed": _RED,
    "dead-lettered": _RED,
    "no-match": _DIM,
    "answered": _GREEN,
}
TYPE_WIDTH = 34


def clock_time(epoch: float) -> str:
    """`HH:MM:SS.mmm` in local time."""
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S.%f")[:-3]


@dataclass(frozen=True)
class _Row:
    at: float
    event_type: str
    route: str
    status: int | None
    outcome: str
    latency_ms: float
    attempt: int
    note: str
    trace_id: str | None


@dataclass
class _FunctionStats:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0


class MeshPrinter:
    """Thread-safe writer of the mesh's output; also the tally behind the summary."""

    def __init__(
        self,
        topology: Topology,
        stream: TextIO | None = None,
        *,
        json_lines: bool = False,
        color: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.json_lines = json_lines
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.color = (not json_lines and isatty()) if color is None else color
        self._lock = threading.Lock()
        self._subscribers = {
            trigger.name: trigger.subscriber_service or trigger.subscriber_uri or "?"
            for trigger in topology.triggers
        }
        self._pending_cold: dict[str, ColdStart] = {}
        self.cold_by_hop: dict[tuple[str, str, int], float] = {}
        self.cold_starts: list[ColdStart] = []
        self.webhooks: list[WebhookDelivery] = []
        self.calls: list[DirectCall] = []
        self._functions: dict[str, _FunctionStats] = defaultdict(_FunctionStats)

    # -- records -----------------------------------------------------------------------------

    def subscriber(self, trigger: str | None) -> str | None:
        """The Service (or URI) a Trigger delivers to."""
        return None if trigger is None else self._subscribers.get(trigger, trigger)

    def hop(self, hop: Hop) -> None:
        """One broker hop (ingress record, delivery attempt, reply, no-match)."""
        function = self.subscriber(hop.trigger) if hop.outcome != "reply" else None
        note = ""
        with self._lock:
            if function is not None and hop.outcome in ("delivered", "retrying", "failed"):
                stats = self._functions[function]
                stats.latencies.append(hop.latency_ms)
                stats.failures += hop.outcome != "delivered"
                cold = self._pending_cold.pop(function, None)
                if cold is not None:
                    self.cold_by_hop[(hop.event_id, hop.trigger or "", hop.attempt)] = cold.seconds
                    note = f"cold start {cold.seconds:.2f} s"
        if self.json_lines:
            self._json({"kind": "hop", **asdict(hop), "function": function, "note": note or None})
            return
        self._line(
            _Row(
                hop.time, hop.event_type, self.route(hop), hop.status, hop.outcome,
                hop.latency_ms, hop.attempt, note, hop.trace_id,
            )
        )  # fmt: skip

    def route(self, hop: Hop) -> str:
        """`source → trigger → function` (or `→ broker`, `→ no subscriber`)."""
        if hop.outcome == "no-match":
            return f"{hop.event_source} → no subscriber"
        if hop.trigger is None:
            return f"{hop.event_source} → broker {hop.destination}"
        if hop.outcome == "reply":
            return f"reply via {hop.trigger} → broker {hop.destination}"
        target = self.subscriber(hop.trigger)
        if hop.outcome == "dead-lettered":
            target = f"dead-letter sink {hop.destination}"
        return f"{hop.event_source} → {hop.trigger} → {target}"

    def webhook(self, delivery: WebhookDelivery, function: str) -> None:
        """One bucket notification POSTed to the storage webhook."""
        note = f"emitted {delivery.emitted}" + (
            f", ignored {delivery.ignored}" if delivery.ignored else ""
        )
        with self._lock:
            self.webhooks.append(delivery)
            stats = self._functions[function]
            stats.latencies.append(delivery.latency_ms)
            stats.failures += delivery.outcome != "delivered"
            cold = self._pending_cold.pop(function, None)
            if cold is not None:
                note += f", cold start {cold.seconds:.2f} s"
        if self.json_lines:
            self._json({"kind": "webhook", **asdict(delivery), "function": function})
            return
        route = f"s3://{delivery.bucket}/{delivery.key} → webhook → {function}"
        self._line(
            _Row(
                delivery.time, delivery.event_name, route, delivery.status, delivery.outcome,
                delivery.latency_ms, delivery.attempt, note, delivery.trace_id,
            )
        )  # fmt: skip

    def call(self, call: DirectCall) -> None:
        """One request to a Service's local address (a direct call, not an event delivery)."""
        note = ""
        with self._lock:
            self.calls.append(call)
            stats = self._functions[call.service]
            stats.latencies.append(call.latency_ms)
            stats.failures += call.status >= 500
            cold = self._pending_cold.pop(call.service, None)
            if cold is not None:
                note = f"cold start {cold.seconds:.2f} s"
        if self.json_lines:
            self._json({"kind": "call", **asdict(call), "note": note or None})
            return
        outcome = "answered" if call.status < 500 else "failed"
        route = f"{call.method} {call.path} → {call.service}"
        self._line(
            _Row(call.time, "direct call", route, call.status, outcome, call.latency_ms, 0, note,
                 call.trace_id)
        )  # fmt: skip

    def cold_start(self, cold: ColdStart) -> None:
        """A function process became ready."""
        with self._lock:
            self.cold_starts.append(cold)
            if cold.reason != "boot":
                self._pending_cold[cold.service] = cold
        if self.json_lines:
            self._json({"kind": "cold-start", **asdict(cold)})
            return
        text = f"{cold.service} ready in {cold.seconds:.2f} s (cold start, {cold.reason})"
        self._write(f"{clock_time(cold.at)}  {self._paint(_CYAN, '❄')} {text}  pid {cold.pid}")

    def stopped(self, service: str, reason: str) -> None:
        """A function process ended (idle, shutdown, exited)."""
        if self.json_lines:
            self._json({"kind": "stop", "service": service, "reason": reason})
            return
        self._write(self._paint(_DIM, f"{clock_time(_now())}  ■ {service} stopped ({reason})"))

    def message(self, text: str) -> None:
        """A line about the mesh itself."""
        if self.json_lines:
            self._json({"kind": "message", "text": text})
        else:
            self._write(text)

    def record(self, kind: str, payload: dict[str, Any], text: str | None = None) -> None:
        """A structured record (`ready`, `demo`): JSON in JSON mode, else `text` if given."""
        if self.json_lines:
            self._json({"kind": kind, **payload})
        elif text is not None:
            self._write(text)

    # -- summary -----------------------------------------------------------------------------

    def summary(self, stats: dict[str, int]) -> None:
        """The exit summary: broker counters, per-function deliveries and cold starts."""
        with self._lock:
            functions = {name: _function_summary(st) for name, st in self._functions.items()}
            colds = [asdict(cold) for cold in self.cold_starts]
        if self.json_lines:
            self._json({"kind": "summary", "broker": stats, "functions": functions,
                        "cold_starts": colds})  # fmt: skip
            return
        lines = [self._paint(_BOLD, "── eventfn dev summary " + "─" * 50)]
        lines.append(
            "events: "
            + " · ".join(f"{key.replace('_', ' ')} {value}" for key, value in stats.items())
        )
        if functions:
            lines.append(f"{'function':<22}{'deliveries':>11}{'errors':>8}{'p50 ms':>9}"
                         f"{'max ms':>9}  cold starts")  # fmt: skip
        for name in sorted(set(functions) | {c["service"] for c in colds}):
            row = functions.get(name, _function_summary(_FunctionStats()))
            starts = [
                f"{c['seconds']:.2f} s ({c['reason']})" for c in colds if c["service"] == name
            ]
            lines.append(f"{name:<22}{row['deliveries']:>11}{row['failed']:>8}"
                         f"{_ms(row['p50_ms']):>9}{_ms(row['max_ms']):>9}  "
                         f"{', '.join(starts) or '-'}")  # fmt: skip
        self._write("\n".join(lines))

    # -- writing -----------------------------------------------------------------------------

    def _line(self, row: _Row) -> None:
        colour = _OUTCOME_COLOURS.get(row.outcome, "")
        status_text = "—" if row.status is None else str(row.status)
        if row.outcome == "no-match":
            status_text = ""
        result = self._paint(colour, f"{status_text:>3} {row.outcome:<13}")
        parts = [clock_time(row.at), f"{row.event_type:<{TYPE_WIDTH}}", row.route, result]
        if row.outcome not in ("no-match", "reply"):
            parts.append(f"{row.latency_ms:7.1f} ms")
        if row.attempt:
            parts.append(f"#{row.attempt}")
        if row.note:
            parts.append(self._paint(_CYAN, f"({row.note})"))
        if row.trace_id:
            parts.append(self._paint(_DIM, f"trace {row.trace_id[:8]}"))
        self._write("  ".join(parts))

    def _paint(self, colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if self.color and colour else text

    def _json(self, record: dict[str, Any]) -> None:
        self._write(json.dumps(record, ensure_ascii=False, default=str))

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()


def _function_summary(stats: _FunctionStats) -> dict[str, Any]:
    latencies = stats.latencies
    return {
        "deliveries": len(latencies),
        "failed": stats.failures,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _now() -> float:
    import time

    return time.time()
