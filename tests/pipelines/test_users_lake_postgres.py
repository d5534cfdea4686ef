"""user-indexer and lake-archiver on PostgreSQL: the same statements as on SQLite, through the
postgresql dialect, against a real server — with the races that only a server with row locks
and concurrent transactions can have."""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import users_lake_testing as t
from sqlalchemy import Engine, text

from eventfn import Event
from eventfn._lake import lake_store
from eventfn._lake_compact import compact
from eventfn._lake_flush import flush_all
from eventfn._loader import load_function

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


CREATED, UPDATED = t.CREATED, t.UPDATED


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _together(work: Callable[[int], None], count: int) -> None:
    """Run work(0..count-1) in threads released at once; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(n)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]


# -- user-indexer --------------------------------------------------------------------------------


def test_round_trip_and_search(tmp_path: Path, pg_engine: Engine) -> None:
    with t.indexer(tmp_path, _url(pg_engine)) as index:
        t.search_checks(index)
        [ada] = [row for row in index.rows() if row["user_id"] == "u-42"]
        assert (ada["version"], ada["updated_at_ms"]) == (2, t.T0_MILLIS)


def test_racing_deliveries_keep_the_highest_version(tmp_path: Path, pg_engine: Engine) -> None:
    with t.indexer(tmp_path, _url(pg_engine)) as index:
        for round_ in range(4):
            statuses: list[int] = []

            def send(n: int, round_: int = round_, statuses: list[int] = statuses) -> None:
                version = round_ * 10 + 8 - n  # the highest version starts first
                event = t.user_event(UPDATED, t.user(version, name=f"v{version}"))
                statuses.append(t.deliver(index.client, event).status_code)

            _together(send, 8)
            assert statuses == [204] * 8
            [row] = index.rows()
            assert (row["version"], row["name"]) == (round_ * 10 + 8, f"v{round_ * 10 + 8}")


def _wait_until_blocked(engine: Engine, pid: int) -> None:
    query = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    with engine.connect() as observer:
        for _ in range(20_000):
            if observer.execute(query, {"pid": pid}).scalar() == "Lock":
                return
            observer.rollback()
    raise AssertionError("the second writer never waited for the row lock")


@pytest.mark.parametrize(("first", "second"), [(2, 1), (1, 2)])
def test_a_writer_waiting_on_the_row_rechecks_the_version(
    tmp_path: Path, pg_engine: Engine, first: int, second: int
) -> None:
    load_function("user-indexer", ROOT / "functions")
    record = importlib.import_module("eventfn_functions.user_indexer._record")
    upsert = importlib.import_module("eventfn_functions.user_indexer._upsert")

    def row(version: int) -> Any:
        decoded = t.user_event(UPDATED, t.user(version)).with_changes(data=t.user(version))
        return record.user_row(decoded)

    results: list[bool] = []
    waiter: list[int] = []
    connected = threading.Event()

    def second_writer() -> None:
        with pg_engine.begin() as connection:
            waiter.append(int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
            connected.set()
            results.append(upsert.store_user(connection, row(second)))

    with pg_engine.begin() as connection:
        upsert.store_user(connection, row(0))
    with pg_engine.connect() as holder:
        holder.begin()
        assert upsert.store_user(holder, row(first))  # holds the row lock, not committed
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert connected.wait(timeout=30)
        _wait_until_blocked(pg_engine, waiter[0])
        holder.commit()
        thread.join(timeout=60)
    assert results == [second > first]  # re-checked against the committed row
    with pg_engine.connect() as connection:
        stored = connection.execute(text("SELECT version FROM users")).scalar_one()
    assert stored == max(first, second)


# -- lake-archiver -------------------------------------------------------------------------------


def _echo(n: int) -> Event:
    return Event(
        type="eventfn.echo.requested.v1",
        source="/tests/lake",
        id=f"echo-{n}",
        data={"message": f"hello {n}"},
        time="2026-11-28T10:15:00Z",
        datacontenttype="application/json",
    )


def test_racing_redeliveries_archive_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_engine: Engine
) -> None:
    env = {"LAKE_FLUSH_ROWS": "1"}
    # without idempotency records, only lake_events' primary key stands between the copies
    with t.lake(
        tmp_path, monkeypatch, database_url=_url(pg_engine), env=env, idempotency=False
    ) as lake:
        events = [_echo(n) for n in range(3)]
        statuses: list[int] = []

        def send(n: int) -> None:
            statuses.append(t.deliver(lake.client, events[n % 3]).status_code)

        _together(send, 9)
        assert statuses == [204] * 9
        flush_all(lake.engine, lake_store(lake.settings), batch_rows=10)
        assert sorted(line["id"] for line in lake.lines()) == ["echo-0", "echo-1", "echo-2"]
        assert [row["object_key"] is not None for row in lake.staged()] == [True] * 3


def test_racing_flushes_take_disjoint_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_engine: Engine
) -> None:
    env = {"LAKE_FLUSH_ROWS": "1000"}
    with t.lake(tmp_path, monkeypatch, database_url=_url(pg_engine), env=env) as lake:
        for n in range(60):
            assert t.deliver(lake.client, _echo(n)).status_code == 204
        assert lake.objects() == {}
        reports: list[Any] = []

        def flush(_: int) -> None:
            reports.append(flush_all(lake.engine, lake_store(lake.settings), batch_rows=7))

        _together(flush, 4)
        assert [report.failed for report in reports] == [[]] * 4
        assert sum(report.events for report in reports) == 60
        ids = [line["id"] for line in lake.lines()]
        assert sorted(ids) == sorted(f"echo-{n}" for n in range(60))  # each exactly once

        now = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
        [done] = compact(lake.engine, lake_store(lake.settings), now, batch_rows=7).compacted
        assert done.rows == 60 and lake.objects(".ndjson") == {}
