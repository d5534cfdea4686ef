"""The domain family under `eventfn dev`, as a user runs it: a subprocess, the real functions and
the Triggers of tests/pipelines/data/domain/mesh.yaml, tokens signed with a key made here.

- stock seeded with `eventfn inventory seed` (the registrar of src/eventfn/_cli_inventory.py);
- two orders POSTed to ingest-api with a JWT -> broker -> inventory-updater ->
  eventfn.inventory.updated.v1 and eventfn.inventory.rejected.v1;
- a file POSTed to ingest-api's uploads -> embedded S3 -> its notification -> storage-source ->
  eventfn.storage.object.created.v1: the storage pipeline starts by itself.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import domain_testing as dt
import pytest
import urllib3
from dev_testing import ROOT, DevProcess, clean_env, running_dev

from eventfn._cli_inventory import register

MANIFESTS = Path(__file__).resolve().parent / "data" / "domain"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


KEY = dt.SigningKey.rsa("e2e-1")


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    jwks = dt.write_jwks(tmp_path / "jwks.json", KEY)
    env = clean_env(drop=["INGEST_"], INGEST_JWKS_FILE=str(jwks))
    schemas = ["--schemas-dir", str(ROOT / "schemas")]
    with running_dev(tmp_path, MANIFESTS, extra_args=schemas, env=env) as handle:
        yield handle


def inventory(*argv: str) -> None:
    """`eventfn inventory ...` through its registrar (the lead adds it to the CLI)."""
    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(["inventory", *argv])
    assert args.command(args) == 0


def test_orders_and_an_upload_through_ingest_api(
    dev: DevProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ready = dev.wait_for("ready")
    assert {"ingest-api", "storage-source"} <= set(ready["running"])
    inventory("seed", str(ROOT / "demo" / "inventory-seed.json"), "--state-dir", str(dev.state_dir))
    capsys.readouterr()
    api = dev.service_url("ingest-api")
    scope = f"events:write:{dt.ORDER} uploads:write:documents"
    auth = dt.bearer(KEY.sign(dt.claims(scope)))
    http = urllib3.PoolManager()

    def order(order_id: str, items: list[tuple[str, int]]) -> str:
        data = {"order_id": order_id, "items": [{"sku": s, "quantity": q} for s, q in items]}
        response = http.request(
            "POST",
            f"{api}/v1/events/{dt.ORDER}",
            body=json.dumps(data).encode(),
            headers={**auth, "content-type": "application/json"},
        )
        assert response.status == 202, response.data
        return str(json.loads(response.data)["id"])

    in_stock = order("E2E-1", [("MUG-1", 2), ("TEE-M", 1)])
    short = order("E2E-2", [("MUG-1", 1), ("LAMP-3", 2)])
    upload = http.request(
        "POST",
        f"{api}/v1/uploads/documents",
        fields={"file": ("e2e note.txt", b"hello from ingest-api\n", "text/plain")},
        headers=auth,
    )
    assert upload.status == 201, upload.data
    key = json.loads(upload.data)["key"]
    assert key == "documents/e2e note.txt"

    accepted = dev.wait_for("hop", event_type=dt.ORDER, subject=None, event_id=in_stock)
    assert accepted["outcome"] == "accepted" and accepted["event_source"] == "/eventfn/ingest-api"
    delivered = dev.wait_for("hop", event_id=in_stock, outcome="delivered")
    assert delivered["function"] == "inventory-updater" and delivered["status"] == 204
    dev.wait_for("hop", event_type=dt.UPDATED, subject="E2E-1", outcome="accepted")
    dev.wait_for("hop", event_id=short, outcome="delivered")
    dev.wait_for("hop", event_type=dt.REJECTED, subject="E2E-2", outcome="accepted")
    dev.wait_for("hop", event_type="eventfn.storage.object.created.v1", subject=key)

    inventory("show", "--json", "--state-dir", str(dev.state_dir))
    shown = json.loads(capsys.readouterr().out)
    assert {i["sku"]: i["quantity"] for i in shown["items"]} == {
        "MUG-1": 10,
        "TEE-M": 5,
        "LAMP-3": 1,
    }
    assert {o["order_id"]: o["outcome"] for o in shown["orders"]} == {
        "E2E-1": "updated",
        "E2E-2": "rejected",
    }
