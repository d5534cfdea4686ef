"""User events and the data lake under `eventfn dev`, as a user runs them: a subprocess, the real
functions, the broker and the Triggers of tests/pipelines/data/lake/mesh.yaml.

Two Avro user events (the demo's, newest first) are published to the broker ingress:
-> user-indexer keeps version 2 (`eventfn users search`),
-> lake-archiver writes each into an NDJSON batch of the embedded S3, whose notification comes
   back through storage-source as eventfn.storage.object.created.v1 — and is not archived;
-> `eventfn lake compact` turns the closed hour into Parquet.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import urllib3
import users_lake_testing as t
from demo_testing import demo_module
from dev_testing import WAIT, DevProcess, clean_env, running_dev

from eventfn._cli_lake import register as register_lake
from eventfn._cli_users import register as register_users

MANIFESTS = Path(__file__).resolve().parent / "data" / "lake"
STORAGE = "eventfn.storage.object.created.v1"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    with running_dev(tmp_path, MANIFESTS, env=clean_env(drop=["LAKE_"])) as handle:
        yield handle


def _publish(ingress: str, document: bytes) -> None:
    headers = {"content-type": "application/cloudevents+json"}
    response = urllib3.request("POST", ingress, body=document, headers=headers, timeout=30.0)
    assert response.status == 202, response.data


def test_user_events_are_indexed_and_archived(
    dev: DevProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ready = dev.wait_for("ready", WAIT)
    [ingress] = ready["brokers"].values()
    demo = demo_module("builders_users")
    updated, created = demo.user_updated(), demo.user_created()
    for item in (updated, created):  # out of order on purpose
        _publish(ingress, item.content)
    for trigger in ("user-indexer-updated", "user-indexer-created"):
        dev.wait_for("hop", WAIT, trigger=trigger, outcome="delivered", status=204)
    for event_type in (demo.UPDATED, demo.CREATED):
        dev.wait_for("hop", WAIT, trigger="lake-archiver-events", event_type=event_type, status=204)
    # each archived event made a batch; its bucket notification came back and was not archived
    lake_hop = dev.wait_for(
        "hop", WAIT, trigger="lake-archiver-events", event_type=STORAGE, outcome="delivered"
    )
    assert lake_hop["subject"].startswith("events/type=eventfn.user.")

    state = ["--state-dir", str(dev.state_dir)]
    for name in [k for k in os.environ if k.startswith(("EVENTFN_", "LAKE_"))]:
        monkeypatch.delenv(name)
    assert t.run_cli(register_users, ["users", "search", "lovelace", "--json", *state]) == 0
    [found] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (found["user_id"], found["version"]) == (demo.USER_ID, 2)

    argv = ["lake", "compact", "--now", "2026-11-28T10:05:00Z", *state]
    assert t.run_cli(register_lake, argv) == 0
    out = capsys.readouterr().out
    assert "compacted eventfn.user.created.v1 2026-11-28T09: 1 events" in out
    assert "compacted eventfn.user.updated.v1 2026-11-28T09: 1 events" in out

    s3, bucket = dev.s3()
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="events/")["Contents"]]
    assert sorted(keys) == [
        "events/type=eventfn.user.created.v1/year=2026/month=11/day=28/hour=09/compacted.parquet",
        "events/type=eventfn.user.updated.v1/year=2026/month=11/day=28/hour=09/compacted.parquet",
    ]  # no NDJSON left, and no storage event was ever archived
    body = s3.get_object(Bucket=bucket, Key=sorted(keys)[1])["Body"].read()
    [row] = pq.read_table(io.BytesIO(body)).to_pylist()
    archived = json.loads(updated.content)
    assert row["data_base64"] == archived["data_base64"]  # the producer's Avro bytes
    assert row["id"].startswith(archived["id"]) and row["type"] == demo.UPDATED
