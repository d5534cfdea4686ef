"""`eventfn dev` as a user runs it: a subprocess, real functions, real S3 notifications.

The trace contract checked here: storage-source starts one W3C trace per webhook request
(MinIO sends no `traceparent`) and answers its id (`trace_id`). That trace must be the one
- the broker records for the `eventfn.storage.object.created.v1` event it accepted,
- the broker's delivery to the subscriber carries (the subscriber's `ctx.trace.trace_id` is
  parsed from the `traceparent` HTTP header it received), and
- the event itself names in its CloudEvents distributed-tracing extension (`traceparent`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dev_testing import EVENTFN, ROOT, WAIT, DevProcess, run_eventfn, running_dev

from eventfn._tracing import parse_traceparent
from eventfn.mesh._dev_shutdown import SHUTDOWN_SECONDS

DATA = Path(__file__).resolve().parent / "data"
CREATED = "eventfn.storage.object.created.v1"
KEY = "incoming/Quarterly report été #1.txt"

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    with running_dev(tmp_path, DATA / "manifests", functions_dirs=[DATA / "functions"]) as handle:
        yield handle


def trace_of(traceparent: str | None) -> str:
    parsed = parse_traceparent(traceparent)
    assert parsed is not None, traceparent
    return parsed[0]


def test_upload_reaches_the_subscriber_on_one_trace(dev: DevProcess, tmp_path: Path) -> None:
    ready = dev.wait_for("ready")
    assert set(ready["running"]) == {"storage-source"}  # min-scale 1; probe scales from zero
    assert (dev.state_dir / "dev.json").is_file()
    document = tmp_path / "Quarterly report été #1.txt"
    document.write_text("revenue up\n", encoding="utf-8")
    upload = run_eventfn(
        "upload", str(document), "--prefix", "incoming/", "--state-dir", str(dev.state_dir)
    )
    assert upload.returncode == 0, upload.stderr
    assert f"s3://eventfn-data/{KEY}" in upload.stdout

    webhook = dev.wait_for("webhook", key=KEY, outcome="delivered")
    trace_id = webhook["trace_id"]
    assert webhook["status"] == 200 and webhook["emitted"] == 1 and len(trace_id) == 32
    accepted = dev.wait_for("hop", event_type=CREATED, subject=KEY, outcome="accepted")
    delivered = dev.wait_for("hop", subject=KEY, trigger="probe-created", outcome="delivered")
    assert accepted["trace_id"] == trace_id == delivered["trace_id"]
    assert delivered["function"] == "probe" and delivered["status"] == 204
    assert delivered["event_id"] == accepted["event_id"]

    cold = dev.wait_for("cold-start", service="probe")
    assert cold["reason"] == "request" and 0 < cold["seconds"] < WAIT
    assert delivered["note"] == f"cold start {cold['seconds']:.2f} s"

    [seen] = [json.loads(line) for line in (dev.state_dir / "probe.jsonl").open()]
    assert seen["subject"] == KEY and seen["source"] == "s3://eventfn-data"
    assert seen["event_id"] == accepted["event_id"]
    assert seen["trace_id"] == trace_id  # the traceparent header the subscriber received
    assert trace_of(seen["ce_traceparent"]) == trace_id  # the trace the webhook started


def test_ignored_and_unsubscribed_uploads(dev: DevProcess, tmp_path: Path) -> None:
    dev.wait_for("ready")
    scratch, other = tmp_path / "scratch.txt", tmp_path / "notes.txt"
    scratch.write_text("x", encoding="utf-8")
    other.write_text("y", encoding="utf-8")
    state = ["--state-dir", str(dev.state_dir)]
    assert run_eventfn("upload", str(scratch), "--prefix", "tmp/", *state).returncode == 0
    assert run_eventfn("upload", str(other), "--prefix", "other/", *state).returncode == 0

    ignored = dev.wait_for("webhook", key="tmp/scratch.txt", outcome="delivered")
    assert (ignored["emitted"], ignored["ignored"]) == (0, 1)
    kept = dev.wait_for("webhook", key="other/notes.txt", outcome="delivered")
    assert (kept["emitted"], kept["ignored"]) == (1, 0)
    assert kept["trace_id"] != ignored["trace_id"]
    no_match = dev.wait_for("hop", subject="other/notes.txt", outcome="no-match")
    assert no_match["trace_id"] == kept["trace_id"]

    events = run_eventfn("events", "--type", "eventfn.storage", "--json", *state)
    assert events.returncode == 0, events.stderr
    [logged] = [json.loads(line) for line in events.stdout.splitlines()]
    assert (logged["subject"], logged["status"]) == ("other/notes.txt", "no-match")
    assert not any(r["kind"] == "cold-start" and r["service"] == "probe" for r in dev.records)

    assert dev.stop() == 0
    summary = dev.wait_for("summary", timeout=1)
    assert summary["broker"]["accepted"] == 1 and summary["broker"]["no_match"] == 1
    assert not (dev.state_dir / "dev.json").exists()
    assert run_eventfn("upload", str(other), *state).returncode == 1  # no mesh runs there any more


def test_stop_ends_every_function_process(dev: DevProcess) -> None:
    dev.wait_for("ready")
    boot = dev.wait_for("cold-start", service="storage-source")
    assert dev.stop() == 0
    stops = [r for r in dev.records if r["kind"] == "stop"]
    assert stops == [{"kind": "stop", "service": "storage-source", "reason": "shutdown"}]
    with pytest.raises(ProcessLookupError):
        os.kill(boot["pid"], 0)


def test_demo_on_the_real_manifests_exits_zero(tmp_path: Path) -> None:
    """What `make run` does: migrate, seed the demo stock, run every demo chain to completion."""
    if not (ROOT / "k8s").is_dir():
        pytest.skip("k8s/ is not rendered yet (make render)")
    env = {**os.environ, "EVENTFN_TRACING": "off", "EVENTFN_STATE_DIR": str(tmp_path)}
    for setup in (["db", "upgrade"], ["inventory", "seed", "demo/inventory-seed.json"]):
        prepared = subprocess.run(
            [EVENTFN, *setup],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    process = subprocess.Popen(
        [EVENTFN, "dev", "--demo", "--exit", "--port", "0", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out, err = process.communicate(timeout=420)
    finally:
        if process.poll() is None:  # SIGTERM, not SIGKILL: a killed mesh leaves its functions
            process.send_signal(signal.SIGTERM)
            process.wait(SHUTDOWN_SECONDS + 30)
    assert process.returncode == 0, out + err
    manifest = json.loads((ROOT / "demo" / "inputs" / "manifest.json").read_text())
    inputs = len(manifest["inputs"])
    assert f"demo: {inputs} chains complete, 0 failed, 0 skipped" in out
    assert out.count("✔ complete") == inputs
    assert "s3:ObjectCreated:Put" in out and "echo-requested → echo" in out
    assert "cold start" in out and "eventfn dev summary" in out
    assert "✉" in out  # the notifier's Teams/Slack messages reached the local capture
    assert "\033[" not in out  # no colours when stdout is not a terminal


def test_demo_inputs_are_deterministic(tmp_path: Path) -> None:
    """demo/inputs/ is generated (not committed): two builds must produce the same bytes."""
    builder = str(ROOT / "demo" / "make_inputs.py")
    out = tmp_path / "inputs"
    built = subprocess.run(
        [sys.executable, builder, "--out", str(out)], capture_output=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stderr
    check = subprocess.run(
        [sys.executable, builder, "--out", str(out), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout
