"""log-processor through the WSGI test client: real S3 API (moto server), SQLite tables, a
loopback broker stand-in. PostgreSQL runs in tests/pipelines/test_ops_postgres.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventfn._tables_pipelines import log_metrics

ROOT = Path(__file__).resolve().parents[2]
PARSED = "eventfn.logs.parsed.v1"
KEY = "logs/web-2026-11-28.log"
ORDER = ("minute", "dimension", "value")


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import ops_testing as ops  # noqa: E402
from demo_testing import demo_module  # noqa: E402

ACCESS = "\n".join(
    [
        '203.0.113.1 - - [28/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "t" 0.010',
        '203.0.113.2 - - [28/Nov/2026:10:00:02 +0000] "GET / HTTP/1.1" 200 5 "-" "t" 0.030',
        '2001:db8::2 - - [28/Nov/2026:10:00:03 +0000] "GET / HTTP/1.1" 201 5 "-" "t" 0.020',
        '203.0.113.3 - - [28/Nov/2026:10:00:04 +0000] "GET /x HTTP/1.1" 503 5 "-" "t" 1.500',
        "this line is not an access log line",
        '203.0.113.4 - - [28/Nov/2026:10:01:00 +0000] "GET /y HTTP/1.1" 404 5 "-" "t" 0.002',
        '203.0.113.5 - - [28/Nov/2026:11:01:59 +0100] "GET / HTTP/1.1" 302 0 "-" "t"',
        "",
    ]
)
SYSLOG = "\n".join(
    [
        "<34>1 2026-11-28T10:00:01Z web su - ID47 - 'su root' failed",
        '<165>1 2026-11-28T10:00:30.5Z web app 1 - [meta@1 k="v"] notice',
        "<14>1 2026-11-28T10:02:00+00:00 web app 1 - - hello",
        "<14>1 - web app 1 - - no time",
        "garbage",
    ]
)
JSON_LOG = "\n".join(
    [
        '{"time": "2026-11-28T10:00:01Z", "level": "info", "duration_ms": 4}',
        '{"time": "2026-11-28T10:00:02Z", "level": "error", "duration_ms": 40}',
        '{"time": "2026-11-28T10:00:03Z", "duration_ms": 8}',
        '{"time": "2026-11-28T10:00:04Z", "level": "INFO", "duration_ms": 6}',
    ]
)


@pytest.fixture
def processor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with ops.harness("log-processor", tmp_path, monkeypatch) as harness:
        yield harness


def _metrics(h: Any) -> list[tuple[object, ...]]:
    return [
        (r["minute"], r["dimension"], r["value"], r["count"], r["p50_ms"], r["p95_ms"], r["p99_ms"])
        for r in h.rows(log_metrics, *ORDER)
    ]


def test_an_access_log_is_aggregated_per_minute_and_status_class(processor: Any) -> None:
    h = processor
    event = h.upload(KEY, ACCESS.encode())
    assert h.deliver(event).status_code == 204
    assert _metrics(h) == [
        ("2026-11-28T10:00", "status_class", "2xx", 3, 20.0, 30.0, 30.0),
        ("2026-11-28T10:00", "status_class", "5xx", 1, 1500.0, 1500.0, 1500.0),
        ("2026-11-28T10:01", "status_class", "3xx", 1, None, None, None),
        ("2026-11-28T10:01", "status_class", "4xx", 1, 2.0, 2.0, 2.0),
    ]
    assert {(r["log_key"], r["log_etag"]) for r in h.rows(log_metrics, *ORDER)} == {
        (KEY, event.data["etag"])
    }
    [parsed] = h.sink.events()
    assert parsed.type == PARSED and parsed.subject == KEY
    assert parsed.data == {
        "bucket": ops.BUCKET,
        "key": KEY,
        "etag": event.data["etag"],
        "format": "combined",
        "dimension": "status_class",
        "lines": 7,
        "parsed": 6,
        "unparseable": 1,
        "unparseable_sample": ["this line is not an access log line"],
        "untimed": 0,
        "minutes": 2,
        "first_minute": "2026-11-28T10:00",
        "last_minute": "2026-11-28T10:01",
        "totals": {"status_class": {"2xx": 3, "3xx": 1, "4xx": 1, "5xx": 1}},
        "metric_rows": 4,
        "estimated_percentiles": 0,
    }


def test_syslog_is_counted_by_level(processor: Any) -> None:
    h = processor
    assert h.deliver(h.upload("logs/sys.log", SYSLOG.encode())).status_code == 204
    assert _metrics(h) == [
        ("2026-11-28T10:00", "level", "CRITICAL", 1, None, None, None),
        ("2026-11-28T10:00", "level", "NOTICE", 1, None, None, None),
        ("2026-11-28T10:02", "level", "INFO", 1, None, None, None),
    ]
    [parsed] = h.sink.events()
    assert (parsed.data["format"], parsed.data["untimed"], parsed.data["unparseable"]) == (
        "rfc5424",
        1,
        1,
    )
    assert parsed.data["totals"] == {"level": {"CRITICAL": 1, "INFO": 2, "NOTICE": 1}}


def test_json_lines_have_levels_and_latency_percentiles(processor: Any) -> None:
    h = processor
    assert h.deliver(h.upload("logs/app.log", JSON_LOG.encode())).status_code == 204
    assert _metrics(h) == [
        ("2026-11-28T10:00", "level", "ERROR", 1, 40.0, 40.0, 40.0),
        ("2026-11-28T10:00", "level", "INFO", 2, 4.0, 6.0, 6.0),
        ("2026-11-28T10:00", "level", "UNKNOWN", 1, 8.0, 8.0, 8.0),
    ]
    [parsed] = h.sink.events()
    assert parsed.data["format"] == "json" and parsed.data["parsed"] == 4


def test_the_demo_access_log(processor: Any) -> None:
    demo = demo_module("builders_ops").nginx_access_log()
    h = processor
    assert h.deliver(h.upload(demo.key, demo.content)).status_code == 204
    [parsed] = h.sink.events()
    data = parsed.data
    assert (data["format"], data["lines"], data["parsed"], data["unparseable"]) == (
        "combined",
        360,
        360,
        0,
    )
    assert (data["minutes"], data["first_minute"], data["last_minute"]) == (
        6,
        "2026-11-28T10:00",
        "2026-11-28T10:05",
    )
    classes = data["totals"]["status_class"]
    assert set(classes) == {"2xx", "3xx", "4xx", "5xx"} and sum(classes.values()) == 360
    rows = h.rows(log_metrics, *ORDER)
    assert sum(row["count"] for row in rows) == 360
    assert all(row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] for row in rows)
    fives = [row for row in rows if row["value"] == "5xx"]
    twos = [row for row in rows if row["value"] == "2xx"]
    assert min(row["p50_ms"] for row in fives) > max(row["p50_ms"] for row in twos)


def test_a_file_where_nothing_parses_is_still_reported(processor: Any) -> None:
    h = processor
    lines = [f"free text line {n}: " + "x" * 250 for n in range(7)]
    assert h.deliver(h.upload("logs/notes.log", "\n".join(lines).encode())).status_code == 204
    [parsed] = h.sink.events()
    data = parsed.data
    assert (data["format"], data["dimension"], data["lines"], data["parsed"]) == (
        "unknown",
        None,
        7,
        0,
    )
    assert data["unparseable"] == 7 and data["totals"] == {} and data["minutes"] == 0
    assert data["unparseable_sample"] == [line[:200] for line in lines[:5]]
    assert h.rows(log_metrics, *ORDER) == []


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"], ids=["empty", "blank", "bom"])
def test_an_empty_file_is_reported_with_zero_lines(processor: Any, content: bytes) -> None:
    h = processor
    assert h.deliver(h.upload("logs/empty.log", content)).status_code == 204
    [parsed] = h.sink.events()
    assert (parsed.data["lines"], parsed.data["format"], parsed.data["first_minute"]) == (
        0,
        "unknown",
        None,
    )


def test_non_utf8_bytes_do_not_fail_the_file(processor: Any) -> None:
    h = processor
    body = ACCESS.encode() + b"\n\xff\xfe\xfa binary junk\n"
    assert h.deliver(h.upload(KEY, body)).status_code == 204
    [parsed] = h.sink.events()
    assert (parsed.data["parsed"], parsed.data["unparseable"]) == (6, 2)
    assert parsed.data["unparseable_sample"][1] == "\ufffd\ufffd\ufffd binary junk"


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_same_event_twice_gives_same_rows_and_one_event(processor: Any, mode: str) -> None:
    h = processor
    event = h.upload(KEY, ACCESS.encode())
    assert h.deliver(event, mode).status_code == 204
    rows = h.rows(log_metrics, *ORDER)
    assert h.deliver(event, mode).status_code == 204
    assert h.rows(log_metrics, *ORDER) == rows
    assert len(h.sink.received) == 1


def test_a_new_notification_of_the_same_version_upserts_the_same_rows(processor: Any) -> None:
    h = processor
    event = h.upload(KEY, ACCESS.encode())
    assert h.deliver(event).status_code == 204
    rows = h.rows(log_metrics, *ORDER)
    again = ops.created_event(KEY, event.data["etag"], event.data["size"], event_id="again")
    assert h.deliver(again).status_code == 204
    assert h.rows(log_metrics, *ORDER) == rows
    first, second = h.sink.events()
    assert first.data == second.data and first.id != second.id


def test_a_new_version_gets_rows_of_its_own(processor: Any) -> None:
    h = processor
    assert h.deliver(h.upload(KEY, ACCESS.encode())).status_code == 204
    assert h.deliver(h.upload(KEY, JSON_LOG.encode())).status_code == 204
    etags = {row["log_etag"] for row in h.rows(log_metrics, *ORDER)}
    assert len(etags) == 2
    assert [e.data["format"] for e in h.sink.events()] == ["combined", "json"]


@pytest.mark.parametrize("key", ["logs/app.txt", "logs/app.log.gz", "backup-logs/x.log", "x.log"])
def test_objects_outside_logs_are_ignored(processor: Any, key: str) -> None:
    h = processor
    assert h.deliver(h.upload(key, ACCESS.encode())).status_code == 204
    assert h.rows(log_metrics, *ORDER) == [] and h.sink.received == []


def test_year_less_syslog_lines_are_dated_from_the_upload(processor: Any) -> None:
    h = processor
    body = b"<11>Nov 28 10:00:00 web app: x\n<11>Dec 31 23:59:00 web app: y\n"
    event = h.upload("logs/bsd.log", body)  # created 2026-11-28T12:00:00Z (ops.EVENT_TIME)
    assert h.deliver(event).status_code == 204
    assert [row["minute"] for row in h.rows(log_metrics, *ORDER)] == [
        "2025-12-31T23:59",
        "2026-11-28T10:00",
    ]
    [parsed] = h.sink.events()
    assert parsed.data["format"] == "rfc3164"
    assert parsed.data["totals"] == {"level": {"ERROR": 2}}
