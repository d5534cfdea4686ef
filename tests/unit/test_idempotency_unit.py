"""The idempotency template method on a real SQLite file, with an injectable clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Connection, Engine, func, insert, select, update

from eventfn._errors import ConfigurationError, DependencyUnavailable, DuplicateInProgress
from eventfn._idempotency import IdempotencyStore, StoredResponse, stored_key
from eventfn._store import create_engine_from_url
from eventfn._tables import echo_messages, idempotency_records

KEY = "/tests/echo/42"
T0 = 1_700_000_000.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class EchoWork:
    """A handler's work: writes one echo row through the given connection."""

    message_id: str = "m1"
    fail: BaseException | None = None
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, connection: Connection) -> StoredResponse:
        with self.lock:
            self.calls.append(self.message_id)
        connection.execute(
            insert(echo_messages).values(
                message_id=self.message_id,
                source_event=KEY,
                message="hello",
                length=5,
                received_at="2025-01-01T00:00:00Z",
            )
        )
        if self.fail is not None:
            raise self.fail
        return StoredResponse(
            status=200,
            headers={"ce-type": "eventfn.echo.replied.v1", "content-type": "application/json"},
            body=b'{"message": "hello"}',
            emits=[{"type": "eventfn.echo.stored.v1", "headers": {}, "body": "e30="}],
            emits_sent=False,
        )


def _echo_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(echo_messages.c.message_id)).scalars())


def _record(engine: Engine, key: str = KEY) -> dict[str, object] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(idempotency_records).where(idempotency_records.c.key == key)
        ).one_or_none()
    return None if row is None else dict(row._mapping)


