"""The dead-letter store (`eventfn._deadletters`) on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from eventfn import ConfigurationError, Event
from eventfn._deadletters import (
    DeadLetter,
    DeadLetterNotFound,
    count,
    find,
    from_event,
    get,
    normalise_time,
    purge,
    record_replay,
    replay_event,
    upsert,
)
from eventfn._store import create_engine_from_url
from eventfn._tables_domain import dead_letters


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
        return
    # only the table under test, on a database of its own: independent of other migrations
    pg = create_engine_from_url(request.getfixturevalue("empty_postgres_url"))
    dead_letters.create(pg)
    try:
        yield pg
    finally:
        pg.dispose()


def letter(
    event_id: str,
    *,
    type_: str = "eventfn.order.confirmed.v1",
    received_at: str = "2026-11-28T12:00:00.000000Z",
    dest: str = "http://inventory/",
    code: str = "422",
    data: object = None,
) -> DeadLetter:
    event = Event(
        type=type_,
        source="/eventfn/ingest-api",
        id=event_id,
        data={"order_id": event_id} if data is None else data,
        subject=event_id,
        time="2026-11-28T11:59:00Z",
        datacontenttype="application/json" if data is None else "application/octet-stream",
        extensions={
            "knativeerrordest": dest,
            "knativeerrorcode": code,
            "knativeerrordata": "Ym9vbQ==",  # "boom"
            "knativearrivaltime": "2026-11-28T11:59:00.5Z",
            "deliveryattempt": "4",
            "partitionkey": "p",
        },
    )
    return from_event(event, trace_id="ab" * 16, received_at=received_at)


def test_upsert_then_read_back(engine: Engine) -> None:
    original = letter("o-1")
    with engine.begin() as connection:
        assert upsert(connection, original) is True
        assert upsert(connection, original) is False
    with engine.connect() as connection:
        [found] = find(connection)
        assert get(connection, original.id[:6]) == found
    assert found == original
    assert (found.error_code, found.error_data, found.attempts) == (422, "boom", 4)
    assert set(found.event.extensions) == {"knativearrivaltime", "deliveryattempt", "partitionkey"}
    assert set(replay_event(found).extensions) == {"deliveryattempt", "partitionkey"}
    assert found.pending


def test_binary_data_round_trips(engine: Engine) -> None:
    raw = letter("o-2", data=b"\x00\x01\xfe")
    with engine.begin() as connection:
        upsert(connection, raw)
    with engine.connect() as connection:
        assert get(connection, raw.id).event.data == b"\x00\x01\xfe"


def test_find_filters_and_orders(engine: Engine) -> None:
    letters = [
        letter("o-3", received_at="2026-11-28T12:00:03.000000Z"),
        letter("o-1", received_at="2026-11-28T12:00:01.000000Z"),
        letter("u-1", type_="eventfn.user.created.v1", received_at="2026-11-28T12:00:02.000000Z"),
    ]
    with engine.begin() as connection:
        for item in letters:
            upsert(connection, item)
    with engine.connect() as connection:
        assert [x.event.id for x in find(connection)] == ["o-1", "u-1", "o-3"]
        orders = find(connection, event_type="eventfn.order.confirmed.v1")
        assert [x.event.id for x in orders] == ["o-1", "o-3"]
        since = normalise_time("2026-11-28T12:00:02Z")
        assert [x.event.id for x in find(connection, since=since)] == ["u-1", "o-3"]
        assert [x.event.id for x in find(connection, limit=1)] == ["o-1"]


def test_get_refuses_unknown_ambiguous_and_short_ids(engine: Engine) -> None:
    with engine.begin() as connection:
        for index in range(40):  # enough ids that two share a first hex digit
            upsert(connection, letter(f"o-{index}"))
    with engine.connect() as connection:
        ids = sorted(x.id for x in find(connection))
        shared = next(a[0] for a, b in itertools.pairwise(ids) if a[0] == b[0])
        with pytest.raises(DeadLetterNotFound, match="at least"):
            get(connection, shared)
        first = next(a for a in ids if a[0] == shared)
        with pytest.raises(DeadLetterNotFound, match="no dead letter"):
            get(connection, "zzzz")
        with pytest.raises(DeadLetterNotFound, match="no dead letter"):
            get(connection, "%%%%")  # LIKE wildcards are literal
        assert get(connection, first).id == first


def test_replays_are_counted_and_pending_follows_the_result(engine: Engine) -> None:
    item = letter("o-1")
    with engine.begin() as connection:
        upsert(connection, item)
        record_replay(connection, item.id, "failed: broker 503", "2026-11-28T13:00:00.000000Z")
    with engine.connect() as connection:
        failed = get(connection, item.id)
    assert (failed.replay_count, failed.pending) == (1, True)
    with engine.begin() as connection:
        record_replay(connection, item.id, "ok: broker 202 (4 ms)", "2026-11-28T13:01:00.000000Z")
    with engine.connect() as connection:
        replayed = get(connection, item.id)
    assert (replayed.replay_count, replayed.pending) == (2, False)
    assert replayed.last_replayed_at == "2026-11-28T13:01:00.000000Z"
    again = letter("o-1", received_at="2026-11-28T14:00:00.000000Z", code="500")
    with engine.begin() as connection:
        assert upsert(connection, again) is False
    with engine.connect() as connection:
        row = get(connection, item.id)
    assert (row.replay_count, row.error_code, row.received_at) == (2, 500, again.received_at)
    assert row.last_replay_result == "dead-lettered again (500) at 2026-11-28T14:00:00.000000Z"
    assert row.pending


def test_count_and_purge(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, letter("o-1", received_at="2026-11-01T00:00:00.000000Z"))
        upsert(connection, letter("o-2", received_at="2026-11-20T00:00:00.000000Z"))
        upsert(connection, letter("u-1", type_="eventfn.user.created.v1"))
    before = normalise_time("2026-11-15")
    with engine.begin() as connection:
        assert count(connection, before=before) == 1
        assert count(connection, event_type="eventfn.order.confirmed.v1") == 2
        assert purge(connection, event_type="eventfn.order.confirmed.v1", before=before) == 1
    with engine.begin() as connection:
        assert sorted(x.event.id for x in find(connection)) == ["o-2", "u-1"]
        assert purge(connection) == 2
        assert find(connection) == []


def test_event_json_is_a_structured_cloudevent(engine: Engine) -> None:
    item = letter("o-1")
    with engine.begin() as connection:
        upsert(connection, item)
        raw = connection.exec_driver_sql("SELECT event_json FROM dead_letters").scalar_one()
    document = json.loads(raw)
    assert document["specversion"] == "1.0" and document["data"] == {"order_id": "o-1"}


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2026-11-28", "2026-11-28T00:00:00.000000Z"),
        ("2026-11-28T12:30:00Z", "2026-11-28T12:30:00.000000Z"),
        ("2026-11-28T14:30:00+02:00", "2026-11-28T12:30:00.000000Z"),
        ("2026-11-28T12:30:00.25", "2026-11-28T12:30:00.250000Z"),
    ],
)
def test_times_are_normalised_to_the_stored_form(value: str, stored: str) -> None:
    assert normalise_time(value) == stored


def test_a_bad_time_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ISO 8601"):
        normalise_time("yesterday")
