"""`eventfn lake flush` and `eventfn lake compact`: the lake-archiver's scheduled steps.

Both run where the function's settings are (EVENTFN_DATABASE_URL, EVENTFN_S3_ENDPOINT_URL,
EVENTFN_BUCKET or LAKE_BUCKET, the AWS credentials) — in the chart as CronJobs. Locally, when an
`eventfn dev` runs in the state directory, its embedded S3 is used.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eventfn._cli_store import add_store_arguments, cli_settings, open_store
from eventfn._lake import ENV_LAKE_BUCKET, LakePolicy, hour_start

if TYPE_CHECKING:
    from eventfn._objects import ObjectStore

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

DEV_FILE = "dev.json"


def register(commands: SubParsers) -> None:
    """Add `eventfn lake ...` to the `eventfn` parser."""
    lake = commands.add_parser("lake", help="the data lake written by lake-archiver")
    sub = lake.add_subparsers(title="lake commands", metavar="COMMAND")
    flush = sub.add_parser(
        "flush",
        help="write every staged event into NDJSON batches now (the quiet-period tick)",
    )
    _common(flush)
    flush.set_defaults(command=_flush)
    compact = sub.add_parser(
        "compact",
        help="turn closed hours into Parquet and delete their NDJSON batches",
        description="Without --hour, every closed hour with events not in Parquet yet. An hour "
        "that has not ended is refused.",
    )
    compact.add_argument("--hour", type=_hour, default=None, help="only YYYY-MM-DDTHH (UTC)")
    compact.add_argument(
        "--now", type=_instant, default=None, help="the current time (RFC 3339; default: now)"
    )
    _common(compact)
    compact.set_defaults(command=_compact)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bucket", default=None, help=f"lake bucket (default ${ENV_LAKE_BUCKET} or the data one)"
    )
    add_store_arguments(parser)


def _hour(value: str) -> str:
    from eventfn._errors import ConfigurationError

    try:
        hour_start(value)
    except ConfigurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _instant(value: str) -> datetime:
    from eventfn._binary import parse_time
    from eventfn._errors import MalformedEvent

    try:
        return parse_time(value)
    except MalformedEvent:
        raise argparse.ArgumentTypeError(f"{value!r} is not an RFC 3339 time") from None


def lake_objects(args: argparse.Namespace, policy: LakePolicy) -> ObjectStore:
    """The lake bucket: of the `eventfn dev` running in the state directory, else configured."""
    from eventfn._lake import lake_store

    settings = cli_settings(args)
    bucket = args.bucket or policy.bucket
    if (settings.state_dir / DEV_FILE).is_file():
        from eventfn.mesh._dev import read_dev_file

        s3 = read_dev_file(settings.state_dir)["s3"]
        local = settings.with_overrides(s3_endpoint_url=s3["endpoint_url"], s3_region=s3["region"])
        keys = (str(s3["access_key"]), str(s3["secret_key"]))
        return lake_store(local, bucket or str(s3["bucket"]), keys)
    return lake_store(settings, bucket)


def _flush(args: argparse.Namespace) -> int:
    from eventfn._lake_flush import flush_all

    policy = LakePolicy.from_env(os.environ)
    engine = open_store(args)
    try:
        report = flush_all(engine, lake_objects(args, policy), batch_rows=policy.batch_rows)
    finally:
        engine.dispose()
    for batch in report.batches:
        print(f"wrote {batch.key} ({batch.rows} events)")
    for event_type, hour in report.failed:
        print(f"eventfn: the batch of {event_type} {hour} was not written", file=sys.stderr)
    print(f"lake flush: {report.events} events in {len(report.batches)} batches")
    return 1 if report.failed else 0


def _compact(args: argparse.Namespace) -> int:
    from eventfn._lake_compact import compact

    policy = LakePolicy.from_env(os.environ)
    now = args.now or datetime.now(UTC)
    engine = open_store(args)
    try:
        store = lake_objects(args, policy)
        report = compact(engine, store, now, batch_rows=policy.batch_rows, hour=args.hour)
    finally:
        engine.dispose()
    for done in report.compacted:
        print(
            f"compacted {done.event_type} {done.hour}: {done.rows} events -> {done.key} "
            f"({len(done.deleted)} NDJSON batches deleted)"
        )
    for event_type, hour, reason in report.failed:
        print(f"eventfn: {event_type} {hour} not compacted: {reason}", file=sys.stderr)
    if not report.compacted and not report.failed:
        print("lake compact: nothing to compact")
    return 1 if report.failed else 0
