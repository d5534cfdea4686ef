"""`eventfn dlq list|show|replay|purge` against the SQLite store dlq-handler writes.

Dead letters are produced by the real dlq-handler (test client); replays go over loopback HTTP
to recording servers standing in for the broker and for the subscriber that failed.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlq_testing as dt
import pytest

from eventfn import ConfigurationError
from eventfn._cli_dlq import register
from eventfn._codec import decode_http

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def __call__(self, *argv: str) -> tuple[int, str]:
        parser = argparse.ArgumentParser(prog="eventfn")
        register(parser.add_subparsers())
        args = parser.parse_args(["dlq", *argv, "--state-dir", str(self.state_dir)])
        out = io.StringIO()
        code = args.command(args, out)
        return code, out.getvalue()

    def json_lines(self, *argv: str) -> list[dict[str, Any]]:
        code, text = self("list", "--json", *argv)
        assert code == 0
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Two dead letters of the poison order (two subscribers) and one of another type."""
    monkeypatch.delenv("K_SINK", raising=False)
    monkeypatch.delenv("EVENTFN_DATABASE_URL", raising=False)
    with dt.dlq_harness(tmp_path) as harness:
        poison = dt.poison_event()
        for request in (
            dt.dead_letter_request(poison),
            dt.dead_letter_request(poison, dest="http://lake-archiver.eventfn.svc/", code=503),
            dt.dead_letter_request(
                dt.poison_event("u-1", type="eventfn.user.created.v1"), code=400, body=b"bad"
            ),
        ):
            assert harness.deliver(*request).status_code == 204
    yield Cli(tmp_path / "state")


def test_list_shows_every_dead_letter(stored: Cli) -> None:
    code, text = stored("list")
    assert code == 0
    lines = text.splitlines()
    assert lines[-1] == "3 dead letters"
    assert sum("eventfn.order.confirmed.v1" in line for line in lines) == 2
    assert any("Event data violates its schema" in line and " 422 " in line for line in lines)
    records = stored.json_lines("--type", "eventfn.user.created.v1")
    assert [(r["event_id"], r["error_code"], r["error_excerpt"]) for r in records] == [
        ("u-1", 400, "bad")
    ]
    assert stored.json_lines("--since", "2999-01-01") == []
    assert len(stored.json_lines("--limit", "2")) == 2


def test_show_prints_the_whole_dead_letter(stored: Cli) -> None:
    [record] = stored.json_lines("--type", "eventfn.user.created.v1")
    code, text = stored("show", record["id"][:8])
    assert code == 0
    document = json.loads(text)
    assert document["error_data"] == "bad" and document["trace_id"] == record["trace_id"]
    assert document["event"]["id"] == "u-1" and document["event"]["partitionkey"] == "c-1"
    with pytest.raises(ConfigurationError, match="no dead letter"):
        stored("show", "ffffffffff")


def _order_to(stored: Cli, dest: str = dt.SUBSCRIBER_URL) -> dict[str, Any]:
    records = stored.json_lines("--type", "eventfn.order.confirmed.v1")
    return next(r for r in records if r["error_dest"] == dest)


def test_replay_of_a_fixed_poison_event_to_its_original_destination(stored: Cli) -> None:
    record = _order_to(stored)
    with dt.recorder(default=200) as subscriber:
        # the subscriber is "fixed": it answers 400 once more, then 200
        subscriber.statuses[:] = [400]
        _point_destination(stored, record["id"], subscriber.url)
        code, text = stored("replay", record["id"], "--to", "original")
        assert code == 1 and "failed: original 400" in text
        code, text = stored("replay", record["id"], "--to", "original")
        assert code == 0 and "ok: original 200" in text
    assert len(subscriber.received) == 2
    headers, body = subscriber.received[-1]
    replayed = decode_http(headers, body)
    assert (replayed.id, replayed.source, replayed.type) == (
        "order-1042", "/eventfn/ingest-api", "eventfn.order.confirmed.v1",
    )  # fmt: skip
    assert replayed.data == dt.poison_event().data
    assert replayed.extensions == {"partitionkey": "c-1"}  # no knativeerror*, no arrival time
    assert headers["traceparent"].split("-")[1] == record["trace_id"]
    after = _order_to(stored, subscriber.url)
    assert after["replay_count"] == 2 and after["last_replay_result"].startswith("ok: original 200")


def _point_destination(stored: Cli, letter_id: str, url: str) -> None:
    """The recorded knativeerrordest names the subscriber's in-cluster URL; aim it at ours."""
    from sqlalchemy import update

    from eventfn._store import create_engine_from_url
    from eventfn._tables_domain import dead_letters

    engine = create_engine_from_url(stored.state_dir / "eventfn.db")
    with engine.begin() as connection:
        connection.execute(
            update(dead_letters).where(dead_letters.c.id == letter_id).values(error_dest=url)
        )
    engine.dispose()


