"""backup-auditor through the WSGI test client: real S3 API (moto server), SQLite tables, a
loopback broker stand-in. PostgreSQL runs in tests/pipelines/test_ops_postgres.py."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventfn._loader import load_function
from eventfn._tables_pipelines import backup_audit_rows

ROOT = Path(__file__).resolve().parents[2]
AUDITED = "eventfn.backup.log.audited.v1"
FAILED = "eventfn.backup.job.failed.v1"
KEY = "backup-logs/2026-11-28-report.csv"


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import ops_testing as ops  # noqa: E402
from demo_testing import demo_module  # noqa: E402

load_function("backup-auditor", ROOT / "functions")
from eventfn_functions.backup_auditor._audit import normalise_status  # noqa: E402
from eventfn_functions.backup_auditor._columns import Columns, MissingColumn  # noqa: E402

REPORT = (
    "JOB_ID,RESOURCE,STATUS,START_TIME,END_TIME,VAULT\n"
    "j-1,arn:aws:rds:eu-west-1:1:db:orders,COMPLETED,2026-11-28T01:00:00Z,2026-11-28T01:05:00Z,"
    "nightly\n"
    "j-2,arn:aws:dynamodb:eu-west-1:1:table/users,FAILED,2026-11-28T01:10:00Z,,nightly\n"
    "\n"
    "j-3,arn:aws:s3:::invoices,Completed,2026-11-28T01:20:00Z,2026-11-28T01:22:00Z,weekly\n"
    'j-4,"arn:aws:ec2:eu-west-1:1:volume/vol-1",aborted,2026-11-28T01:30:00Z,'
    "2026-11-28T01:31:00Z,\n"
)


@pytest.fixture
def auditor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("BACKUP_AUDITOR_MAX_FAILED_EVENTS", raising=False)
    with ops.harness("backup-auditor", tmp_path, monkeypatch) as harness:
        yield harness


def test_every_row_is_recorded(auditor: Any) -> None:
    h = auditor
    event = h.upload(KEY, REPORT.encode())
    response = h.deliver(event)
    assert response.status_code == 204, response.get_data()

    rows = h.rows(backup_audit_rows, "line")
    assert [(r["line"], r["job_id"], r["status"]) for r in rows] == [
        (2, "j-1", "COMPLETED"),
        (3, "j-2", "FAILED"),
        (5, "j-3", "COMPLETED"),
        (6, "j-4", "ABORTED"),
    ]
    etag = event.data["etag"]
    assert {(r["log_key"], r["log_etag"]) for r in rows} == {(KEY, etag)}
    assert rows[1]["finished_at"] is None and rows[1]["started_at"] == "2026-11-28T01:10:00Z"
    assert json.loads(rows[0]["details"]) == {"VAULT": "nightly"}
    assert json.loads(rows[3]["details"]) == {}


def test_the_audit_and_one_event_per_failed_job_are_emitted(auditor: Any) -> None:
    h = auditor
    event = h.upload(KEY, REPORT.encode())
    assert h.deliver(event).status_code == 204
    etag = event.data["etag"]
    [audited] = h.sink.events(AUDITED)
    assert audited.subject == KEY and audited.source == "/eventfn/backup-auditor"
    assert audited.data == {
        "bucket": ops.BUCKET,
        "key": KEY,
        "etag": etag,
        "rows": 4,
        "totals": {"ABORTED": 1, "COMPLETED": 2, "FAILED": 1},
        "failed": 2,
        "failed_jobs": [
            {
                "job_id": "j-2",
                "resource": "arn:aws:dynamodb:eu-west-1:1:table/users",
                "status": "FAILED",
                "line": 3,
            },
            {
                "job_id": "j-4",
                "resource": "arn:aws:ec2:eu-west-1:1:volume/vol-1",
                "status": "ABORTED",
                "line": 6,
            },
        ],
        "failed_jobs_truncated": False,
        "failed_events": 2,
        "columns": {
            "status": "STATUS",
            "job_id": "JOB_ID",
            "resource": "RESOURCE",
            "started_at": "START_TIME",
            "finished_at": "END_TIME",
        },
    }
    failed = h.sink.events(FAILED)
    assert [e.data for e in failed] == [
        {
            "bucket": ops.BUCKET,
            "key": KEY,
            "etag": etag,
            "line": 3,
            "job_id": "j-2",
            "resource": "arn:aws:dynamodb:eu-west-1:1:table/users",
            "status": "FAILED",
            "started_at": "2026-11-28T01:10:00Z",
            "finished_at": None,
        },
        {
            "bucket": ops.BUCKET,
            "key": KEY,
            "etag": etag,
            "line": 6,
            "job_id": "j-4",
            "resource": "arn:aws:ec2:eu-west-1:1:volume/vol-1",
            "status": "ABORTED",
            "started_at": "2026-11-28T01:30:00Z",
            "finished_at": "2026-11-28T01:31:00Z",
        },
    ]
    assert {e.subject for e in failed} == {KEY}
    assert len(h.sink.received) == 3  # the audit first, then one event per failed job
    assert [e.type for e in h.sink.events()] == [AUDITED, FAILED, FAILED]


def test_the_demo_report_has_two_failed_jobs(auditor: Any) -> None:
    demo = demo_module("builders_ops").backup_job_report()
    h = auditor
    assert h.deliver(h.upload(demo.key, demo.content)).status_code == 204
    [audited] = h.sink.events(AUDITED)
    assert audited.data["totals"] == {"COMPLETED": 6, "EXPIRED": 1, "FAILED": 1}
    failed = h.sink.events(FAILED)
    assert [(e.data["status"], e.data["line"]) for e in failed] == [("FAILED", 4), ("EXPIRED", 7)]
    assert failed[0].data["message"].startswith("Insufficient privileges")
    assert failed[0].data["resource"] == "arn:aws:dynamodb:eu-west-1:123456789012:table/users"
    assert set(audited.data["columns"]) == {
        "status",
        "job_id",
        "resource",
        "started_at",
        "finished_at",
        "message",
    }


HEADERS = {
    "upper": "JOB_ID,RESOURCE,STATUS,START_TIME,END_TIME",
    "lower": "job id,resource,status,started_at,finished_at",
    "camel": "JobId,ResourceArn,State,CreationDate,CompletionDate",
    "aws-report": "Backup Job Id,Resource Arn,Job Status,Creation Date,Completion Date",
}


@pytest.mark.parametrize("header", HEADERS.values(), ids=HEADERS.keys())
def test_header_spellings_are_all_understood(auditor: Any, header: str) -> None:
    h = auditor
    body = f"\ufeff{header}\r\nj-9,arn:x,Failed,2026-11-28T01:00:00Z,2026-11-28T02:00:00Z\r\n"
    assert h.deliver(h.upload(KEY, body.encode())).status_code == 204
    [row] = h.rows(backup_audit_rows, "line")
    assert (row["job_id"], row["resource"], row["status"]) == ("j-9", "arn:x", "FAILED")
    assert (row["started_at"], row["finished_at"]) == (
        "2026-11-28T01:00:00Z",
        "2026-11-28T02:00:00Z",
    )
    [failed] = h.sink.events(FAILED)
    assert failed.data["job_id"] == "j-9" and failed.data["line"] == 2


def test_a_log_without_status_column_is_refused_naming_it(auditor: Any) -> None:
    h = auditor
    body = b"JOB_ID,RESOURCE,Status Message\nj-1,arn:x,ok\n"
    response = h.deliver(h.upload(KEY, body))
    assert response.status_code == 422
    body_ = ops.problem(response)
    assert body_["type"] == "urn:eventfn:problem:missing-column"
    assert body_["field"] == "STATUS" and "STATUS" in body_["detail"]
    assert "Status Message" in body_["detail"]  # what the header had instead
    assert body_["retryable"] is False
    assert h.rows(backup_audit_rows, "line") == [] and h.sink.received == []


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"STATUS\nCOMPLETED\n\xff\xfe broken\n", b"\xff\xfeS\x00"],
    ids=["empty", "blank-lines", "bom-only", "latin-garbage", "utf-16"],
)
def test_empty_or_non_utf8_logs_are_permanent_errors(auditor: Any, content: bytes) -> None:
    h = auditor
    response = h.deliver(h.upload(KEY, content))
    assert response.status_code == 422
    assert ops.problem(response)["type"] == "urn:eventfn:problem:unreadable-backup-log"
    assert h.rows(backup_audit_rows, "line") == [] and h.sink.received == []


def test_header_only_log_is_audited_with_zero_rows(auditor: Any) -> None:
    h = auditor
    assert h.deliver(h.upload(KEY, b"STATUS,JOB_ID\n")).status_code == 204
    [audited] = h.sink.events()
    assert audited.type == AUDITED
    assert (audited.data["rows"], audited.data["totals"], audited.data["failed_jobs"]) == (
        0,
        {},
        [],
    )


def test_multiline_fields_and_odd_statuses(auditor: Any) -> None:
    h = auditor
    body = (
        "STATUS,JOB_ID,Status Message\n"
        'FAILED,j-1,"line one\nline two"\n'
        ",j-2,no status\n"
        "partial success,j-3,\n"
        "COMPLETED,j-4,\n"
    )
    assert h.deliver(h.upload(KEY, body.encode())).status_code == 204
    rows = h.rows(backup_audit_rows, "line")
    assert [(r["line"], r["status"]) for r in rows] == [
        (2, "FAILED"),
        (4, "UNKNOWN"),
        (5, "PARTIAL_SUCCESS"),
        (6, "COMPLETED"),
    ]
    assert json.loads(rows[0]["details"]) == {"Status Message": "line one\nline two"}
    failed = h.sink.events(FAILED)
    assert [e.data["job_id"] for e in failed] == ["j-1", "j-2", "j-3"]
    assert failed[0].data["message"] == "line one\nline two"


def test_failed_jobs_are_capped_in_the_audit_but_each_is_announced(auditor: Any) -> None:
    h = auditor
    lines = ["JOB_ID,STATUS"] + [f"j-{n},FAILED" for n in range(150)] + ["ok,COMPLETED"]
    assert h.deliver(h.upload(KEY, "\n".join(lines).encode())).status_code == 204
    [audited] = h.sink.events(AUDITED)
    assert audited.data["rows"] == 151 and audited.data["failed"] == 150
    assert len(audited.data["failed_jobs"]) == 100 and audited.data["failed_jobs_truncated"]
    assert audited.data["failed_jobs"][-1]["job_id"] == "j-99"
    failed = h.sink.events(FAILED)
    assert len(failed) == 150 == audited.data["failed_events"]
    assert [e.data["line"] for e in failed] == list(range(2, 152))
    assert len(h.rows(backup_audit_rows, "line")) == 151


def test_failed_job_events_respect_the_configured_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKUP_AUDITOR_MAX_FAILED_EVENTS", "3")
    with ops.harness("backup-auditor", tmp_path, monkeypatch) as h:
        lines = ["STATUS"] + ["FAILED"] * 5
        assert h.deliver(h.upload(KEY, "\n".join(lines).encode())).status_code == 204
        [audited] = h.sink.events(AUDITED)
        assert (audited.data["failed"], audited.data["failed_events"]) == (5, 3)
        assert len(audited.data["failed_jobs"]) == 5
        assert len(h.sink.events(FAILED)) == 3


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_same_event_twice_gives_same_rows_and_one_set_of_events(auditor: Any, mode: str) -> None:
    h = auditor
    event = h.upload(KEY, REPORT.encode())
    first = h.deliver(event, mode)
    rows = h.rows(backup_audit_rows, "line")
    second = h.deliver(event, mode)
    assert first.status_code == second.status_code == 204
    assert h.rows(backup_audit_rows, "line") == rows
    assert [e.type for e in h.sink.events()] == [AUDITED, FAILED, FAILED]


def test_a_new_notification_of_the_same_version_upserts_the_same_rows(auditor: Any) -> None:
    h = auditor
    event = h.upload(KEY, REPORT.encode())
    assert h.deliver(event).status_code == 204
    rows = h.rows(backup_audit_rows, "line")
    again = ops.created_event(KEY, event.data["etag"], event.data["size"], event_id="another-id")
    assert h.deliver(again).status_code == 204
    assert h.rows(backup_audit_rows, "line") == rows  # audited_at of the first audit is kept
    audits = h.sink.events(AUDITED)
    assert len(audits) == 2 and audits[0].data == audits[1].data
    assert audits[0].id != audits[1].id


def test_a_large_log_is_streamed_in_batches(auditor: Any) -> None:
    h = auditor
    lines = ["JOB_ID,RESOURCE,STATUS"] + [f"j-{n},arn:r/{n},COMPLETED" for n in range(2345)]
    assert h.deliver(h.upload(KEY, "\n".join(lines).encode())).status_code == 204
    rows = h.rows(backup_audit_rows, "line")
    assert len(rows) == 2345 and rows[-1]["line"] == 2346 and rows[-1]["job_id"] == "j-2344"
    [audited] = h.sink.events()
    assert audited.data["totals"] == {"COMPLETED": 2345} and audited.data["failed_jobs"] == []


@pytest.mark.parametrize(
    "key", ["logs/report.csv", "backup-logs/report.txt", "backup-logs.csv", "raw/backup-logs/a.csv"]
)
def test_objects_outside_backup_logs_csv_are_ignored(auditor: Any, key: str) -> None:
    h = auditor
    assert h.deliver(h.upload(key, REPORT.encode())).status_code == 204
    assert h.rows(backup_audit_rows, "line") == [] and h.sink.received == []


def test_an_overwritten_object_is_skipped_for_its_newer_event(auditor: Any) -> None:
    h = auditor
    stale = h.upload(KEY, REPORT.encode())
    h.upload(KEY, b"STATUS\nFAILED\n")
    assert h.deliver(stale).status_code == 204
    assert h.rows(backup_audit_rows, "line") == [] and h.sink.received == []


def test_a_vanished_object_is_a_permanent_error(auditor: Any) -> None:
    h = auditor
    event = ops.created_event(KEY, "0123456789abcdef0123456789abcdef", 10)
    response = h.deliver(event)
    assert response.status_code == 422
    assert ops.problem(response)["type"] == "urn:eventfn:problem:object-unreadable"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["Job Status", "Status Message", "Backup Job Id"], {"status": 0, "job_id": 2}),
        (["state", "STATUS"], {"status": 1}),  # `status` outranks `state`
        (["Resource Id", "ResourceArn", "status"], {"resource": 1, "status": 2}),
        (["status", "start", "StartTime"], {"started_at": 2}),
    ],
)
def test_columns_resolve_by_alias_priority(header: list[str], expected: dict[str, int]) -> None:
    index = Columns.resolve(header).index
    assert {field: index[field] for field in expected} == expected


def test_missing_status_names_the_column() -> None:
    with pytest.raises(MissingColumn) as raised:
        Columns.resolve(["JOB_ID", "StatusMessage"])
    assert raised.value.field == "STATUS" and raised.value.status == 422


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("COMPLETED", "COMPLETED"),
        (" completed ", "COMPLETED"),
        ("", "UNKNOWN"),
        ("x" * 40, "X" * 32),
    ],
)
def test_status_normalisation(raw: str, status: str) -> None:
    assert normalise_status(raw) == status


def test_an_event_without_etag_reads_the_current_version(auditor: Any) -> None:
    h = auditor
    uploaded = h.upload(KEY, b"STATUS\nCOMPLETED\n")
    event = ops.created_event(KEY, "", uploaded.data["size"])
    assert h.deliver(event).status_code == 204
    [row] = h.rows(backup_audit_rows, "line")
    assert row["log_etag"] == uploaded.data["etag"]
    [audited] = h.sink.events()
    assert audited.data["etag"] == uploaded.data["etag"]
