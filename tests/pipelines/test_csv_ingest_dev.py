"""The CSV pipeline end to end under `eventfn dev`: upload -> storage-source -> broker ->
csv-ingest -> Parquet in the embedded S3 + `eventfn.dataset.file.processed.v1` in the broker.

`eventfn dev` runs as a user runs it (a subprocess, real function processes, real S3
notifications) on the fixture manifests in data/csv/.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from eventfn.mesh._dev_events import event_data

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = Path(__file__).resolve().parent / "data" / "csv"
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
CREATED = "eventfn.storage.object.created.v1"
PROCESSED = "eventfn.dataset.file.processed.v1"
KEY = "raw/inventory/2026-11-28.csv"
WAIT = 120.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass
class Dev:
    """A running `eventfn dev --json` and the records it printed so far."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    records: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, kind: str, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """The first record (already seen or next) of `kind` whose fields equal `match`."""

        def matches(record: dict[str, Any]) -> bool:
            return record["kind"] == kind and all(record.get(k) == v for k, v in match.items())

        for record in self.records:
            if matches(record):
                return record
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {kind} {match}; output so far: {self.records}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"eventfn dev exited early: {self.records}"
            self.records.append(line)
            if matches(line):
                return line


def _reader(process: subprocess.Popen[str], lines: queue.Queue[dict[str, Any] | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip():
            lines.put(json.loads(line))
    lines.put(None)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    state = tmp_path / "state"
    command = [
        EVENTFN, "dev", "--manifests", str(MANIFESTS), "--functions-dir", str(ROOT / "functions"),
        "--state-dir", str(state), "--port", "0", "--idle-seconds", "120", "--json",
    ]  # fmt: skip
    stderr = (tmp_path / "dev.stderr").open("w")
    env = {**os.environ, "EVENTFN_TRACING": "off"}
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
    )
    handle = Dev(process, state)
    threading.Thread(target=_reader, args=(process, handle.lines), daemon=True).start()
    yield handle
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    stderr.close()


def upload(dev: Dev, path: Path, *where: str) -> None:
    done = subprocess.run(
        [EVENTFN, "upload", str(path), *where, "--state-dir", str(dev.state_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def s3_of(dev: Dev) -> tuple[Any, str]:
    info = json.loads((dev.state_dir / "dev.json").read_text())["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=info["endpoint_url"],
        region_name=info["region"],
        aws_access_key_id=info["access_key"],
        aws_secret_access_key=info["secret_key"],
    )
    return client, info["bucket"]


def test_uploaded_csvs_become_parquet_and_events(
    dev: Dev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "demo"))
    builders = importlib.import_module("builders_csv")
    dev.wait_for("ready")
    rows = [f'{n},{n * 1.5},"item {n}, boxed",2026-11-{1 + n % 28:02d}' for n in range(3000)]
    rows[10] = '10,15.0,"two\nlines",2026-11-11'
    rows[20] = "20,30.0"  # ragged: quarantined, not dropped
    inventory = tmp_path / "2026-11-28.csv"
    inventory.write_text("id,amount,item,day\n" + "\n".join(rows) + "\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a csv\n", encoding="utf-8")
    demo = builders.sales_csv()  # the demo's input, uploaded where the demo puts it
    assert demo.key is not None
    demo_file = tmp_path / "sales.csv"
    demo_file.write_bytes(demo.content)
    upload(dev, inventory, "--prefix", "raw/inventory/")
    upload(dev, notes, "--prefix", "raw/inventory/")
    upload(dev, demo_file, "--key", demo.key)

    delivered = dev.wait_for("hop", subject=KEY, trigger="csv-ingest-raw-csv", outcome="delivered")
    assert delivered["status"] == 204 and delivered["function"] == "csv-ingest"
    accepted = dev.wait_for("hop", event_type=PROCESSED, subject=KEY, outcome="accepted")
    assert accepted["trace_id"] == delivered["trace_id"]  # one chain, one trace
    ignored = dev.wait_for("hop", subject="raw/inventory/notes.txt", outcome="no-match")
    assert ignored["event_type"] == CREATED

    data = event_data(dev.state_dir / "broker.db", accepted["event_id"])
    assert data["key"] == KEY and data["rows"] == 2999 and data["quarantined_rows"] == 1
    assert data["delimiter"] == "," and data["bytes_in"] == inventory.stat().st_size
    client, bucket = s3_of(dev)
    parquet = client.get_object(Bucket=bucket, Key=data["output_key"])["Body"].read()
    table = pq.read_table(io.BytesIO(parquet))
    assert table.num_rows == 2999 and data["bytes_out"] == len(parquet)
    assert table.column("item").to_pylist()[10] == "two\nlines"
    assert set(table.column("source_file").to_pylist()) == {f"s3://{bucket}/{KEY}"}
    quarantine = client.get_object(Bucket=bucket, Key=data["quarantine_key"])["Body"].read()
    assert quarantine.decode().splitlines()[1] == '23,22,4,2,"20,30.0"'

    # the demo input's chain ends in the event its builder expects
    chain = [dev.wait_for("hop", event_type=kind, subject=demo.key, outcome="accepted")
             for kind in demo.expect]  # fmt: skip
    assert len({hop["trace_id"] for hop in chain}) == 1
    sales = event_data(dev.state_dir / "broker.db", chain[-1]["event_id"])
    assert sales["rows"] == builders.SALES_ROWS and sales["quarantined_rows"] == 0
    assert sales["output_key"].startswith("processed/sales/year=")
