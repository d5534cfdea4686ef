"""Idempotency on a real PostgreSQL under real concurrency: threads, processes, dropped links.

The proof of exactly-once: many deliveries of one event race `run()`; the work inserts a row
and lingers inside its transaction to widen the race window. Exactly one row, exactly one
committed work call, and every other delivery is either told to retry or gets the replay.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select, text

from eventfn._errors import DependencyUnavailable, DuplicateInProgress
from eventfn._idempotency import IdempotencyStore, StoredResponse
from eventfn._store import create_engine_from_url
from eventfn._tables import echo_messages, idempotency_records

pytestmark = pytest.mark.postgres

KEY = "/tests/echo/42"
T0 = 1_700_000_000.0
WAIT_S = 30


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class EchoWork:
    """A handler's work: one echo row through the given connection, optionally held open."""

    message_id: str = "m1"
    linger: float = 0.0  # widens a race window; never used to order events
    entered: threading.Event | None = None
    proceed: threading.Event | None = None
    fail: BaseException | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, connection: Connection) -> StoredResponse:
        self.calls.append(self.message_id)
        if self.entered is not None:
            self.entered.set()
        connection.execute(
            insert(echo_messages).values(
                message_id=self.message_id,
                source_event=KEY,
                message="hello",
                length=5,
                received_at="2025-01-01T00:00:00Z",
            )
        )
        if self.proceed is not None:
            assert self.proceed.wait(WAIT_S)
        time.sleep(self.linger)
        if self.fail is not None:
            raise self.fail
        return StoredResponse(200, {"content-type": "application/json"}, b'{"n": 1}', [], False)


def _echo_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(echo_messages.c.message_id)).scalars())


def _deliver(store: IdempotencyStore, work: EchoWork, barrier: Any) -> str:
    """One delivery's outcome: ran, replayed, duplicate, or the unexpected error."""
    try:
        barrier.wait(timeout=WAIT_S)
        return "replayed" if store.run(KEY, work).replayed else "ran"
    except DuplicateInProgress:
        return "duplicate"
    except BaseException as error:
        return repr(error)


class _Background(threading.Thread):
    """A delivery on another thread whose outcome the test reads after join."""

    def __init__(self, store: IdempotencyStore, work: EchoWork) -> None:
        super().__init__(daemon=True)
        self.store, self.work = store, work
        self.outcome: StoredResponse | BaseException | None = None

    def run(self) -> None:
        try:
            self.outcome = self.store.run(KEY, self.work)
        except BaseException as error:
            self.outcome = error

    def result(self) -> StoredResponse | BaseException | None:
        self.join(WAIT_S)
        assert not self.is_alive()
        return self.outcome


# --- behaviour on PostgreSQL --------------------------------------------------------------------


def test_first_run_stores_and_the_second_replays(pg_engine: Engine) -> None:
    store = IdempotencyStore(pg_engine, "echo")
    work = EchoWork()
    first, second = store.run(KEY, work), store.run(KEY, work)
    assert work.calls == ["m1"]
    assert (first.replayed, second.replayed) == (False, True)
    assert (second.status, second.headers, second.body) == (200, first.headers, b'{"n": 1}')
    assert _echo_ids(pg_engine) == ["m1"]


def test_failing_work_rolls_back_releases_and_propagates(pg_engine: Engine) -> None:
    store = IdempotencyStore(pg_engine, "echo")
    failure = LookupError("handler bug")
    with pytest.raises(LookupError) as raised:
        store.run(KEY, EchoWork(fail=failure))
    assert raised.value is failure
    assert _echo_ids(pg_engine) == []
    assert store.run(KEY, EchoWork("m2")).replayed is False
    assert _echo_ids(pg_engine) == ["m2"]


def test_running_delivery_makes_a_second_one_retry(pg_engine: Engine) -> None:
    clock = Clock()
    store = IdempotencyStore(pg_engine, "echo", in_progress_expiry=30, clock=clock)
    entered, proceed = threading.Event(), threading.Event()
    first = _Background(store, EchoWork(entered=entered, proceed=proceed))
    first.start()
    assert entered.wait(WAIT_S)
    clock.now = T0 + 10
    second = EchoWork("m2")
    try:
        with pytest.raises(DuplicateInProgress) as raised:
            store.run(KEY, second)
    finally:
        proceed.set()
    outcome = first.result()
    assert isinstance(outcome, StoredResponse)
    assert outcome.replayed is False
    assert raised.value.retry_after == 20
    assert second.calls == []
    assert store.run(KEY, second).replayed is True
    assert _echo_ids(pg_engine) == ["m1"]


