"""The documents pipeline in `eventfn dev` (a subprocess, real function processes, the embedded
S3 and its bucket notifications): the demo PDF uploaded under documents/ goes
storage-source -> text-extractor -> eventfn.document.text.extracted.v1, which fans out to
sentiment-analyzer (-> eventfn.document.sentiment.scored.v1) AND to a second subscriber, the
`documents-probe` test function (tests/pipelines/data/documents/functions/).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from eventfn._tables_pipelines import document_sentiments

ROOT = Path(__file__).resolve().parents[2]
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
WAIT = 120.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _documents_testing() -> ModuleType:
    if "documents_testing" not in sys.modules:
        path = Path(__file__).with_name("documents_testing.py")
        spec = importlib.util.spec_from_file_location("documents_testing", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["documents_testing"] = module
        spec.loader.exec_module(module)
    return sys.modules["documents_testing"]


dt = _documents_testing()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTFN, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Any]:
    state = tmp_path / "state"
    command = [
        EVENTFN, "dev", "--manifests", str(dt.DATA / "manifests"),
        "--functions-dir", str(ROOT / "functions"),
        "--functions-dir", str(dt.DATA / "functions"),
        "--state-dir", str(state), "--port", "0", "--idle-seconds", "120", "--json",
    ]  # fmt: skip
    env = {**os.environ, "EVENTFN_TRACING": "off"}
    with (tmp_path / "dev.stderr").open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
        handle = dt.DevProcess(process, state)
        handle.start_reader()
        try:
            yield handle
        finally:
            handle.stop()


def test_the_demo_pdf_is_scored_and_fanned_out(dev: Any, tmp_path: Path) -> None:
    dev.wait_for("ready", WAIT)
    demo = dt.builders().quarterly_review_pdf()
    document = tmp_path / "quarterly-review.pdf"
    document.write_bytes(demo.content)
    state = ["--state-dir", str(dev.state_dir)]
    upload = run("upload", str(document), "--key", demo.key, *state)
    assert upload.returncode == 0, upload.stderr

    scored = dev.wait_for("hop", WAIT, event_type=dt.SCORED, outcome="accepted")
    assert scored["subject"] == demo.key
    probed = dev.wait_for("hop", WAIT, trigger="documents-probe-extracted", outcome="delivered")
    analyzed = dev.wait_for(
        "hop", WAIT, trigger="sentiment-analyzer-extracted", outcome="delivered"
    )
    assert probed["event_id"] == analyzed["event_id"]  # one event, two subscribers

    [seen] = [json.loads(line) for line in (dev.state_dir / "documents-probe.jsonl").open()]
    assert seen["subject"] == demo.key and seen["event_id"] == probed["event_id"]
    assert seen["text_key"] == "text/documents/quarterly-review.pdf.txt"
    assert seen["source"] == "/eventfn/text-extractor"

    events = run("events", "--type", "eventfn.document", "--json", "--limit", "10", *state)
    assert events.returncode == 0, events.stderr
    logged = [json.loads(line) for line in events.stdout.splitlines()]
    assert [event["type"] for event in logged] == [dt.EXTRACTED, dt.SCORED]

    engine = create_engine(f"sqlite:///{dev.state_dir / 'eventfn.db'}")
    try:
        with engine.connect() as connection:
            [row] = connection.execute(select(document_sentiments)).mappings().all()
    finally:
        engine.dispose()
    assert (row["object_key"], row["label"]) == (demo.key, "positive")
    assert row["sentences"] == 12 and row["text_key"] == seen["text_key"]
