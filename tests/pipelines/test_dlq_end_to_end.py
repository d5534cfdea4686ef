"""The dead-letter path under `eventfn dev`, as a user runs it: a subprocess, the real
dlq-handler, the broker and the Trigger of tests/pipelines/data/dlq/manifests/mesh.yaml.

A poison event published to the broker -> dlq-probe answers 400 -> the broker dead-letters it to
dlq-handler with knativeerrorcode 400 and knativeerrordata (the problem body, base64) -> stored
decoded, eventfn.deadletter.recorded.v1 announced. Then the probe is "fixed" (switch file) and
`eventfn dlq replay` re-publishes the event through the mesh's broker: the probe takes it, with
its original id, and the replay is recorded on the dead letter.
"""

from __future__ import annotations

import argparse
import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dev_testing import WAIT, DevProcess, clean_env, running_dev

from eventfn import Event
from eventfn._cli_dlq import register
from eventfn._codec import encode_binary

DATA = Path(__file__).resolve().parent / "data" / "dlq"
POISON = "eventfn.test.poison.v1"
RECORDED = "eventfn.deadletter.recorded.v1"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    env = clean_env(drop=["K_SINK"])
    with running_dev(
        tmp_path, DATA / "manifests", functions_dirs=[DATA / "functions"], env=env
    ) as handle:
        yield handle


def dlq(state_dir: Path, *argv: str) -> tuple[int, str]:
    """`eventfn dlq ...` with the mesh's state directory (the command functions in-process)."""
    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(["dlq", *argv, "--state-dir", str(state_dir)])
    out = io.StringIO()
    return args.command(args, out), out.getvalue()


def publish(broker_url: str, event: Event) -> None:
    headers, body = encode_binary(event)
    request = urllib.request.Request(broker_url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202


def test_a_dead_letter_is_stored_and_replayed_after_the_fix(dev: DevProcess) -> None:
    ready = dev.wait_for("ready", WAIT)
    assert "dlq-handler" in ready["running"]
    [broker_url] = ready["brokers"].values()
    poison = Event(
        type=POISON,
        source="/tests/dlq",
        id="poison-1",
        data={"order_id": "o-1", "quantity": 0},
        time="2026-11-28T12:00:00Z",
        datacontenttype="application/json",
    )
    publish(broker_url, poison)

    failed = dev.wait_for("hop", WAIT, event_id="poison-1", outcome="failed")
    assert failed["status"] == 400
    dev.wait_for("hop", WAIT, event_id="poison-1", outcome="dead-lettered")
    assert dev.all("hop", event_id="poison-1", outcome="retrying") == []  # 400 is not retried
    dev.wait_for("hop", WAIT, event_type=RECORDED)

    code, text = dlq(dev.state_dir, "list", "--json")
    [record] = [json.loads(line) for line in text.splitlines()]
    assert (record["event_id"], record["event_type"], record["error_code"]) == (
        "poison-1", POISON, 400,
    )  # fmt: skip
    assert record["error_dest"].startswith("http://127.0.0.1:")
    assert record["error_excerpt"].startswith("Poison refused: dlq-probe is broken")
    shown = json.loads(dlq(dev.state_dir, "show", record["id"])[1])
    problem = json.loads(shown["error_data"])  # knativeerrordata, base64-decoded
    assert (problem["status"], problem["type"]) == (400, "urn:eventfn:problem:poison-refused")
    assert shown["event"]["data"] == poison.data

    (dev.state_dir / "dlq-probe.fixed").touch()
    code, text = dlq(dev.state_dir, "replay", record["id"])
    assert code == 0, text
    assert "ok: broker 202" in text

    delivered = dev.wait_for(
        "hop", WAIT, event_id="poison-1", outcome="delivered", trigger="dlq-probe-poison"
    )
    assert delivered["status"] == 204
    taken = (dev.state_dir / "dlq-probe.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in taken] == ["poison-1"]
    [after] = [json.loads(line) for line in dlq(dev.state_dir, "list", "--json")[1].splitlines()]
    assert after["replay_count"] == 1
    assert after["last_replay_result"].startswith("ok: broker 202")
    assert after["last_replayed_at"] is not None
    # a second replay of a now-processed event: the probe deduplicates it on (source, id)
    assert dlq(dev.state_dir, "replay", record["id"])[0] == 0
    dev.wait_count(2, "hop", WAIT, event_id="poison-1", outcome="delivered")
    taken = (dev.state_dir / "dlq-probe.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(taken) == 1
