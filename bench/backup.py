"""Backup benchmark: `eventfn backup db|bucket` and their restores against named baselines.

1. db (SQLite): 100k `users` rows (the FTS5 index is maintained by its triggers). eventfn's
   snapshot (online backup + gzip'd JSON lines + sha256 + upload to S3) against the baseline
   `sqlite3.Connection.backup` raw file copy; eventfn's restore (migrate, load, digest compare)
   against the baseline of copying the raw file back.
2. db (PostgreSQL, when EVENTFN_BENCH_DATABASE_URL answers): the same rows; baseline
   `COPY users TO STDOUT` through psycopg.
3. bucket: 1,000 objects of 8 KiB on a loopback moto S3. First snapshot, then an incremental one
   after 10 objects changed, then a restore into another bucket (RTO); baseline: a plain boto3
   `copy_object` loop over every object (what a naive full backup does each time).

Bounded: a few tens of seconds on 2 shared cores. Prints one line per measurement.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROWS = 100_000
OBJECTS = 1_000
OBJECT_BYTES = 8 * 1024
PG_ENV = "EVENTFN_BENCH_DATABASE_URL"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def line(name: str, seconds: float, rows: int | None, megabytes: float, baseline: str = "") -> None:
    rate = f"{rows / seconds:>10,.0f} rows/s" if rows else " " * 17
    print(f"{name:<44} {seconds:>8.3f} s {rate} {megabytes / seconds:>8.1f} MB/s  {baseline}")


def fill_users(engine: Any, rows: int) -> None:
    from eventfn._tables_domain import users

    with engine.begin() as connection:
        for start in range(0, rows, 10_000):
            batch = [
                {
                    "user_id": f"user-{i:07d}",
                    "email": f"user{i}@example.com",
                    "name": f"User Number {i}",
                    "tags": json.dumps([f"tag{i % 17}", "bench"]),
                    "version": i,
                    "updated_at_ms": 1_700_000_000_000 + i,
                    "event_time": "2026-11-29T12:00:00Z",
                    "event_id": f"evt-{i}",
                }
                for i in range(start, min(rows, start + 10_000))
            ]
            connection.execute(users.insert(), batch)


def moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def bench_db(
    url: str, repo: Any, scratch: Path, label: str, baseline: Callable[[], tuple[str, int]]
) -> None:
    """MB/s are of the source data (SQLite file / PostgreSQL relation size) for every line."""
    from eventfn._backup_db import backup_db, restore_db
    from eventfn._backup_repo import utc_now

    seconds, manifest = timed(lambda: backup_db(url, repo, f"bench-{label}", utc_now))
    base_seconds, (what, source_bytes) = timed(baseline)
    megabytes = source_bytes / 1e6
    line(f"db backup ({label}, {ROWS:,} rows)", seconds, ROWS, megabytes)
    print(f"  source {megabytes:.1f} MB -> snapshot {manifest['bytes'] / 1e6:.1f} MB gzip'd")
    line(f"  baseline: {what}", base_seconds, ROWS, megabytes)
    print(f"  -> eventfn takes {seconds / base_seconds:.1f}x the baseline's time")
    target = f"sqlite:///{scratch / f'restore-{label}.db'}"
    seconds, _ = timed(lambda: restore_db(repo, f"bench-{label}", target))
    line(f"db restore -> SQLite, verified (RTO) ({label})", seconds, ROWS, megabytes)


def _size(url: str) -> int:
    return Path(url.removeprefix("sqlite:///")).stat().st_size


def sqlite_section(repo: Any, scratch: Path) -> None:
    from eventfn._store import create_engine_from_url, upgrade

    url = f"sqlite:///{scratch / 'source.db'}"
    upgrade(url)
    engine = create_engine_from_url(url)
    fill_users(engine, ROWS)
    engine.dispose()

    def raw_backup() -> tuple[str, int]:
        source, copy = sqlite3.connect(scratch / "source.db"), sqlite3.connect(scratch / "raw.db")
        source.backup(copy)
        copy.close()
        source.close()
        return "sqlite3 .backup API raw file copy", _size(url)

    bench_db(url, repo, scratch, "sqlite", raw_backup)
    seconds, _ = timed(lambda: shutil.copyfile(scratch / "raw.db", scratch / "raw-restore.db"))
    line("  baseline restore: copy the raw file back", seconds, ROWS, _size(url) / 1e6)


def postgres_section(repo: Any, scratch: Path) -> None:
    import sqlalchemy

    from eventfn._store import create_engine_from_url, upgrade

    server = os.environ.get(PG_ENV, PG_DEFAULT)
    name = f"eventfn_bench_{os.getpid()}"
    try:
        admin = sqlalchemy.create_engine(
            server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as error:  # a benchmark section, not a product path
        print(f"db (PostgreSQL): skipped, {server} does not answer ({type(error).__name__})")
        return
    url = sqlalchemy.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = create_engine_from_url(url)
        fill_users(engine, ROWS)

        def copy_out() -> tuple[str, int]:
            with engine.connect() as connection:
                size = connection.exec_driver_sql(
                    "SELECT pg_total_relation_size('users')"
                ).scalar_one()
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor.copy("COPY users TO STDOUT") as copy:
                    for _ in copy:
                        pass
            return "psycopg COPY users TO STDOUT", int(size)

        bench_db(url, repo, scratch, "postgresql", copy_out)
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def bucket_section(client: Any, repo: Any) -> None:
    from eventfn._backup_bucket import Source, backup_bucket, restore_bucket
    from eventfn._backup_repo import utc_now

    client.create_bucket(Bucket="data")
    for i in range(OBJECTS):
        client.put_object(Bucket="data", Key=f"docs/{i:04d}.bin", Body=os.urandom(OBJECT_BYTES))
    megabytes = OBJECTS * OBJECT_BYTES / 1e6
    source = Source(client, "data")
    first_seconds, first = timed(lambda: backup_bucket(source, repo, "bench-1", utc_now))
    line(f"bucket backup, first ({OBJECTS} objects)", first_seconds, None, megabytes)
    print(f"  copied {first['copied']} objects")
    for i in range(10):
        client.put_object(Bucket="data", Key=f"docs/{i:04d}.bin", Body=os.urandom(OBJECT_BYTES))
    seconds, second = timed(lambda: backup_bucket(source, repo, "bench-2", utc_now))
    line("bucket backup, incremental (10 changed)", seconds, None, megabytes)
    print(f"  read {second['read']}, copied {second['copied']} objects")
    client.create_bucket(Bucket="naive")

    def copy_loop() -> None:
        for i in range(OBJECTS):
            key = f"docs/{i:04d}.bin"
            client.copy_object(Bucket="naive", Key=key, CopySource={"Bucket": "data", "Key": key})

    base, _ = timed(copy_loop)
    line("  baseline: plain boto3 copy_object loop", base, None, megabytes)
    ratio = first_seconds / base
    print(f"  -> first snapshot: {ratio:.1f}x the copy loop's time (reads and hashes every object)")
    print(f"  -> incremental is {base / seconds:.1f}x faster than the copy loop")
    client.create_bucket(Bucket="restored")
    seconds, _ = timed(lambda: restore_bucket(repo, "bench-2", Source(client, "restored")))
    line("bucket restore, verified (RTO)", seconds, None, megabytes)


def main() -> int:
    import boto3

    from eventfn._backup_repo import BackupRepo
    from eventfn._objects import ObjectStore

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    server, endpoint = moto()
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="backups")
    repo = BackupRepo(ObjectStore(client, "backups"))
    print(f"eventfn backup benchmark, {datetime.now(UTC):%Y-%m-%dT%H:%MZ}, "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="eventfn-bench-") as scratch:
            sqlite_section(repo, Path(scratch))
            postgres_section(repo, Path(scratch))
        bucket_section(client, repo)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