def test_replay_to_the_broker_keeps_the_id(stored: Cli) -> None:
    record = _order_to(stored)
    with dt.recorder(default=202) as broker:
        code, text = stored("replay", record["id"], "--broker-url", broker.url)
    assert code == 0 and "ok: broker 202" in text
    [replayed] = broker.events()
    assert replayed.id == "order-1042"
    assert _order_to(stored)["last_replay_result"].startswith("ok: broker 202")


def test_replay_uses_k_sink_then_the_local_mesh(
    stored: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _order_to(stored)
    with pytest.raises(ConfigurationError, match="no `eventfn dev` is running"):
        stored("replay", record["id"])
    with dt.recorder() as mesh:
        dev = {"pid": os.getpid(), "brokers": {"eventfn/default": mesh.url}}
        (stored.state_dir / "dev.json").write_text(json.dumps(dev), encoding="utf-8")
        assert stored("replay", record["id"])[0] == 0
        assert len(mesh.received) == 1
        with dt.recorder() as sink:
            monkeypatch.setenv("K_SINK", sink.url)
            assert stored("replay", record["id"])[0] == 0
            assert len(sink.received) == 1 and len(mesh.received) == 1


def test_replay_all_dry_run_sends_and_records_nothing(stored: Cli) -> None:
    with dt.recorder() as broker:
        code, text = stored("replay", "--all", "--dry-run", "--broker-url", broker.url)
        assert code == 0 and text.splitlines()[-1] == "would replay 3 of 3"
        assert "ce-id=order-1042" in text and "knativeerror" not in text
        assert broker.received == []
    assert all(r["replay_count"] == 0 for r in stored.json_lines())


def test_replay_all_skips_what_was_replayed_successfully(stored: Cli) -> None:
    with dt.recorder() as broker:
        broker.statuses[:] = [503]  # the first replay fails
        code, text = stored(
            "replay", "--all", "--type", "eventfn.order.confirmed.v1", "--broker-url", broker.url
        )
        assert code == 1 and text.splitlines()[-1] == "replayed 1 of 2"
        code, text = stored("replay", "--all", "--broker-url", broker.url)
        assert code == 0 and text.splitlines()[-1] == "replayed 2 of 2"  # the failed one + user
        code, text = stored("replay", "--all", "--broker-url", broker.url)
        assert text.splitlines()[-1] == "replayed 0 of 0"
        code, text = stored("replay", "--all", "--include-replayed", "--broker-url", broker.url)
        assert text.splitlines()[-1] == "replayed 3 of 3"
    assert len(broker.received) == 2 + 2 + 3


def test_replay_of_undecodable_data_sends_the_original_bytes(tmp_path: Path) -> None:
    broken = b'{"order_id": "order-7", "items": [}'
    with dt.dlq_harness(tmp_path) as harness:
        headers, _ = dt.dead_letter_request(dt.poison_event("order-7"))
        assert harness.deliver(headers, broken).status_code == 204
    cli = Cli(tmp_path / "state")
    [record] = cli.json_lines()
    with dt.recorder() as broker:
        assert cli("replay", record["id"], "--broker-url", broker.url)[0] == 0
    [(headers, body)] = broker.received
    assert body == broken and headers["content-type"] == "application/json"


def test_replay_to_an_unreachable_destination_is_recorded_as_failed(stored: Cli) -> None:
    record = _order_to(stored)
    _point_destination(stored, record["id"], "http://127.0.0.1:1/")
    code, text = stored("replay", record["id"], "--to", "original", "--timeout", "2")
    assert code == 1 and "failed: original unreachable" in text
    after = next(r for r in stored.json_lines() if r["id"] == record["id"])
    assert after["replay_count"] == 1 and after["last_replay_result"].startswith("failed:")


def test_replay_arguments_are_checked(stored: Cli) -> None:
    with pytest.raises(ConfigurationError, match="go with --all"):
        stored("replay", "abcd1234", "--type", "x")
    with pytest.raises(SystemExit):
        stored("replay")  # neither an id nor --all


def test_purge_counts_without_yes_and_deletes_with_it(stored: Cli) -> None:
    code, text = stored("purge", "--type", "eventfn.order.confirmed.v1")
    assert code == 0 and text.startswith("would delete 2 dead letter(s)")
    assert len(stored.json_lines()) == 3
    assert stored("purge", "--before", "2000-01-01", "--yes")[1] == "deleted 0 dead letter(s)\n"
    code, text = stored("purge", "--type", "eventfn.order.confirmed.v1", "--yes")
    assert text == "deleted 2 dead letter(s)\n"
    assert [r["event_id"] for r in stored.json_lines()] == ["u-1"]


def test_a_state_dir_without_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no database"):
        Cli(tmp_path / "nothing")("list")


def test_error_data_survives_the_cli_as_text(stored: Cli) -> None:
    record = _order_to(stored)
    document = json.loads(stored("show", record["id"])[1])
    assert document["error_data"] == dt.PROBLEM.decode()
    assert base64.b64encode(dt.PROBLEM).decode() not in json.dumps(document)
