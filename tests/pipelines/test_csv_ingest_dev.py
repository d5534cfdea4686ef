"""The CSV pipeline end to end under `eventfn dev`: upload -> storage-source -> broker ->
csv-ingest -> Parquet in the embedded S3 + `eventfn.dataset.file.processed.v1` in the broker.

`eventfn dev` runs as a user runs it (a subprocess, real function processes, real S3
notifications) on the fixture manifests in data/csv/.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dev_testing import ROOT, DevProcess, run_eventfn, running_dev

from eventfn.mesh._dev_events import event_data

MANIFESTS = Path(__file__).resolve().parent / "data" / "csv"
CREATED = "eventfn.storage.object.created.v1"
PROCESSED = "eventfn.dataset.file.processed.v1"
KEY = "raw/inventory/2026-11-28.csv"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    with running_dev(tmp_path, MANIFESTS) as handle:
        yield handle


def upload(dev: DevProcess, path: Path, *where: str) -> None:
    done = run_eventfn("upload", str(path), *where, "--state-dir", str(dev.state_dir))
    assert done.returncode == 0, done.stderr


def test_uploaded_csvs_become_parquet_and_events(
    dev: DevProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
    client, bucket = dev.s3()
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
