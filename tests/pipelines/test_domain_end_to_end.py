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
import importlib.util
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
from types import ModuleType
from typing import Any

import pytest
import urllib3

from eventfn._cli_inventory import register

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = Path(__file__).resolve().parent / "data" / "domain"
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
WAIT = 120.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _domain_testing() -> ModuleType:
    if "domain_testing" not in sys.modules:
        path = Path(__file__).with_name("domain_testing.py")
        spec = importlib.util.spec_from_file_location("domain_testing", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["domain_testing"] = module
        spec.loader.exec_module(module)
    return sys.modules["domain_testing"]


dt = _domain_testing()
KEY = dt.SigningKey.rsa("e2e-1")


@dataclass
class Dev:
    """A running `eventfn dev --json` and every record it printed so far."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    records: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait_for(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first record (seen before or next) of `kind` whose fields equal `match`."""
        deadline = time.monotonic() + WAIT
        seen = 0
        while True:
            for record in self.records[seen:]:
                if record["kind"] == kind and all(record.get(k) == v for k, v in match.items()):
                    return record
            seen = len(self.records)
            try:
                record = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {kind} {match}") from None
            assert record is not None, f"eventfn dev exited early: {self.records}"
            self.records.append(record)

    def service_url(self, service: str) -> str:
        """The loopback URL of a running function, from the pid file the supervisor writes."""
        _, port = (self.state_dir / "run" / f"{service}.pid").read_text().split()
        return f"http://127.0.0.1:{port}"


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    state = tmp_path / "state"
    jwks = dt.write_jwks(tmp_path / "jwks.json", KEY)
    command = [
        EVENTFN, "dev", "--manifests", str(MANIFESTS),
        "--functions-dir", str(ROOT / "functions"), "--schemas-dir", str(ROOT / "schemas"),
        "--state-dir", str(state), "--port", "0", "--idle-seconds", "120", "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFN_", "INGEST_"))}
    env.update(EVENTFN_TRACING="off", INGEST_JWKS_FILE=str(jwks))
    with (tmp_path / "dev.stderr").open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
        handle = Dev(process, state)
        threading.Thread(target=handle.read, daemon=True).start()
        try:
            yield handle
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def inventory(*argv: str) -> None:
    """`eventfn inventory ...` through its registrar (the lead adds it to the CLI)."""
    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(["inventory", *argv])
    assert args.command(args) == 0


def test_orders_and_an_upload_through_ingest_api(
    dev: Dev, tmp_path: Path, capsys: pytest.CaptureFixture[str]
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
