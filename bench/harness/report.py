"""Aggregation (medians over rounds), ratios, target checks, the printed table and the JSON file."""

from __future__ import annotations

import json
import operator
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FF = "functions-framework"
FUNC = "func-python"
RAW = "raw-wsgi"
EVENTFN = "eventfn"
TRACING = "eventfn+tracing"
IDEM_SQLITE = "eventfn+idem-sqlite"
IDEM_PG = "eventfn+idem-pg"


@dataclass
class TargetResult:
    """Everything measured for one target."""

    name: str
    description: str
    notes: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # LoadResult.as_dict per round
    cold_starts_s: list[float] = field(default_factory=list)
    idle_rss_mib: float | None = None
    idle_pss_mib: float | None = None  # informational: shared pages counted once
    invalid_json_status: int | None = None
    error: str | None = None

    def _median(self, key: str) -> float | None:
        values = [run[key] for run in self.runs]
        return statistics.median(values) if values else None

    @property
    def rps(self) -> float | None:
        return self._median("rps")

    @property
    def p50_ms(self) -> float | None:
        return self._median("p50_ms")

    @property
    def p99_ms(self) -> float | None:
        return self._median("p99_ms")

    @property
    def failed(self) -> int:
        return sum(int(run["failed"]) for run in self.runs)

    @property
    def cold_start_s(self) -> float | None:
        return statistics.median(self.cold_starts_s) if self.cold_starts_s else None

    def metrics(self) -> dict[str, float | None]:
        return {
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "cold_start_s": self.cold_start_s,
            "idle_rss_mib": self.idle_rss_mib,
        }


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def ratios(results: dict[str, TargetResult]) -> dict[str, dict[str, dict[str, float | None]]]:
    """target -> {"vs_ff": {metric: ratio}, "vs_raw": {...}}."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, result in results.items():
        entry: dict[str, dict[str, float | None]] = {}
        for label, base_name in (("vs_ff", FF), ("vs_raw", RAW)):
            base = results.get(base_name)
            base_metrics = base.metrics() if base else {}
            entry[label] = {
                key: _ratio(value, base_metrics.get(key)) for key, value in result.metrics().items()
            }
        out[name] = entry
    return out


def _metric(results: dict[str, TargetResult], name: str, key: str) -> float | None:
    result = results.get(name)
    return None if result is None else result.metrics()[key]


def variants(results: dict[str, TargetResult]) -> dict[str, dict[str, float | None]]:
    """eventfn variants against plain eventfn: req/s ratio, overhead % and p50 delta."""
    base_rps = _metric(results, EVENTFN, "rps")
    base_p50 = _metric(results, EVENTFN, "p50_ms")
    out = {}
    for name in (TRACING, IDEM_SQLITE, IDEM_PG):
        rps = _metric(results, name, "rps")
        p50 = _metric(results, name, "p50_ms")
        ratio = _ratio(rps, base_rps)
        out[name] = {
            "rps_ratio": ratio,
            "overhead_pct": None if ratio is None else (1 - ratio) * 100,
            "p50_delta_ms": None if p50 is None or base_p50 is None else p50 - base_p50,
        }
    return out


def checks(results: dict[str, TargetResult]) -> list[dict[str, Any]]:
    """The issue's targets: (name, observed, passed); passed is None when not measurable."""

    def metric(name: str, key: str) -> float | None:
        return _metric(results, name, key)

    def check(label: str, observed: float | None, limit: float | None, fmt: str, ok: Any) -> None:
        measurable = observed is not None and limit is not None
        rows.append(
            {
                "check": label,
                "observed": observed,
                "limit": limit,
                "text": fmt.format(observed, limit) if measurable else "n/a",
                "passed": bool(ok(observed, limit)) if measurable else None,
            }
        )

    rows: list[dict[str, Any]] = []
    rps, ff_rps = metric(EVENTFN, "rps"), metric(FF, "rps")
    ge, le = operator.ge, operator.le
    check(">= 1.3x functions-framework req/s", _ratio(rps, ff_rps), 1.3, "{:.2f}x", ge)
    check(">= func-python req/s", _ratio(rps, metric(FUNC, "rps")), 1.0, "{:.2f}x", ge)
    check(">= 0.8x raw WSGI req/s", _ratio(rps, metric(RAW, "rps")), 0.8, "{:.2f}x", ge)
    overhead = variants(results)[TRACING]["overhead_pct"]
    check("tracing overhead <= 15%", overhead, 15.0, "{:.1f}%", le)
    cold = _ratio(metric(EVENTFN, "cold_start_s"), metric(FF, "cold_start_s"))
    check("cold start <= 0.6x functions-framework", cold, 0.6, "{:.2f}x", le)
    rss, raw_rss = metric(EVENTFN, "idle_rss_mib"), metric(RAW, "idle_rss_mib")
    delta = None if rss is None or raw_rss is None else rss - raw_rss
    check("idle RSS within 10 MiB of raw WSGI", delta, 10.0, "{:+.1f} MiB", le)
    return rows


