"""Demo inputs of the ops pipelines: a backup job report for backup-auditor and an nginx access
log for log-processor. Deterministic: fixed seeds and fixed dates, no clock, no downloads.

The lead registers them in make_inputs.py (`builder(backup_job_report)`, ...).
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

from make_inputs import DemoInput

CREATED = "eventfn.storage.object.created.v1"
BACKUP_KEY = "backup-logs/2026-11-28-report.csv"
ACCESS_KEY = "logs/web-2026-11-28.log"
ACCESS_LINES = 360
ACCESS_SEED = 20261128

# An AWS Backup job report (the console's CSV export): header spellings differ from the
# STATUS/JOB_ID/RESOURCE... form on purpose, backup-auditor maps them.
_REPORT_HEADER = (
    "Report Time Period Start",
    "Report Time Period End",
    "Account Id",
    "Region",
    "Backup Job Id",
    "Job Status",
    "Status Message",
    "Resource Type",
    "Resource Arn",
    "Creation Date",
    "Completion Date",
    "Backup Size in Bytes",
    "Backup Vault Name",
)
_RESOURCES = (
    ("RDS", "arn:aws:rds:eu-west-1:123456789012:db:orders"),
    ("EBS", "arn:aws:ec2:eu-west-1:123456789012:volume/vol-0a1b2c3d4e5f60718"),
    ("DynamoDB", "arn:aws:dynamodb:eu-west-1:123456789012:table/users"),
    ("EFS", "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-4f2a"),
    ("S3", "arn:aws:s3:::eventfn-invoices"),
    ("RDS", "arn:aws:rds:eu-west-1:123456789012:db:inventory"),
    ("EC2", "arn:aws:ec2:eu-west-1:123456789012:instance/i-0f9e8d7c6b5a49382"),
    ("EBS", "arn:aws:ec2:eu-west-1:123456789012:volume/vol-07766554433221100"),
)
_FAILURES = {
    2: ("FAILED", "Insufficient privileges to perform dynamodb:CreateBackup"),
    5: ("EXPIRED", "Backup job did not start within the start window of 60 minutes"),
}


def backup_job_report() -> DemoInput:
    """Eight nightly backup jobs, two of which did not complete (FAILED and EXPIRED)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_REPORT_HEADER)
    night = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    for index, (kind, arn) in enumerate(_RESOURCES):
        status, message = _FAILURES.get(index, ("COMPLETED", ""))
        started = night + timedelta(minutes=7 * index)
        finished = started + timedelta(minutes=3 + index)
        writer.writerow(
            (
                "2026-11-28T00:00:00Z",
                "2026-11-29T00:00:00Z",
                "123456789012",
                "eu-west-1",
                f"{0x5E1A0000 + index * 0x1111:08X}-7C3B-4D2E-9F10-2026112800{index:02d}",
                status,
                message,
                kind,
                arn,
                started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                finished.strftime("%Y-%m-%dT%H:%M:%SZ") if status == "COMPLETED" else "",
                "0" if status != "COMPLETED" else str(1_048_576 * (index + 1) * 37),
                "nightly",
            )
        )
    return DemoInput(
        name="backup-job-report",
        kind="upload",
        file="uploads/2026-11-28-report.csv",
        content=out.getvalue().encode(),
        description="an AWS Backup job report (8 jobs, 2 not COMPLETED) uploaded to backup-logs/",
        expect=(CREATED, "eventfn.backup.log.audited.v1", "eventfn.backup.job.failed.v1"),
        requires=("storage-source", "backup-auditor"),
        key=BACKUP_KEY,
        content_type="text/csv",
    )


_PATHS = ("/", "/api/orders", "/api/orders/42", "/static/app.js", "/login", "/api/users/7")
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.11.0",
    "kube-probe/1.31",
)
# status, weight, typical seconds
_OUTCOMES = ((200, 70, 0.040), (304, 8, 0.004), (301, 4, 0.002), (404, 9, 0.006), (500, 5, 0.900))
_OUTCOMES += ((503, 2, 2.500), (401, 2, 0.010))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _clf_time(at: datetime) -> str:
    """`28/Nov/2026:10:00:00 +0000` with English month names whatever the locale."""
    return f"{at:%d}/{_MONTHS[at.month - 1]}/{at:%Y:%H:%M:%S} +0000"


def nginx_access_log() -> DemoInput:
    """360 combined-format lines over six minutes, `$request_time` appended as the last field."""
    rng = random.Random(ACCESS_SEED)
    start = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    weights = [weight for _, weight, _ in _OUTCOMES]
    lines = []
    for index in range(ACCESS_LINES):
        at = start + timedelta(seconds=index)
        status, _, typical = rng.choices(_OUTCOMES, weights)[0]
        client = (
            f"2001:db8:7::{rng.randrange(1, 0xFFFF):x}"
            if rng.random() < 0.2
            else f"203.0.113.{rng.randrange(1, 255)}"
        )
        method = "POST" if status == 401 else "GET"
        referer = "-" if rng.random() < 0.5 else "https://shop.example.com/"
        seconds = round(typical * rng.uniform(0.5, 1.5), 3)
        size = 0 if status in (301, 304) else rng.randrange(200, 40_000)
        lines.append(
            f"{client} - - [{_clf_time(at)}] "
            f'"{method} {rng.choice(_PATHS)} HTTP/1.1" {status} {size} '
            f'"{referer}" "{rng.choice(_AGENTS)}" {seconds:.3f}'
        )
    return DemoInput(
        name="nginx-access-log",
        kind="upload",
        file="uploads/web-2026-11-28.log",
        content=("\n".join(lines) + "\n").encode(),
        description="an nginx access log (combined + $request_time, 6 minutes) uploaded to logs/",
        expect=(CREATED, "eventfn.logs.parsed.v1"),
        requires=("storage-source", "log-processor"),
        key=ACCESS_KEY,
        content_type="text/plain",
    )
