"""log-processor's pure parts: one table per log format, detection, lines, aggregation."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from eventfn._loader import load_function

ROOT = Path(__file__).resolve().parents[2]
load_function("log-processor", ROOT / "functions")
from eventfn_functions.log_processor._access import parse_access  # noqa: E402
from eventfn_functions.log_processor._aggregate import (  # noqa: E402
    Aggregator,
    MetricRow,
    Reservoir,
    percentile,
)
from eventfn_functions.log_processor._detect import detect, formats  # noqa: E402
from eventfn_functions.log_processor._formats import ParsedLine  # noqa: E402
from eventfn_functions.log_processor._jsonlog import parse_json  # noqa: E402
from eventfn_functions.log_processor._lines import iter_lines  # noqa: E402
from eventfn_functions.log_processor._syslog import parse_rfc5424, rfc3164_parser  # noqa: E402
from eventfn_functions.log_processor.handler import analyse  # noqa: E402

REFERENCE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
parse_rfc3164 = rfc3164_parser(REFERENCE)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def zone(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


Expected = tuple[datetime | None, str, float | None] | None

JSON_LINES: list[tuple[str, Expected]] = [
    (
        '{"time": "2026-11-28T10:00:01Z", "level": "info", "msg": "ok"}',
        (utc(2026, 11, 28, 10, 0, 1), "INFO", None),
    ),
    (
        '{"timestamp": "2026-11-28T10:00:02.250+01:00", "level": "WARN", "duration_ms": 12.5}',
        (datetime(2026, 11, 28, 10, 0, 2, 250000, zone(1)), "WARNING", 12.5),
    ),
    (
        '{"@timestamp": "2026-11-28T10:00:03Z", "log": {"level": "error"}, "latency_ms": 7}',
        (utc(2026, 11, 28, 10, 0, 3), "ERROR", 7.0),
    ),
    (
        '{"ts": 1795860000123, "level": 50, "responseTime": 3}',
        (utc(2026, 11, 28, 10, 0, 0) + timedelta(milliseconds=123), "ERROR", 3.0),
    ),
    (
        '{"time": 1795860000, "msg": "no level at all", "response_time": 40}',
        (utc(2026, 11, 28, 10, 0), "UNKNOWN", 40.0),
    ),
    (
        '{"time": "2026-11-28 10:00:05,123", "levelname": "CRITICAL", "latency": "1.5s"}',
        (utc(2026, 11, 28, 10, 0, 5, 123000), "CRITICAL", 1500.0),
    ),
    (
        '{"time": "2026-11-28T10:00:06", "severity": "debug", "request_time": 0.25}',
        (utc(2026, 11, 28, 10, 0, 6), "DEBUG", 250.0),
    ),
    ('{"level": "info", "msg": "no time: parsed, untimed"}', (None, "INFO", None)),
    ('{"time": "yesterday", "level": "info", "duration": "350us"}', (None, "INFO", 0.35)),
    (
        '{"time": "2026-11-28T10:00:07Z", "level": true, "duration_ms": -3}',
        (utc(2026, 11, 28, 10, 0, 7), "UNKNOWN", None),
    ),
    ('["not", "an", "object"]', None),
    ('{"truncated": ', None),
    ("plain text", None),
]

ACCESS_LINES: list[tuple[str, Expected]] = [
    (
        '203.0.113.9 - - [28/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.11.0" 0.012',  # noqa: E501 - a real log line
        (utc(2026, 11, 28, 10, 0, 1), "2xx", 12.0),
    ),
    (
        '2001:db8::1 - - [28/Nov/2026:10:00:02 +0000] "GET /a?b=c HTTP/2.0" 304 0 "https://x.example/" "Mozilla/5.0 (X11)" 0.004',  # noqa: E501 - a real log line
        (utc(2026, 11, 28, 10, 0, 2), "3xx", 4.0),
    ),
    (
        '::ffff:192.0.2.1 - alice [28/Nov/2026:11:00:03 +0100] "POST /login HTTP/1.1" 401 19 "-" "-"',  # noqa: E501 - a real log line
        (datetime(2026, 11, 28, 11, 0, 3, tzinfo=zone(1)), "4xx", None),
    ),
    (
        '198.51.100.4 - - [28/Nov/2026:10:00:04 -0700] "GET /x HTTP/1.0" 404 -',
        (datetime(2026, 11, 28, 10, 0, 4, tzinfo=zone(-7)), "4xx", None),
    ),
    (
        'host.example - - [28/Nov/2026:10:00:05 +0000] "GET /say?q=\\"hi\\" HTTP/1.1" 500 99 "-" "agent \\"quoted\\"" 1.234',  # noqa: E501 - a real log line
        (utc(2026, 11, 28, 10, 0, 5), "5xx", 1234.0),
    ),
    (
        '10.0.0.1 - - [28/Nov/2026:10:00:06 +0000] "-" 400 0 "-" "-" 0.000',
        (utc(2026, 11, 28, 10, 0, 6), "4xx", 0.0),
    ),
    (
        '10.0.0.2 - - [28/Nov/2026:10:00:07 +0000] "GET / HTTP/1.1" 200 10 "-" "ab" 25342',
        (utc(2026, 11, 28, 10, 0, 7), "2xx", None),
    ),
    (
        '10.0.0.3 - - [28/Nov/2026:10:00:08 +0000] "GET / HTTP/1.1" 503 10 "-" "ab" 0.5 upstream=- 2.750',  # noqa: E501 - a real log line
        (utc(2026, 11, 28, 10, 0, 8), "5xx", 2750.0),
    ),
    (
        '10.0.0.4 - - [28/Nov/2026:10:00:09 +0000] "GET / HTTP/1.1" 101 0 "-" "ws"',
        (utc(2026, 11, 28, 10, 0, 9), "1xx", None),
    ),
    ('10.0.0.5 - - [31/Nov/2026:10:00:09 +0000] "GET / HTTP/1.1" 200 1 "-" "-"', None),
    ('10.0.0.6 - - [28/Foo/2026:10:00:09 +0000] "GET / HTTP/1.1" 200 1 "-" "-"', None),
    ('10.0.0.7 - - [28/Nov/2026:10:00:09 +0000] "GET / HTTP/1.1" 999 1 "-" "-"', None),
    ("10.0.0.8 - - 28/Nov/2026 GET / 200", None),
]

RFC5424_LINES: list[tuple[str, Expected]] = [
    (
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8",  # noqa: E501 - a real log line
        (datetime(2003, 10, 11, 22, 14, 15, 3000, UTC), "CRITICAL", None),
    ),
    (
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",  # noqa: E501 - a real log line
        (datetime(2003, 8, 24, 5, 14, 15, 3, zone(-7)), "NOTICE", None),
    ),
    (
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] BOMAn application event log entry...',  # noqa: E501 - a real log line
        (datetime(2003, 10, 11, 22, 14, 15, 3000, UTC), "NOTICE", None),
    ),
    (
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',  # noqa: E501 - a real log line
        (datetime(2003, 10, 11, 22, 14, 15, 3000, UTC), "NOTICE", None),
    ),
    (
        '<11>1 2026-11-28T10:00:00+00:00 web app 42 - [x@1 path="C:\\\\tmp" note="a \\"quoted\\" ]bracket"] disk failing',  # noqa: E501 - a real log line
        (utc(2026, 11, 28, 10), "ERROR", None),
    ),
    ("<15>1 - web app - - - no timestamp, NILVALUE", (None, "DEBUG", None)),
    ("<0>1 2026-11-28T10:00:01Z - - - - -", (utc(2026, 11, 28, 10, 0, 1), "EMERGENCY", None)),
    (
        "<191>1 2026-11-28T10:00:02Z h a p m - local7.debug",
        (utc(2026, 11, 28, 10, 0, 2), "DEBUG", None),
    ),
    ("<192>1 2026-11-28T10:00:02Z h a p m - PRI out of range", None),
    ("<34>2026-11-28T10:00:02Z h a p m - no version", None),
    ("<34>1 2026-11-28T10:00:02Z h a p m [unterminated sd", None),
    ("<34>1 not-a-time h a p m - msg", None),
]

RFC3164_LINES: list[tuple[str, Expected]] = [
    (
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        (utc(2026, 10, 11, 22, 14, 15), "CRITICAL", None),
    ),
    ("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", (utc(2026, 2, 5, 17, 32, 18), "NOTICE", None)),
    (
        "Nov 28 10:00:00 web01 sshd[812]: Accepted publickey for deploy",
        (utc(2026, 11, 28, 10), "NOTICE", None),
    ),
    (
        "<30>Nov 29 11:59:59 web01 systemd[1]: within a day of the reference",
        (utc(2026, 11, 29, 11, 59, 59), "INFO", None),
    ),
    (
        "<30>Dec 24 08:00:00 web01 cron[9]: a December line read in November is last year's",
        (utc(2025, 12, 24, 8), "INFO", None),
    ),
    (
        "<27>Feb 29 08:00:00 web01 app: leap day goes to the last leap year",
        (utc(2024, 2, 29, 8), "ERROR", None),
    ),
    (
        "<86>2026-11-28T10:00:00.123456+01:00 web01 sudo: rsyslog file format",
        (datetime(2026, 11, 28, 10, 0, 0, 123456, zone(1)), "INFO", None),
    ),
    ("<0>Nov 28 10:00:00 web01", (utc(2026, 11, 28, 10), "EMERGENCY", None)),
    ("<200>Nov 28 10:00:00 web01 x: PRI out of range", None),
    ("Foo 28 10:00:00 web01 x: bad month", None),
    ("Nov 31 10:00:00 web01 x: no such day", None),
    ("Nov 28 10:00 web01 x: no seconds", None),
]


def _check(parsed: ParsedLine | None, expected: Expected) -> None:
    if expected is None:
        assert parsed is None
        return
    assert parsed is not None
    assert (parsed.at, parsed.value, parsed.latency_ms) == expected
    if parsed.at is not None:
        assert parsed.at.utcoffset() == expected[0].utcoffset()  # type: ignore[union-attr]


@pytest.mark.parametrize(("line", "expected"), JSON_LINES)
def test_json_lines(line: str, expected: Expected) -> None:
    _check(parse_json(line), expected)


@pytest.mark.parametrize(("line", "expected"), ACCESS_LINES)
def test_access_lines(line: str, expected: Expected) -> None:
    _check(parse_access(line), expected)


@pytest.mark.parametrize(("line", "expected"), RFC5424_LINES)
def test_rfc5424_lines(line: str, expected: Expected) -> None:
    _check(parse_rfc5424(line), expected)


@pytest.mark.parametrize(("line", "expected"), RFC3164_LINES)
def test_rfc3164_lines(line: str, expected: Expected) -> None:
    _check(parse_rfc3164(line), expected)


def test_minutes_are_utc() -> None:
    line = ParsedLine(datetime(2026, 11, 28, 23, 59, 59, tzinfo=zone(-7)), "INFO")
    assert line.minute == "2026-11-29T06:59"
    assert ParsedLine(None, "INFO").minute is None


def _good(table: list[tuple[str, Expected]]) -> list[str]:
    return [line for line, expected in table if expected is not None]


@pytest.mark.parametrize(
    ("table", "name"),
    [
        (JSON_LINES, "json"),
        (ACCESS_LINES, "combined"),
        (RFC5424_LINES, "rfc5424"),
        (RFC3164_LINES, "rfc3164"),
    ],
)
def test_detection_picks_the_format_of_each_table(
    table: list[tuple[str, Expected]], name: str
) -> None:
    chosen = detect([line for line, _ in table], formats(REFERENCE))
    assert chosen is not None and chosen.name == name


def test_detection_picks_the_majority_and_gives_up_on_garbage() -> None:
    candidates = formats(REFERENCE)
    mixed = _good(ACCESS_LINES)[:3] + _good(JSON_LINES)[:5] + ["garbage"] * 10
    chosen = detect(mixed, candidates)
    assert chosen is not None and chosen.name == "json"
    assert detect(["garbage", "more garbage", "{not json"], candidates) is None
    assert detect([], candidates) is None


def test_detection_only_looks_at_the_first_lines() -> None:
    lines = ["noise"] * 50 + _good(ACCESS_LINES) * 10
    report = analyse(lines, formats(REFERENCE))
    assert report.format is None
    assert (report.lines, report.aggregator.parsed, report.unparseable) == (
        len(lines),
        0,
        len(lines),
    )


def test_iter_lines_handles_endings_bom_overlong_lines_and_bad_bytes() -> None:
    raw = b"\xef\xbb\xbfone\r\ntwo\rthree\n" + b"x" * 50 + b"\ncaf\xe9\nlast"
    lines = list(iter_lines(io.BytesIO(raw), max_chars=20))
    assert lines == ["one", "two", "three", "x" * 20, "caf\ufffd", "last"]
    assert list(iter_lines(io.BytesIO(b""))) == []


def test_unparseable_lines_are_counted_and_sampled() -> None:
    good = _good(ACCESS_LINES)
    bad = [f"bad line {n} " + "z" * 300 for n in range(8)]
    lines = [good[0], bad[0], "", "   ", good[1], *bad[1:], good[2]]
    report = analyse(lines, formats(REFERENCE))
    assert report.format is not None and report.format.name == "combined"
    assert (report.lines, report.aggregator.parsed, report.unparseable) == (11, 3, 8)
    assert report.samples == [line[:200] for line in bad[:5]]
    assert all(len(sample) == 200 for sample in report.samples)


def _access(second: int, status: int, seconds: float | None) -> str:
    latency = "" if seconds is None else f" {seconds:.3f}"
    minute, second = divmod(second, 60)
    return (
        f'192.0.2.1 - - [28/Nov/2026:10:{minute:02d}:{second:02d} +0000] "GET / HTTP/1.1" '
        f'{status} 1 "-" "t"{latency}'
    )


def test_per_minute_counts_and_nearest_rank_percentiles() -> None:
    # minute 10:00: twenty 2xx requests of 1..20 ms, two 5xx of 100 and 300 ms
    # minute 10:01: one 4xx without latency, ten 2xx of 10, 20, ..., 100 ms (shuffled)
    lines = [_access(n, 200, (n + 1) / 1000) for n in range(20)]
    lines += [_access(30, 500, 0.300), _access(31, 502, 0.100)]
    lines += [_access(60, 404, None)]
    lines += [
        _access(61 + n, 200, ms / 1000)
        for n, ms in enumerate((70, 10, 100, 40, 20, 90, 30, 60, 80, 50))
    ]
    report = analyse(lines, formats(REFERENCE))
    assert list(report.aggregator.rows()) == [
        # n = 20: p50 = 10th value, p95 = 19th, p99 = 20th
        MetricRow("2026-11-28T10:00", "status_class", "2xx", 20, 10.0, 19.0, 20.0),
        # n = 2: p50 = 1st, p95 = p99 = 2nd
        MetricRow("2026-11-28T10:00", "status_class", "5xx", 2, 100.0, 300.0, 300.0),
        # n = 10: p50 = 5th, p95 = p99 = 10th
        MetricRow("2026-11-28T10:01", "status_class", "2xx", 10, 50.0, 100.0, 100.0),
        MetricRow("2026-11-28T10:01", "status_class", "4xx", 1, None, None, None),
    ]
    assert report.aggregator.totals == {"2xx": 30, "5xx": 2, "4xx": 1}
    assert report.aggregator.minutes == ["2026-11-28T10:00", "2026-11-28T10:01"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0], (5.0, 5.0, 5.0)),
        ([1.0, 2.0, 3.0, 4.0], (2.0, 4.0, 4.0)),
        ([float(n) for n in range(1, 101)], (50.0, 95.0, 99.0)),
        ([float(n) for n in range(1, 201)], (100.0, 190.0, 198.0)),
    ],
)
def test_percentile_definition(values: list[float], expected: tuple[float, ...]) -> None:
    assert tuple(percentile(values, p) for p in (50, 95, 99)) == expected


def test_reservoir_is_exact_up_to_its_size_then_bounded_and_deterministic() -> None:
    exact = Reservoir(100, seed="s")
    for value in range(100):
        exact.add(float(value))
    assert exact.exact and exact.percentiles() == (49.0, 94.0, 98.0)

    first, second, other = Reservoir(100, "k"), Reservoir(100, "k"), Reservoir(100, "other")
    for value in range(10_000):
        for reservoir in (first, second, other):
            reservoir.add(float(value))
    assert len(first.values) == 100 and first.seen == 10_000 and not first.exact
    assert first.values == second.values != other.values
    p50, p95, _ = first.percentiles()
    assert 3_000 < p50 < 7_000 and p95 > 8_000  # an estimate of 4 999.5 / 9 499


def test_aggregator_counts_stay_exact_beyond_the_reservoir() -> None:
    aggregator = Aggregator("level", seed="k\x1fe", reservoir_size=10)
    at = utc(2026, 11, 28, 10)
    for n in range(25):
        aggregator.add(ParsedLine(at, "INFO", float(n)))
    aggregator.add(ParsedLine(None, "INFO", 1.0))
    [row] = list(aggregator.rows())
    assert row.count == 25 and aggregator.estimated == 1
    assert (aggregator.parsed, aggregator.untimed, aggregator.totals["INFO"]) == (26, 1, 26)