def test_expired_claim_is_taken_over_and_the_slow_delivery_rolls_back(pg_engine: Engine) -> None:
    clock = Clock()
    store = IdempotencyStore(pg_engine, "echo", in_progress_expiry=30, clock=clock)
    slow_entered, slow_proceed, taker_entered = (threading.Event() for _ in range(3))
    slow = _Background(store, EchoWork("m1", entered=slow_entered, proceed=slow_proceed))
    slow.start()
    assert slow_entered.wait(WAIT_S)
    clock.now = T0 + 30  # the slow delivery's claim has expired
    taker = _Background(store, EchoWork("m2", entered=taker_entered))
    taker.start()
    try:
        assert taker_entered.wait(WAIT_S)  # the takeover committed before its work began
    finally:
        slow_proceed.set()
    slow_outcome, taker_outcome = slow.result(), taker.result()
    assert isinstance(slow_outcome, DuplicateInProgress)
    assert isinstance(taker_outcome, StoredResponse)
    assert taker_outcome.replayed is False
    assert _echo_ids(pg_engine) == ["m2"]
    with pg_engine.connect() as connection:
        status = connection.execute(select(idempotency_records.c.status)).scalar_one()
    assert status == "COMPLETED"


def test_connection_dropped_during_work_is_dependency_unavailable(pg_engine: Engine) -> None:
    store = IdempotencyStore(pg_engine, "echo")

    def work_on_a_dying_connection(connection: Connection) -> StoredResponse:
        EchoWork()(connection)
        connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        raise AssertionError("the connection should be gone")

    with pytest.raises(DependencyUnavailable) as raised:
        store.run(KEY, work_on_a_dying_connection)
    assert raised.value.retry_after == 1
    assert _echo_ids(pg_engine) == []
    assert store.run(KEY, EchoWork("m2")).replayed is False  # the claim was released
    assert _echo_ids(pg_engine) == ["m2"]


# --- the proof: racing deliveries -------------------------------------------------------------


def _assert_exactly_once(outcomes: list[str], deliveries: int, engine: Engine) -> None:
    assert len(outcomes) == deliveries, outcomes
    assert outcomes.count("ran") == 1, outcomes
    assert set(outcomes) <= {"ran", "replayed", "duplicate"}, outcomes
    assert len(_echo_ids(engine)) == 1


@pytest.mark.timeout(120)
def test_sixteen_threads_racing_for_one_key_run_the_work_once(
    pg_engine: Engine, migrated_postgres_url: str
) -> None:
    engine = create_engine_from_url(migrated_postgres_url, pool_size=16, max_overflow=0)
    store = IdempotencyStore(engine, "echo")
    work = EchoWork(linger=0.2)
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(_deliver(store, work, barrier)))
        for _ in range(16)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S * 2)
    finally:
        engine.dispose()
    _assert_exactly_once(outcomes, 16, pg_engine)
    assert work.calls == ["m1"]


def race_in_process(url: str, barrier: Any, results: Any) -> None:
    """One delivery in a process of its own (a spawn target: module level, picklable)."""
    engine = create_engine_from_url(url, pool_size=1, max_overflow=0)
    work = EchoWork(linger=0.2)
    try:
        results.put((_deliver(IdempotencyStore(engine, "echo"), work, barrier), len(work.calls)))
    finally:
        engine.dispose()


def _collect(processes: list[Any], results: Any) -> list[tuple[str, int]]:
    """The reports of all processes, or fewer as soon as one of them died without reporting."""
    reports: list[tuple[str, int]] = []
    deadline = time.monotonic() + WAIT_S * 3
    while len(reports) < len(processes) and time.monotonic() < deadline:
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            if any(process.exitcode not in (None, 0) for process in processes):
                break
    return reports


@pytest.mark.timeout(180)
def test_four_processes_racing_for_one_key_run_the_work_once(
    pg_engine: Engine, migrated_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # spawned children import this module by its dotted name: put its root on their sys.path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[__name__.count(".")]))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=race_in_process, args=(migrated_postgres_url, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    try:
        reports = _collect(processes, results)
    finally:
        for process in processes:
            process.join(WAIT_S)
            if process.is_alive():
                process.kill()
    assert [process.exitcode for process in processes] == [0] * 4
    _assert_exactly_once([outcome for outcome, _ in reports], 4, pg_engine)
    assert sum(calls for _, calls in reports) == 1