def _claim_of_another_delivery(engine: Engine, expires_at: float) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(idempotency_records).values(
                function="echo",
                key=KEY,
                status="IN_PROGRESS",
                claim_token="00000000-0000-4000-8000-000000000000",
                expires_at=expires_at,
                created_at=T0,
            )
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(sqlite_engine: Engine, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(sqlite_engine, "echo", in_progress_expiry=60, clock=clock)


def test_first_run_stores_and_the_second_replays(
    store: IdempotencyStore, sqlite_engine: Engine
) -> None:
    work = EchoWork()
    first = store.run(KEY, work)
    second = store.run(KEY, work)
    assert work.calls == ["m1"]
    assert first.replayed is False
    assert second.replayed is True
    assert (second.status, second.headers, second.body) == (first.status, first.headers, first.body)
    assert (second.emits, second.emits_sent) == (first.emits, False)
    assert _echo_ids(sqlite_engine) == ["m1"]
    record = _record(sqlite_engine)
    assert record is not None
    assert (record["status"], record["completed_at"]) == ("COMPLETED", T0)


def test_keys_are_per_function(sqlite_engine: Engine, clock: Clock) -> None:
    IdempotencyStore(sqlite_engine, "echo", clock=clock).run(KEY, EchoWork("m1"))
    other = IdempotencyStore(sqlite_engine, "other", clock=clock).run(
        KEY, lambda connection: StoredResponse(204, {}, b"", [], False)
    )
    assert (other.replayed, other.status) == (False, 204)


def test_failing_work_rolls_back_releases_and_propagates(
    store: IdempotencyStore, sqlite_engine: Engine
) -> None:
    failure = RuntimeError("handler bug")
    with pytest.raises(RuntimeError) as raised:
        store.run(KEY, EchoWork(fail=failure))
    assert raised.value is failure
    assert _echo_ids(sqlite_engine) == []
    assert _record(sqlite_engine) is None
    retry = EchoWork("m2")
    assert store.run(KEY, retry).replayed is False
    assert retry.calls == ["m2"]
    assert _echo_ids(sqlite_engine) == ["m2"]


def test_live_claim_of_another_delivery_is_a_duplicate_in_progress(
    store: IdempotencyStore, sqlite_engine: Engine, clock: Clock
) -> None:
    _claim_of_another_delivery(sqlite_engine, expires_at=T0 + 60)
    clock.now = T0 + 12.5
    work = EchoWork()
    with pytest.raises(DuplicateInProgress) as raised:
        store.run(KEY, work)
    assert raised.value.retry_after == 48
    assert raised.value.status == 409
    assert work.calls == []
    clock.now = T0 + 59.9
    with pytest.raises(DuplicateInProgress) as raised:
        store.run(KEY, work)
    assert raised.value.retry_after == 1


def test_expired_claim_is_taken_over(
    store: IdempotencyStore, sqlite_engine: Engine, clock: Clock
) -> None:
    _claim_of_another_delivery(sqlite_engine, expires_at=T0 + 60)
    clock.now = T0 + 60
    work = EchoWork()
    assert store.run(KEY, work).replayed is False
    assert work.calls == ["m1"]
    record = _record(sqlite_engine)
    assert record is not None
    assert record["status"] == "COMPLETED"
    assert record["claim_token"] != "00000000-0000-4000-8000-000000000000"


def test_lost_claim_rolls_back_the_handlers_write(
    store: IdempotencyStore, sqlite_engine: Engine
) -> None:
    def work_whose_claim_is_taken(connection: Connection) -> StoredResponse:
        response = EchoWork()(connection)
        # what a takeover by another delivery leaves behind: a claim token that is not ours
        connection.execute(update(idempotency_records).values(claim_token="someone else"))
        return response

    with pytest.raises(DuplicateInProgress) as raised:
        store.run(KEY, work_whose_claim_is_taken)
    assert raised.value.retry_after == 1
    assert _echo_ids(sqlite_engine) == []
    record = _record(sqlite_engine)
    assert record is not None
    assert record["status"] == "IN_PROGRESS"  # still ours, until it expires


def test_unstorable_response_rolls_back_and_releases(
    store: IdempotencyStore, sqlite_engine: Engine
) -> None:
    def work(connection: Connection) -> StoredResponse:
        EchoWork()(connection)
        return StoredResponse(200, {}, b"", [{"not json": object()}], False)

    with pytest.raises(TypeError):
        store.run(KEY, work)
    assert _echo_ids(sqlite_engine) == []
    assert _record(sqlite_engine) is None


def test_emits_sent_is_remembered(store: IdempotencyStore) -> None:
    store.run(KEY, EchoWork())
    assert store.run(KEY, EchoWork()).emits_sent is False
    store.mark_emits_sent(KEY)
    assert store.run(KEY, EchoWork()).emits_sent is True


def test_keys_longer_than_the_column_are_hashed(
    store: IdempotencyStore, sqlite_engine: Engine
) -> None:
    long_key = "/tests/" + "x" * 600
    assert store.run(long_key, EchoWork()).replayed is False
    assert store.run(long_key, EchoWork()).replayed is True
    assert stored_key(long_key).startswith("sha256:")
    assert len(stored_key(long_key)) <= 512
    assert _record(sqlite_engine, stored_key(long_key)) is not None


@pytest.mark.timeout(60)
def test_threads_racing_for_one_key_run_the_work_once(sqlite_engine: Engine) -> None:
    store = IdempotencyStore(sqlite_engine, "echo")
    work = EchoWork()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=30)
            outcomes.append("replayed" if store.run(KEY, work).replayed else "ran")
        except DuplicateInProgress:
            outcomes.append("duplicate")
        except BaseException as error:
            outcomes.append(repr(error))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 8
    assert outcomes.count("ran") == 1
    assert set(outcomes) <= {"ran", "replayed", "duplicate"}, outcomes
    assert work.calls == ["m1"]
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(echo_messages)).scalar() == 1


def test_unreachable_database_is_dependency_unavailable(unreachable_postgres_url: str) -> None:
    engine = create_engine_from_url(unreachable_postgres_url)
    work = EchoWork()
    try:
        with pytest.raises(DependencyUnavailable) as raised:
            IdempotencyStore(engine, "echo").run(KEY, work)
        with pytest.raises(DependencyUnavailable):
            IdempotencyStore(engine, "echo").mark_emits_sent(KEY)
    finally:
        engine.dispose()
    assert raised.value.retry_after == 1
    assert work.calls == []


@pytest.mark.parametrize(
    ("function", "expiry"), [("", 60.0), ("f" * 201, 60.0), ("echo", 0.0), ("echo", -1.0)]
)
def test_bad_arguments_are_configuration_errors(
    sqlite_engine: Engine, function: str, expiry: float
) -> None:
    with pytest.raises(ConfigurationError):
        IdempotencyStore(sqlite_engine, function, in_progress_expiry=expiry)