# --- printing ----------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-".rjust(int(spec.split(".", maxsplit=1)[0]))
    return format(value, spec)


def table(results: dict[str, TargetResult]) -> str:
    """The main table: one row per target."""
    rel = ratios(results)
    header = (
        f"{'target':<20} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cold ms':>8} {'RSS MiB':>8}"
        f" {'rps/ff':>7} {'rps/raw':>7} {'cold/ff':>7} {'cold/raw':>8} {'rss/ff':>6}"
        f" {'rss/raw':>7} {'bad JSON':>8} {'non2xx':>6}"
    )
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        if result.error is not None:
            lines.append(f"{name:<20} ERROR: {result.error.splitlines()[0][:90]}")
            continue
        vs_ff, vs_raw = rel[name]["vs_ff"], rel[name]["vs_raw"]
        cold = result.cold_start_s
        lines.append(
            f"{name:<20} {_fmt(result.rps, '8.0f')} {_fmt(result.p50_ms, '7.2f')}"
            f" {_fmt(result.p99_ms, '7.2f')} {_fmt(None if cold is None else cold * 1000, '8.0f')}"
            f" {_fmt(result.idle_rss_mib, '8.1f')} {_fmt(vs_ff['rps'], '7.2f')}"
            f" {_fmt(vs_raw['rps'], '7.2f')} {_fmt(vs_ff['cold_start_s'], '7.2f')}"
            f" {_fmt(vs_raw['cold_start_s'], '8.2f')} {_fmt(vs_ff['idle_rss_mib'], '6.2f')}"
            f" {_fmt(vs_raw['idle_rss_mib'], '7.2f')}"
            f" {result.invalid_json_status if result.invalid_json_status else '-':>8}"
            f" {result.failed:>6}"
        )
    return "\n".join(lines)


def variant_lines(results: dict[str, TargetResult]) -> list[str]:
    """eventfn tracing / idempotency variants against plain eventfn."""
    lines = []
    for name, entry in variants(results).items():
        if entry["rps_ratio"] is None:
            continue
        lines.append(
            f"  {name:<20} {entry['rps_ratio']:.2f}x eventfn req/s "
            f"(overhead {entry['overhead_pct']:.1f}%), p50 {entry['p50_delta_ms']:+.2f} ms"
        )
    return lines


def check_lines(results: dict[str, TargetResult]) -> list[str]:
    """One line per target check, with a PASS/FAIL/n/a marker (never affects the exit code)."""
    marks = {True: "PASS", False: "FAIL", None: "n/a "}
    return [f"  [{marks[row['passed']]}] {row['check']}: {row['text']}" for row in checks(results)]


def write_json(path: Path, meta: dict[str, Any], results: dict[str, TargetResult]) -> None:
    """All raw runs, medians, ratios and checks as one JSON document."""
    document = {
        "meta": meta,
        "targets": {
            name: {
                "description": r.description,
                "notes": r.notes,
                "error": r.error,
                "median": r.metrics(),
                "runs": r.runs,
                "cold_starts_s": r.cold_starts_s,
                "idle_pss_mib": r.idle_pss_mib,
                "invalid_json_status": r.invalid_json_status,
            }
            for name, r in results.items()
        },
        "ratios": ratios(results),
        "variants": variants(results),
        "checks": checks(results),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
