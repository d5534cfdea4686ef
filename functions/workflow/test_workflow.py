"""The workflow function through its WSGI test client, calling the real workflow-tasks function
over loopback HTTP and a real S3 API (moto's server): both example workflows end to end, the
start event's redelivery, the Trigger mapping, the ping tick, and the execution events."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import update

from eventfn import Event, Settings, create_app
from eventfn._codec import decode_http, encode_binary
from eventfn._objects import ObjectStore
from eventfn._store import create_engine_from_url
from eventfn._tables_workflow import workflow_executions
from eventfn._tracing import Tracer
from eventfn._wf_definition import load_directory
from eventfn._wf_engine import WorkflowEngine
from eventfn._wf_store import history

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "functions" / "workflow" / "definitions"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sink:
    url: str = ""
    events: list[Event] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, kind: str, count: int, timeout: float = 30.0) -> list[Event]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.of(kind)) >= count, timeout)
            return self.of(kind)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == f"eventfn.workflow.execution.{kind}.v1"]


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Stack:
    client: Any
    sink: Sink
    store: ObjectStore
    db_url: str


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    for path in DEFINITIONS.iterdir():
        (definitions / path.name).write_bytes(path.read_bytes())
    (definitions / "later.yaml").write_text(
        "StartAt: W\nStates:\n  W: {Type: Wait, Seconds: 0.3, Next: Done}\n"
        "  Done: {Type: Pass, Result: done, End: true}\n"
    )
    monkeypatch.setenv("WORKFLOW_DEFINITIONS_DIR", str(definitions))
    monkeypatch.setenv("WORKFLOW_SCHEDULER_INTERVAL_SECONDS", "0.1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    moto_port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    sink = Sink()

    class SinkHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            event = decode_http({k.lower(): v for k, v in self.headers.items()}, body)
            with sink.arrived:
                sink.events.append(event)
                sink.arrived.notify_all()
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    broker = ThreadingHTTPServer(("127.0.0.1", 0), SinkHandler)
    threading.Thread(target=broker.serve_forever, daemon=True).start()
    sink.url = f"http://127.0.0.1:{broker.server_address[1]}/"
    db_url = f"sqlite:///{tmp_path / 'state' / 'eventfn.db'}"
    settings = Settings(
        functions_dir=ROOT / "functions", schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state", database_url=db_url, sink=sink.url, emit_retries=0,
        s3_endpoint_url=f"http://127.0.0.1:{moto_port}", bucket="data",
    )  # fmt: skip
    tasks = create_app(
        "workflow-tasks", settings=settings, tracer=Tracer("t", enabled=False), env={}
    )
    server = make_server("127.0.0.1", 0, tasks, server_class=_Threaded, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "WORKFLOW_FUNCTION_URL_WORKFLOW_TASKS", f"http://127.0.0.1:{server.server_port}/"
    )
    monkeypatch.setenv(
        "WORKFLOW_TRIGGERS",
        json.dumps([{"type": "eventfn.storage.object.created.v1", "subject_prefix": "telemetry/",
                     "workflow": "telemetry-pipeline"}]),
    )  # fmt: skip
    workflow = create_app("workflow", settings=settings, tracer=Tracer("w", enabled=False), env={})
    store = ObjectStore.from_settings(settings)
    store.client.create_bucket(Bucket="data")
    try:
        yield Stack(workflow.test_client(), sink, store, db_url)
    finally:
        workflow.close()
        server.shutdown()
        tasks.close()
        broker.shutdown()
        moto.stop()


def _post(client: Any, event: Event) -> Any:
    headers, body = encode_binary(event)
    response = client.post("/", data=body, headers=headers)
    assert response.status_code < 300, response.get_data(as_text=True)
    return response


def _order(order_id: str, price: float, country: str) -> dict[str, Any]:
    return {"order_id": order_id, "items": [{"sku": "MUG", "quantity": 2, "price": price}],
            "address": {"country": country}}  # fmt: skip


def _start(workflow: str, data: Any, name: str | None = None) -> Event:
    payload = {"workflow": workflow, "input": data, **({"execution_name": name} if name else {})}
    return Event.new("eventfn.workflow.start.v1", "/tests", payload)


def test_order_processing_succeeds_declines_and_compensates(stack: Stack) -> None:
    ok = _start("order-processing", _order("o-1", 10.0, "DE"))
    _post(stack.client, ok)
    _post(stack.client, ok)  # redelivery: the same execution, not a second one
    _post(stack.client, _start("order-processing", _order("o-2", 900.0, "DE")))
    _post(stack.client, _start("order-processing", _order("o-3", 5.0, "XX")))
    [succeeded] = stack.sink.of("succeeded")
    assert succeeded.data["output"]["shipment"]["items"] == 1
    assert succeeded.data["output"]["payment"]["amount"] == 20.0
    failed = {e.data["name"]: e.data for e in stack.sink.of("failed")}
    assert len(stack.sink.of("started")) == 3
    errors = sorted((f["error"], f["cause"]) for f in failed.values())
    assert errors == [
        ("OrderRejected", "the order was invalid or its payment was declined"),
        ("ShipmentFailed", "the order could not be shipped; its payment was refunded"),
    ]
    shipment_failed = next(f for f in failed.values() if f["error"] == "ShipmentFailed")
    db = create_engine_from_url(stack.db_url)
    with db.connect() as connection:
        states = [
            (h["kind"], h["state"]) for h in history(connection, shipment_failed["execution_id"])
        ]
    db.dispose()
    assert ("StateCaught", "Ship") in states and ("StateSucceeded", "RefundPayment") in states


def test_an_object_under_telemetry_runs_the_pipeline_and_a_bad_file_fails_unretried(
    stack: Stack,
) -> None:
    readings = [{"device_id": "d1", "value": 1}, {"device_id": "d1", "value": 3},
                {"device_id": "d2", "value": 5}]  # fmt: skip
    stack.store.put("telemetry/a.jsonl", "\n".join(map(json.dumps, readings)).encode())
    stack.store.put("telemetry/bad.jsonl", b'{"value": 1}\n')
    for key in ("telemetry/a.jsonl", "telemetry/bad.jsonl"):
        created = Event.new(
            "eventfn.storage.object.created.v1", "/minio", {"key": key}, subject=key
        )
        _post(stack.client, created)
    [succeeded] = stack.sink.of("succeeded")
    assert succeeded.data["output"]["load"] == {
        "table": "warehouse/telemetry", "key": "warehouse/telemetry/a.jsonl.json", "rows": 2,
    }  # fmt: skip
    assert stack.store.get("backup/telemetry/a.jsonl") == stack.store.get("telemetry/a.jsonl")
    warehouse = stack.store.get("warehouse/telemetry/a.jsonl.json").decode().splitlines()
    assert json.loads(warehouse[0])["mean"] == 2.0
    [failed] = stack.sink.of("failed")
    assert (failed.data["error"], failed.data["cause"]) == ("States.TaskFailed", "rejected")


def test_the_ping_tick_resumes_an_execution_left_ready(stack: Stack) -> None:
    db = create_engine_from_url(stack.db_url)
    engine = WorkflowEngine(db, load_directory(DEFINITIONS), lambda *a: None)  # type: ignore[arg-type]
    ident = engine.start("order-processing", _order("o-9", 1.0, "FR"), run=False)
    _post(stack.client, Event.new("dev.knative.sources.ping", "/ping", {"tick": 1}))
    assert engine.describe(ident)["status"] == "RUNNING"  # fresh: a request may be stepping it
    with db.begin() as connection:  # as if its pod died WORKFLOW_RESUME_AFTER_SECONDS ago
        table = workflow_executions
        connection.execute(update(table).values(updated_at=table.c.updated_at - 300))
    _post(stack.client, Event.new("dev.knative.sources.ping", "/ping", {"tick": 2}))
    assert engine.describe(ident)["status"] == "SUCCEEDED"
    db.dispose()
    unmapped = Event.new("eventfn.storage.object.created.v1", "/minio", {}, subject="other/x")
    headers, body = encode_binary(unmapped)
    assert stack.client.post("/", data=body, headers=headers).status_code == 422


def test_the_scheduler_loop_fires_a_wait_without_any_tick(stack: Stack) -> None:
    _post(stack.client, _start("later", {"x": 1}))
    assert stack.sink.of("succeeded") == []  # the request returned while the execution waits
    [succeeded] = stack.sink.wait_for("succeeded", 1)
    assert succeeded.data["output"] == "done" and succeeded.data["workflow"] == "later"
