"""user-indexer through the WSGI test client on SQLite: Avro in, the newest user version out,
searchable. Events are encoded as an independent producer would (fastavro and the .avsc file of
the registry), sent as `application/avro` in binary mode (raw body) and structured mode
(`data_base64`). PostgreSQL (search, racing deliveries) runs in
tests/pipelines/test_users_lake_postgres.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import users_lake_testing as t  # noqa: E402

CREATED, UPDATED = t.CREATED, t.UPDATED


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Any]:
    with t.indexer(tmp_path) as served:
        yield served


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_avro_user_event_becomes_a_row(index: Any, mode: str) -> None:
    event = t.user_event(CREATED, t.user(1), time="2026-11-28T10:30:01.5+01:00")
    response = t.deliver(index.client, event, mode)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert index.rows() == [
        {
            "user_id": "u-42",
            "email": "ada@example.org",
            "name": "Ada Lovelace",
            "tags": '["analyst", "beta-tester"]',
            "version": 1,
            "updated_at_ms": t.T0_MILLIS,  # the timestamp-millis value, to the millisecond
            "event_time": "2026-11-28T09:30:01.500000Z",  # normalised to UTC
            "event_id": event.id,
        }
    ]


def test_json_user_record_is_read_with_the_same_schema(index: Any) -> None:
    record = {**t.user(1), "updated_at": t.T0_MILLIS}
    event = t.user_event(CREATED, t.user(1)).with_changes(
        data=record, datacontenttype="application/json"
    )
    assert t.deliver(index.client, event).status_code == 204
    [row] = index.rows()
    assert (row["version"], row["updated_at_ms"]) == (1, t.T0_MILLIS)


def test_undecodable_avro_is_dead_lettered(index: Any) -> None:
    event = t.user_event(CREATED, t.user(1)).with_changes(data=b"\x02not avro at all")
    response = t.deliver(index.client, event)
    assert response.status_code == 422
    assert index.rows() == []


def test_partition_key_must_be_the_user_id(index: Any) -> None:
    wrong = t.deliver(index.client, t.user_event(CREATED, t.user(1), partition="u-7"))
    assert wrong.status_code == 422
    assert json.loads(wrong.get_data())["field"] == "partitionkey"
    assert index.rows() == []
    unkeyed = t.user_event(CREATED, t.user(1), partition=None)
    assert t.deliver(index.client, unkeyed).status_code == 204
    assert [row["version"] for row in index.rows()] == [1]


def test_older_version_arriving_late_is_ignored(index: Any) -> None:
    newer = t.user_event(UPDATED, t.user(2, name="Ada King"), time="2026-11-28T09:31:00Z")
    older = t.user_event(UPDATED, t.user(1, name="Ada Byron"), time="2026-11-28T09:35:00Z")
    created = t.user_event(CREATED, t.user(0, name="Ada"), time="2026-11-28T09:29:00Z")
    for event in (newer, older, created):
        assert t.deliver(index.client, event).status_code == 204
    [row] = index.rows()
    assert (row["version"], row["name"], row["event_id"]) == (2, "Ada King", newer.id)


def test_same_version_is_ordered_by_write_time_then_event_time(index: Any) -> None:
    client = index.client

    def names() -> list[str]:
        return [row["name"] for row in index.rows()]

    later = t.user_event(UPDATED, t.user(3, name="B", millis=500), time="2026-11-28T09:00:00Z")
    earlier = t.user_event(UPDATED, t.user(3, name="A"), time="2026-11-28T11:00:00Z")
    assert t.deliver(client, later).status_code == 204
    assert t.deliver(client, earlier).status_code == 204
    assert names() == ["B"]  # equal version, earlier write: ignored despite a later event
    stale = t.user_event(UPDATED, t.user(3, name="C", millis=500), time="2026-11-28T08:59:59Z")
    assert t.deliver(client, stale).status_code == 204
    assert names() == ["B"]  # equal version and write time, older event: ignored
    fresh = t.user_event(
        UPDATED, t.user(3, name="D", millis=500), time="2026-11-28T10:00:00.001+01:00"
    )
    assert t.deliver(client, fresh).status_code == 204
    assert names() == ["D"]  # equal version and write time, newer event (offsets compared)


def test_redelivery_changes_nothing(index: Any) -> None:
    event = t.user_event(UPDATED, t.user(5))
    for mode in ("binary", "structured", "binary"):
        assert t.deliver(index.client, event, mode).status_code == 204
    assert [row["version"] for row in index.rows()] == [5]


def test_search_on_sqlite(index: Any) -> None:
    t.search_checks(index)
