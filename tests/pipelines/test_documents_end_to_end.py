"""The documents pipeline in `eventfn dev` (a subprocess, real function processes, the embedded
S3 and its bucket notifications): the demo PDF uploaded under documents/ goes
storage-source -> text-extractor -> eventfn.document.text.extracted.v1, which fans out to
sentiment-analyzer (-> eventfn.document.sentiment.scored.v1) AND to a second subscriber, the
`documents-probe` test function (tests/pipelines/data/documents/functions/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import documents_testing as dt
import pytest
from dev_testing import WAIT, DevProcess, run_eventfn, running_dev
from sqlalchemy import create_engine, select

from eventfn._tables_pipelines import document_sentiments

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    manifests, functions = dt.DATA / "manifests", dt.DATA / "functions"
    with running_dev(tmp_path, manifests, functions_dirs=[functions]) as handle:
        yield handle


def test_the_demo_pdf_is_scored_and_fanned_out(dev: DevProcess, tmp_path: Path) -> None:
    dev.wait_for("ready", WAIT)
    demo = dt.builders().quarterly_review_pdf()
    document = tmp_path / "quarterly-review.pdf"
    document.write_bytes(demo.content)
    state = ["--state-dir", str(dev.state_dir)]
    upload = run_eventfn("upload", str(document), "--key", demo.key, *state)
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

    events = run_eventfn("events", "--type", "eventfn.document", "--json", "--limit", "10", *state)
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
