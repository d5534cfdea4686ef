"""lake-archiver through the WSGI test client, on SQLite and a real S3 API (moto's server):
exactly once under redelivery, batches per type and hour, uploads that fail and are retried,
and the `eventfn lake flush|compact` steps. PostgreSQL runs in
tests/pipelines/test_users_lake_postgres.py.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert

from eventfn import Event
from eventfn._cli_lake import register as register_lake
from eventfn._codec import decode_http
from eventfn._lake import LakePolicy, lake_store
from eventfn._lake_compact import HourStillOpen, compact
from eventfn._lake_flush import flush_all
from eventfn._tables_domain import lake_events

ROOT = Path(__file__).resolve().parents[2]
ECHO = "eventfn.echo.requested.v1"
STORAGE = "eventfn.storage.object.created.v1"
PREFIX = "events/type=eventfn.echo.requested.v1/year=2026/month=11/day=28/hour=10/"


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import users_lake_testing as t  # noqa: E402
from loopback_testing import free_port  # noqa: E402


def echo(n: int, time: str = "2026-11-28T10:15:00Z", **extra: Any) -> Event:
    return Event(
        type=ECHO,
        source="/tests/lake",
        id=f"echo-{n}",
        data={"message": f"hello {n}", "repeat": 1},
        subject=f"demo/{n}",
        time=time,
        datacontenttype="application/json",
        **extra,
    )


def storage_event(key: str, bucket: str = t.BUCKET) -> Event:
    data = {"bucket": bucket, "key": key, "size": 3, "etag": "abc", "event_time": "x"}
    return Event(
        type=STORAGE,
        source=f"s3://{bucket}",
        id=f"s3-{key}",
        data={**data, "event_time": "2026-11-28T10:00:00Z"},
        subject=key,
        time="2026-11-28T10:00:00Z",
        datacontenttype="application/json",
    )


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    env = {"LAKE_FLUSH_ROWS": "3", "LAKE_FLUSH_SECONDS": "3600"}
    with t.lake(tmp_path, monkeypatch, env=env) as served:
        yield served


def _store(lake: Any, bucket: str = t.BUCKET) -> Any:
    return lake_store(lake.settings, bucket)


# -- exactly once --------------------------------------------------------------------------------


@pytest.mark.parametrize("idempotency", [True, False])
def test_a_redelivered_event_lands_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idempotency: bool
) -> None:
    env = {"LAKE_FLUSH_ROWS": "1"}
    with t.lake(tmp_path, monkeypatch, env=env, idempotency=idempotency) as lake:
        event = echo(1)
        for mode in ("binary", "structured", "binary"):
            assert t.deliver(lake.client, event, mode).status_code == 204
        assert flush_all(lake.engine, _store(lake), batch_rows=10).batches == []
        [(key, body)] = lake.objects().items()
        assert key.startswith(PREFIX) and key.endswith(".ndjson")
        [line] = body.decode().splitlines()
        archived = decode_http({"content-type": "application/cloudevents+json"}, line.encode())
        assert archived == event
        [row] = lake.staged()
        assert (row["event_key"], row["object_key"]) == ("/tests/lake\x1fecho-1", key)


def test_avro_events_keep_their_bytes(lake: Any) -> None:
    record = t.user(1)
    event = t.user_event(t.CREATED, record)
    assert t.deliver(lake.client, event, "structured").status_code == 204
    assert flush_all(lake.engine, _store(lake), batch_rows=10).events == 1
    [line] = lake.lines()
    assert line["datacontenttype"] == "application/avro" and "data" not in line
    assert base64.b64decode(line["data_base64"]) == t.avro_body(t.CREATED, record)
    assert line["partitionkey"] == "u-42"
    [key] = lake.objects()
    assert key.startswith("events/type=eventfn.user.created.v1/year=2026/month=11/day=28/hour=09/")


# -- batches -------------------------------------------------------------------------------------


def test_batches_are_cut_per_type_and_hour(lake: Any) -> None:
    ten = [echo(n) for n in range(3)]
    eleven = echo(10, time="2026-11-28T12:20:00+01:00")  # 11:20 UTC
    user = t.user_event(t.UPDATED, t.user(2), time="2026-11-28T10:59:59.999Z")
    for event in (ten[0], ten[1], eleven, user):
        assert t.deliver(lake.client, event).status_code == 204
    assert lake.objects() == {}  # no type/hour has 3 events yet
    assert t.deliver(lake.client, ten[2]).status_code == 204
    [(key, body)] = lake.objects().items()
    assert key.startswith(PREFIX)
    assert [json.loads(line)["id"] for line in body.decode().splitlines()] == [
        "echo-0",
        "echo-1",
        "echo-2",
    ]
    report = flush_all(lake.engine, _store(lake), batch_rows=10)  # the quiet-period tick
    assert sorted(batch.key.rsplit("/", 1)[0] for batch in report.batches) == [
        "events/type=eventfn.echo.requested.v1/year=2026/month=11/day=28/hour=11",
        "events/type=eventfn.user.updated.v1/year=2026/month=11/day=28/hour=10",
    ]
    assert sorted(line["id"] for line in lake.lines()) == sorted(
        [e.id for e in ten] + [eleven.id, user.id]
    )
    assert all(row["object_key"] for row in lake.staged())


def test_an_old_waiting_event_makes_the_batch_due(lake: Any) -> None:
    with lake.engine.begin() as connection:
        old = echo(0)
        connection.execute(
            insert(lake_events).values(
                event_key="/tests/lake\x1fecho-0",
                event_type=ECHO,
                hour="2026-11-28T10",
                event_json=json.dumps({"specversion": "1.0", "id": old.id, "source": old.source}),
                received_at="2000-01-01T00:00:00.000000Z",
            )
        )
    assert t.deliver(lake.client, echo(1)).status_code == 204
    [body] = lake.objects().values()
    assert [json.loads(line)["id"] for line in body.decode().splitlines()] == ["echo-0", "echo-1"]


def test_the_batch_key_is_the_same_for_the_same_events(lake: Any) -> None:
    from eventfn._lake import batch_key

    keys = ["b\x1f2", "a\x1f1"]
    first = batch_key(ECHO, "2026-11-28T10", keys)
    assert first == batch_key(ECHO, "2026-11-28T10", list(reversed(keys)))
    assert first != batch_key(ECHO, "2026-11-28T10", keys[:1])
    assert first.startswith(PREFIX)


# -- failing uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["missing-bucket", "unreachable"])
def test_a_failed_upload_leaves_the_events_staged_until_a_later_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    env = {"LAKE_FLUSH_ROWS": "1"}
    if failure == "missing-bucket":
        env["LAKE_BUCKET"] = "lake-not-yet"
        overrides: dict[str, Any] = {}
    else:
        overrides = {"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"}
    with t.lake(tmp_path, monkeypatch, env=env, **overrides) as lake:
        assert t.deliver(lake.client, echo(1)).status_code == 204  # staged: not an error
        assert t.deliver(lake.client, echo(2)).status_code == 204
        assert [row["object_key"] for row in lake.staged()] == [None, None]
        broken = lake_store(lake.settings, lake.settings.bucket if overrides else "lake-not-yet")
        report = flush_all(lake.engine, broken, batch_rows=10)
        assert report.failed == [(ECHO, "2026-11-28T10")] and report.batches == []
        assert [row["object_key"] for row in lake.staged()] == [None, None]  # claim released

        monkeypatch.setenv("EVENTFN_S3_ENDPOINT_URL", lake.s3.meta.endpoint_url)
        argv = ["lake", "flush", "--url", lake.settings.effective_database_url]
        argv += ["--bucket", t.BUCKET, "--state-dir", str(tmp_path / "cli")]
        assert t.run_cli(register_lake, argv) == 0
        [key] = lake.objects()
        assert [row["object_key"] for row in lake.staged()] == [key, key]
        assert sorted(line["id"] for line in lake.lines()) == ["echo-1", "echo-2"]


# -- compaction ----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 5, tzinfo=UTC)


def test_closed_hours_become_parquet(lake: Any) -> None:
    events = [echo(n) for n in range(4)] + [echo(9, time="2026-11-28T11:00:00Z")]
    avro = t.user_event(t.CREATED, t.user(1), time="2026-11-28T10:30:00Z")
    for event in [*events, avro]:
        assert t.deliver(lake.client, event).status_code == 204
    store = _store(lake)
    # a batch left behind by a flush that died before its commit duplicates echo-0
    orphan = f"{PREFIX}{'0' * 32}.ndjson"
    lake.s3.put_object(Bucket=t.BUCKET, Key=orphan, Body=lake.objects()[next(iter(lake.objects()))])
    report = compact(lake.engine, store, NOW, batch_rows=10)
    assert report.failed == []
    done = {(c.event_type, c.hour): c for c in report.compacted}
    assert {k: c.rows for k, c in done.items()} == {
        (ECHO, "2026-11-28T10"): 4,
        (ECHO, "2026-11-28T11"): 1,
        (t.CREATED, "2026-11-28T10"): 1,
    }
    assert lake.objects(".ndjson") == {}  # the orphan went too
    parquet = lake.objects(".parquet")
    assert set(parquet) == {c.key for c in report.compacted}
    table = pq.read_table(io.BytesIO(parquet[f"{PREFIX}compacted.parquet"]))
    assert table.column_names == [
        "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
        "data_json", "data_base64", "extensions_json",
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [row["id"] for row in rows] == [f"echo-{n}" for n in range(4)]
    assert rows[1]["time"] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    assert json.loads(rows[1]["data_json"]) == {"message": "hello 1", "repeat": 1}
    assert rows[1]["data_base64"] is None and rows[1]["subject"] == "demo/1"
    user_table = pq.read_table(io.BytesIO(parquet[done[(t.CREATED, "2026-11-28T10")].key]))
    assert user_table.column("id").to_pylist() == [avro.id]
    assert all(row["object_key"].endswith("compacted.parquet") for row in lake.staged())
    assert compact(lake.engine, store, NOW, batch_rows=10).compacted == []  # nothing left


def test_avro_rows_in_parquet_keep_the_bytes(lake: Any) -> None:
    record = t.user(1)
    assert t.deliver(lake.client, t.user_event(t.CREATED, record)).status_code == 204
    [done] = compact(lake.engine, _store(lake), NOW, batch_rows=10).compacted
    [row] = pq.read_table(io.BytesIO(lake.objects(".parquet")[done.key])).to_pylist()
    assert base64.b64decode(row["data_base64"]) == t.avro_body(t.CREATED, record)
    assert row["data_json"] is None
    assert json.loads(row["extensions_json"]) == {"partitionkey": "u-42"}


def test_a_late_event_recompacts_its_hour(lake: Any) -> None:
    for n in range(2):
        assert t.deliver(lake.client, echo(n)).status_code == 204
    store = _store(lake)
    [first] = compact(lake.engine, store, NOW, batch_rows=10).compacted
    assert first.rows == 2
    assert t.deliver(lake.client, echo(7, time="2026-11-28T10:59:00Z")).status_code == 204
    assert t.deliver(lake.client, echo(0)).status_code == 204  # a redelivery, after compaction
    [again] = compact(lake.engine, store, NOW, batch_rows=10).compacted
    assert (again.key, again.rows) == (first.key, 3)
    table = pq.read_table(io.BytesIO(lake.objects(".parquet")[first.key]))
    assert sorted(table.column("id").to_pylist()) == ["echo-0", "echo-1", "echo-7"]
    assert lake.objects(".ndjson") == {}


def test_an_open_hour_is_not_compacted(
    lake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVENTFN_S3_ENDPOINT_URL", lake.s3.meta.endpoint_url)
    assert t.deliver(lake.client, echo(1, time="2026-11-28T12:01:00Z")).status_code == 204
    with pytest.raises(HourStillOpen):
        compact(lake.engine, _store(lake), NOW, batch_rows=10, hour="2026-11-28T12")
    assert compact(lake.engine, _store(lake), NOW, batch_rows=10).compacted == []
    argv = ["lake", "compact", "--hour", "2026-11-28T12", "--now", "2026-11-28T12:59:59Z"]
    argv += ["--url", lake.settings.effective_database_url, "--bucket", t.BUCKET]
    argv += ["--state-dir", str(tmp_path / "cli")]
    assert t.run_cli(register_lake, argv) == 1
    assert "still open" in capsys.readouterr().out
    assert lake.objects(".parquet") == {}
    argv[argv.index("--now") + 1] = "2026-11-28T13:00:00Z"
    assert t.run_cli(register_lake, argv) == 0
    assert "compacted eventfn.echo.requested.v1 2026-11-28T12: 1 events" in (
        capsys.readouterr().out
    )
    assert list(lake.objects()) == [
        "events/type=eventfn.echo.requested.v1/year=2026/month=11/day=28/hour=12/compacted.parquet"
    ]


# -- what is archived ----------------------------------------------------------------------------


def test_the_lake_never_archives_its_own_objects(lake: Any) -> None:
    own = storage_event(f"{PREFIX}{'a' * 32}.ndjson")
    assert t.deliver(lake.client, own).status_code == 204
    assert lake.staged() == []
    other = storage_event("documents/report.pdf")
    assert t.deliver(lake.client, other).status_code == 204
    assert [row["event_type"] for row in lake.staged()] == [STORAGE]


def test_events_are_archived_as_received(lake: Any) -> None:
    garbage = t.user_event(t.CREATED, t.user(1)).with_changes(id="bad", data=b"\x00not avro")
    off_schema = echo(5).with_changes(data={"unexpected": True})
    for event in (garbage, off_schema):
        assert t.deliver(lake.client, event).status_code == 204
    flush_all(lake.engine, _store(lake), batch_rows=10)
    lines = {line["id"]: line for line in lake.lines()}
    assert base64.b64decode(lines["bad"]["data_base64"]) == b"\x00not avro"
    assert lines["echo-5"]["data"] == {"unexpected": True}


def test_types_outside_the_prefix_are_refused(lake: Any) -> None:
    event = Event.new("com.example.other.v1", "/tests", {"x": 1})
    response = t.deliver(lake.client, event)
    assert response.status_code == 422
    assert lake.staged() == []


def test_policy_is_read_from_the_environment() -> None:
    policy = LakePolicy.from_env(
        {"LAKE_FLUSH_ROWS": "5", "LAKE_FLUSH_SECONDS": "2.5", "LAKE_BUCKET": "lake"}
    )
    assert policy == LakePolicy(flush_rows=5, flush_seconds=2.5, batch_rows=1000, bucket="lake")
    from eventfn._errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        LakePolicy.from_env({"LAKE_FLUSH_ROWS": "0"})
    with pytest.raises(ConfigurationError):
        LakePolicy.from_env({"LAKE_FLUSH_ROWS": "50", "LAKE_BATCH_MAX_ROWS": "10"})
