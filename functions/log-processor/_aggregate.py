"""Per-minute aggregation: counts per dimension value and latency percentiles.

Percentiles use the nearest-rank definition: p-th percentile = the smallest sample such that
at least p % of the samples are <= it (sorted[ceil(p/100 * n) - 1]); it is always an observed
value. They are exact while a (minute, value) bucket holds at most `RESERVOIR_SIZE` (100 000)
latencies. Beyond that the bucket keeps a uniform random sample of that size (reservoir
sampling, Vitter's algorithm R) and the percentiles are estimates from it, so memory stays
bounded by buckets x RESERVOIR_SIZE x 8 bytes (latencies are kept in `array("d")`). The
reservoir's generator is seeded from the object's key, ETag, minute and value: reprocessing a
file gives the same estimates, which keeps the log_metrics upsert idempotent. Counts are
always exact.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._formats import ParsedLine

RESERVOIR_SIZE = 100_000
PERCENTILES = (50, 95, 99)


def percentile(ordered: list[float], p: int) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, -(-p * len(ordered) // 100))  # ceil(p * n / 100), at least 1
    return ordered[rank - 1]


class Reservoir:
    """Every value up to `size`, then a uniform sample of `size` of all values seen."""

    def __init__(self, size: int, seed: str) -> None:
        self.size = size
        self.seen = 0
        self.values = array("d")  # 8 bytes a value, a quarter of a list of floats
        self._seed = seed
        self._random: random.Random | None = None

    def add(self, value: float) -> None:
        """Offer one value."""
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        if self._random is None:
            self._random = random.Random(self._seed)
        slot = self._random.randrange(self.seen)
        if slot < self.size:
            self.values[slot] = value

    @property
    def exact(self) -> bool:
        """True while every value seen is kept."""
        return self.seen <= self.size

    def percentiles(self) -> tuple[float, ...]:
        """p50, p95, p99 of the kept values (rounded to microseconds)."""
        ordered = sorted(self.values)
        return tuple(round(percentile(ordered, p), 3) for p in PERCENTILES)


@dataclass(frozen=True)
class MetricRow:
    """One log_metrics row."""

    minute: str
    dimension: str
    value: str
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass
class _Bucket:
    count: int = 0
    latencies: Reservoir | None = None


@dataclass
class Aggregator:
    """Counts parsed lines per minute and dimension value; `seed` names the file version."""

    dimension: str
    seed: str = ""
    reservoir_size: int = RESERVOIR_SIZE
    parsed: int = 0
    untimed: int = 0
    totals: Counter[str] = field(default_factory=Counter)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def add(self, line: ParsedLine) -> None:
        """Count one parsed line (in the totals only when it has no time)."""
        self.parsed += 1
        self.totals[line.value] += 1
        minute = line.minute
        if minute is None:
            self.untimed += 1
            return
        bucket = self._buckets.setdefault((minute, line.value), _Bucket())
        bucket.count += 1
        if line.latency_ms is not None:
            if bucket.latencies is None:
                seed = "\x1f".join((self.seed, minute, line.value))
                bucket.latencies = Reservoir(self.reservoir_size, seed)
            bucket.latencies.add(line.latency_ms)

    @property
    def minutes(self) -> list[str]:
        """The distinct minutes seen, ascending."""
        return sorted({minute for minute, _ in self._buckets})

    @property
    def estimated(self) -> int:
        """How many buckets had more latencies than the reservoir keeps."""
        return sum(
            1 for b in self._buckets.values() if b.latencies is not None and not b.latencies.exact
        )

    def rows(self) -> Iterator[MetricRow]:
        """The rows, by minute then value."""
        for (minute, value), bucket in sorted(self._buckets.items()):
            p50 = p95 = p99 = None
            if bucket.latencies is not None:
                p50, p95, p99 = bucket.latencies.percentiles()
            yield MetricRow(minute, self.dimension, value, bucket.count, p50, p95, p99)
