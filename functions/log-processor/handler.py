"""log-processor: per-minute metrics of log files uploaded under `logs/`.

Consumes `eventfn.storage.object.created.v1` for `logs/*.log`, streams the file line by line,
detects its format (JSON lines, nginx/Apache combined access log, RFC 5424 or RFC 3164 syslog)
from the first lines, aggregates per minute — counts by level or by status class, latency
percentiles where the format has latencies — upserts them into `log_metrics` (keyed by log key +
ETag + minute + dimension + value, in the event's transaction) and emits
`eventfn.logs.parsed.v1`. Unparseable lines are counted and sampled, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from eventfn import App, Context, Event, InternalError
from eventfn._source_object import SourceObject, open_object
from eventfn._tables_pipelines import log_metrics
from eventfn._upsert import BatchedUpsert

from ._aggregate import Aggregator, MetricRow
from ._detect import SAMPLE_LINES, UNKNOWN, detect, formats
from ._formats import LogFormat, iso_time
from ._lines import iter_lines, sample_of

CREATED = "eventfn.storage.object.created.v1"
PARSED = "eventfn.logs.parsed.v1"
PREFIX = "logs/"
SUFFIX = ".log"
UNPARSEABLE_SAMPLES = 5

app = App("log-processor")


@dataclass
class LogReport:
    """What one pass over a log file found."""

    format: LogFormat | None
    aggregator: Aggregator
    lines: int = 0
    unparseable: int = 0
    samples: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        """Parse and count one line; blank lines are skipped."""
        if not line.strip():
            return
        self.lines += 1
        parsed = self.format.parse(line) if self.format is not None else None
        if parsed is None:
            self.unparseable += 1
            if len(self.samples) < UNPARSEABLE_SAMPLES:
                self.samples.append(sample_of(line))
            return
        self.aggregator.add(parsed)


def analyse(lines: Iterable[str], candidates: Sequence[LogFormat], seed: str = "") -> LogReport:
    """Detect the format on the first non-blank lines, then parse every line."""
    stream: Iterator[str] = iter(lines)
    sample: list[str] = []
    for line in stream:
        if line.strip():
            sample.append(line)
            if len(sample) >= SAMPLE_LINES:
                break
    chosen = detect(sample, candidates)
    report = LogReport(chosen, Aggregator(chosen.dimension if chosen else "", seed=seed))
    for line in chain(sample, stream):
        report.feed(line)
    return report


@app.on(CREATED, reply_type=None)
def process_log(event: Event, ctx: Context) -> None:
    """Aggregate one uploaded log file."""
    source = SourceObject.from_event(event, PREFIX, SUFFIX)
    if source is None:
        ctx.logger.info("ignored: %r is not a %s*%s object", event.subject, PREFIX, SUFFIX)
        return
    opened = open_object(ctx.objects.client, source)
    if opened is None:
        ctx.logger.info("skipped: %r was overwritten after this event", source.key)
        return
    candidates = formats(reference_time(event))
    with opened.body:
        report = analyse(iter_lines(opened.body), candidates, f"{source.key}\x1f{opened.etag}")
    tx = ctx.tx
    if tx is None:
        raise InternalError("log-processor needs its SQL store")
    writer = BatchedUpsert(tx, log_metrics)
    for row in report.aggregator.rows():
        writer.add(metric_record(source.key, opened.etag, row))
    writer.flush()
    ctx.emit(PARSED, parsed_data(source, opened.etag, report, writer.written), subject=source.key)
    ctx.logger.info(
        "parsed %s as %s: %d lines, %d unparseable, %d metric rows",
        source.key,
        report.format.name if report.format else UNKNOWN,
        report.lines,
        report.unparseable,
        writer.written,
    )


def reference_time(event: Event) -> datetime:
    """When the object was created (dates year-less syslog lines); now when unknown."""
    data: Any = event.data
    for candidate in (data.get("event_time") if isinstance(data, dict) else None, event.time):
        if isinstance(candidate, str) and (parsed := iso_time(candidate)) is not None:
            return parsed
    return datetime.now(UTC)


def metric_record(key: str, etag: str, row: MetricRow) -> dict[str, Any]:
    """The `log_metrics` row of one aggregate."""
    return {
        "log_key": key,
        "log_etag": etag,
        "minute": row.minute,
        "dimension": row.dimension,
        "value": row.value,
        "count": row.count,
        "p50_ms": row.p50_ms,
        "p95_ms": row.p95_ms,
        "p99_ms": row.p99_ms,
    }


def parsed_data(source: SourceObject, etag: str, report: LogReport, rows: int) -> dict[str, Any]:
    """The data of `eventfn.logs.parsed.v1`."""
    aggregator = report.aggregator
    minutes = aggregator.minutes
    totals = dict(sorted(aggregator.totals.items()))
    return {
        "bucket": source.bucket,
        "key": source.key,
        "etag": etag,
        "format": report.format.name if report.format else UNKNOWN,
        "dimension": report.format.dimension if report.format else None,
        "lines": report.lines,
        "parsed": aggregator.parsed,
        "unparseable": report.unparseable,
        "unparseable_sample": report.samples,
        "untimed": aggregator.untimed,
        "minutes": len(minutes),
        "first_minute": minutes[0] if minutes else None,
        "last_minute": minutes[-1] if minutes else None,
        "totals": {aggregator.dimension: totals} if totals else {},
        "metric_rows": rows,
        "estimated_percentiles": aggregator.estimated,
    }
