"""notifier through the WSGI test client, posting to loopback webhook servers.

The exact JSON posted for every consumed type is compared with golden files in testdata/
(`EVENTFN_UPDATE_GOLDEN=1` rewrites them; review the diff). Retries use the real HTTP path
against a scripted loopback server and an injected sleep/clock, so no test waits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary
from eventfn._loader import load_function, module_name
from eventfn._tracing import Tracer

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(__file__).resolve().parent / "testdata"
UPDATE_GOLDEN = os.environ.get("EVENTFN_UPDATE_GOLDEN") == "1"
# Types whose schemas other issues own; the golden tests read them without a schema so that
# formatting is tested on its own (test_routes_reference_fields_of_the_schemas checks the names).
UNOWNED = (
    "eventfn.backup.completed.v1",
    "eventfn.backup.failed.v1",
    "eventfn.workflow.execution.failed.v1",
)

load_function("notifier", ROOT / "functions")
handler_module: ModuleType = __import__(module_name("notifier") + ".handler", fromlist=["x"])
from eventfn_functions.notifier._webhook import WebhookPoster  # noqa: E402

# -- a scripted loopback webhook ------------------------------------------------------------


@dataclass
class Webhook:
    """Records every POST per path; answers from `script[path]` (then 200)."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(body) for p, _, body in self.received if p == path]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.received.append((self.path, headers, body))
            queued = state.script.get(self.path) or []
            status, extra = queued.pop(0) if queued else (200, {})
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@dataclass
class Served:
    client: Client
    webhook: Webhook
    time: FakeTime

    def deliver(self, event: Event) -> TestResponse:
        headers, body = encode_binary(event)
        return self.client.post("/", data=body, headers=headers)


@contextmanager
def serving(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook: Webhook,
    *,
    env: dict[str, str] | None = None,
    schemas_dir: Path = ROOT / "schemas",
) -> Iterator[Served]:
    fake = FakeTime()
    for name in ("NOTIFIER_CONFIG", "NOTIFIER_MAX_ATTEMPTS", "NOTIFIER_MAX_TOTAL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFIER_TEAMS_WEBHOOK_URL", f"{webhook.url}/teams")
    monkeypatch.setenv("NOTIFIER_SLACK_WEBHOOK_URL", f"{webhook.url}/slack")
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    poster = WebhookPoster(sleep=fake.sleep, clock=fake.clock, wall_clock=lambda: 1_800_000_000.0)
    monkeypatch.setattr(handler_module.notifier, "poster", poster)
    settings = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=schemas_dir,
        state_dir=tmp_path / "state",
        sink=None,
    )
    wsgi = create_app("notifier", settings=settings, tracer=Tracer("n", enabled=False), env={})
    try:
        yield Served(wsgi.test_client(), webhook, fake)
    finally:
        wsgi.close()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook) -> Iterator[Served]:
    with serving(tmp_path, monkeypatch, webhook) as handle:
        yield handle


@pytest.fixture
def golden_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> Iterator[Served]:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for path in (ROOT / "schemas").iterdir():
        if path.stem not in UNOWNED:
            shutil.copy(path, schemas / path.name)
    with serving(tmp_path, monkeypatch, webhook, schemas_dir=schemas) as handle:
        yield handle


# -- the events -----------------------------------------------------------------------------

TIME = "2026-11-28T12:00:00Z"
EVENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "eventfn.backup.log.audited.v1": (
        "/eventfn/backup-auditor",
        "backup-logs/2026-11-28-report.csv",
        {
            "bucket": "eventfn-data",
            "key": "backup-logs/2026-11-28-report.csv",
            "etag": "9b2cf535f27731c974343645a3985328",
            "rows": 4,
            "totals": {"ABORTED": 1, "COMPLETED": 2, "FAILED": 1},
            "failed": 2,
            "failed_jobs": [
                {"job_id": "j-2", "resource": "orders", "status": "FAILED", "line": 3},
                {"job_id": "j-4", "resource": "vol-1", "status": "ABORTED", "line": 6},
            ],
            "failed_jobs_truncated": False,
            "failed_events": 2,
            "columns": {"status": "STATUS", "job_id": "JOB_ID"},
        },
    ),
    "eventfn.backup.job.failed.v1": (
        "/eventfn/backup-auditor",
        "backup-logs/2026-11-28-report.csv",
        {
            "bucket": "eventfn-data",
            "key": "backup-logs/2026-11-28-report.csv",
            "etag": "9b2cf535f27731c974343645a3985328",
            "line": 3,
            "job_id": "j-2",
            "resource": "arn:aws:dynamodb:eu-west-1:1:table/users",
            "status": "FAILED",
            "started_at": "2026-11-28T01:10:00Z",
            "finished_at": None,
            "message": "Access denied <kms> & retry later",
        },
    ),
    "eventfn.backup.completed.v1": (
        "/eventfn/backup",
        "db",
        {
            "kind": "db",
            "snapshot_id": "db-20261128T020000Z",
            "bytes": 1048576,
            "objects": 12,
            "duration_seconds": 3.25,
        },
    ),
    "eventfn.backup.failed.v1": (
        "/eventfn/backup",
        "bucket",
        {"kind": "bucket", "error": "the backup bucket does not exist"},
    ),
    "eventfn.dataset.file.processed.v1": (
        "/eventfn/csv-ingest",
        "raw/sales/2026-11.csv",
        {
            "bucket": "eventfn-data",
            "key": "raw/sales/2026-11.csv",
            "dataset": "sales",
            "output_key": "processed/sales/year=2026/month=11/day=28/2026-11-5f1d.parquet",
            "rows": 1200,
            "columns": [{"name": "id", "type": "int64"}],
            "bytes_in": 52000,
            "bytes_out": 18000,
            "duration_ms": 87,
            "quarantined_rows": 3,
            "quarantine_key": "quarantine/sales/2026-11.csv",
            "delimiter": ",",
        },
    ),
    "eventfn.inventory.rejected.v1": (
        "/eventfn/inventory-updater",
        "order-1042",
        {
            "order_id": "order-1042",
            "reason": "insufficient-stock",
            "items": [
                {"sku": "SKU-1", "requested": 3, "available": 1},
                {"sku": "SKU-7", "requested": 1, "available": 0},
            ],
        },
    ),
    "eventfn.document.sentiment.scored.v1": (
        "/eventfn/sentiment-analyzer",
        "documents/complaint.txt",
        {
            "bucket": "eventfn-data",
            "key": "documents/complaint.txt",
            "etag": "3a7bd3e2360a3d29eea436fcfb7e44c7",
            "compound": -0.7184,
            "positive": 0.02,
            "neutral": 0.61,
            "negative": 0.37,
            "label": "negative",
            "sentences": 5,
            "most_negative_sentence": "This is the worst service I have ever had.",
            "most_negative_compound": -0.8316,
        },
    ),
    "eventfn.deadletter.recorded.v1": (
        "/eventfn/dlq-handler",
        "eventfn.order.confirmed.v1",
        {
            "id": "0f5a3c0e9d7b4e21a8c6b2d4e6f80123",
            "event_id": "order-1042",
            "event_type": "eventfn.order.confirmed.v1",
            "event_source": "/eventfn/ingest-api",
            "subject": "order-1042",
            "error_code": 422,
            "error_dest": "http://inventory-updater.eventfn.svc.cluster.local",
            "error_excerpt": "Event data violates its schema: items[0].quantity must be >= 1",
            "attempts": None,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "received_at": "2026-11-28T12:00:01.000000Z",
            "repeated": False,
        },
    ),
    "eventfn.workflow.execution.failed.v1": (
        "/eventfn/workflow",
        "telemetry-pipeline",
        {
            "workflow": "telemetry-pipeline",
            "execution_id": "exec-7",
            "status": "FAILED",
            "error": "States.TaskFailed",
            "cause": "warehouse answered 400",
        },
    ),
}


def event_of(event_type: str, **data_changes: Any) -> Event:
    source, subject, data = EVENTS[event_type]
    return Event(
        type=event_type,
        source=source,
        id=f"{event_type.split('.')[1]}-0001",
        data={**data, **data_changes},
        subject=subject,
        time=TIME,
        datacontenttype="application/json",
    )


# -- golden JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_exact_json_posted_to_teams_and_slack(golden_served: Served, event_type: str) -> None:
    response = golden_served.deliver(event_of(event_type))
    assert response.status_code == 204, response.get_data(as_text=True)
    for channel in ("teams", "slack"):
        [(_path, headers, body)] = [
            r for r in golden_served.webhook.received if r[0] == f"/{channel}"
        ]
        assert headers["content-type"] == "application/json; charset=utf-8"
        golden = TESTDATA / f"{event_type}.{channel}.json"
        posted = json.loads(body)
        if UPDATE_GOLDEN:
            text = json.dumps(posted, ensure_ascii=False, indent=2) + "\n"
            golden.write_text(text, encoding="utf-8")
        assert posted == json.loads(golden.read_text(encoding="utf-8")), channel
        # the wire bytes are the compact UTF-8 JSON of exactly that document
        assert body == json.dumps(posted, ensure_ascii=False, separators=(",", ":")).encode()


def test_teams_payload_is_an_adaptive_card_message(golden_served: Served) -> None:
    golden_served.deliver(event_of("eventfn.backup.job.failed.v1"))
    [teams] = golden_served.webhook.bodies("/teams")
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "Backup job j-2 FAILED"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Finished"] == "—"  # null renders as a dash
    [slack] = golden_served.webhook.bodies("/slack")
    assert slack["text"] == "Backup job j-2 FAILED"
    assert slack["blocks"][1]["text"]["text"] == "Access denied &lt;kms&gt; &amp; retry later"


def test_missing_fields_render_as_a_dash(golden_served: Served) -> None:
    event = event_of("eventfn.backup.failed.v1")
    golden_served.deliver(event.with_changes(data={"kind": "bucket"}))
    [slack] = golden_served.webhook.bodies("/slack")
    assert slack["blocks"][1]["text"]["text"] == "—"
    assert slack["blocks"][2]["fields"][1]["text"] == "*Snapshot*\n—"


# -- conditions, routing and idempotency ----------------------------------------------------


def test_sentiment_is_posted_only_when_strongly_negative(served: Served) -> None:
    mild = event_of("eventfn.document.sentiment.scored.v1", compound=-0.4999)
    assert served.deliver(mild.with_changes(id="mild")).status_code == 204
    assert served.webhook.received == []
    edge = event_of("eventfn.document.sentiment.scored.v1", compound=-0.5)
    assert served.deliver(edge.with_changes(id="edge")).status_code == 204
    assert len(served.webhook.received) == 2


def test_a_redelivered_event_posts_nothing_again(served: Served) -> None:
    event = event_of("eventfn.inventory.rejected.v1")
    assert served.deliver(event).status_code == 204
    assert served.deliver(event).status_code == 204
    assert [path for path, _, _ in served.webhook.received] == ["/teams", "/slack"]


def test_routing_config_chooses_channels_and_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    config = tmp_path / "routes.json"
    routes = {
        "routes": {
            "eventfn.document.sentiment.scored.v1": {
                "channels": ["slack"],
                "when": [{"field": "data.compound", "lte": -0.9}],
                "title": "{data.key} scored {data.compound:+.2f}",
            },
            "eventfn.inventory.rejected.v1": {"channels": ["teams"], "title": "{data.order_id}"},
        }
    }
    config.write_text(json.dumps(routes), encoding="utf-8")
    with serving(tmp_path, monkeypatch, webhook, env={"NOTIFIER_CONFIG": str(config)}) as served:
        _check_custom_routes(served, webhook)


def _check_custom_routes(served: Served, webhook: Webhook) -> None:
    strong = event_of("eventfn.document.sentiment.scored.v1")  # -0.7184: not below -0.9
    assert served.deliver(strong).status_code == 204
    assert webhook.received == []
    stronger = event_of("eventfn.document.sentiment.scored.v1", compound=-0.95)
    assert served.deliver(stronger.with_changes(id="s2")).status_code == 204
    assert [json.loads(body)["text"] for _, _, body in webhook.received] == [
        "documents/complaint.txt scored -0.95"
    ]
    served.deliver(event_of("eventfn.inventory.rejected.v1"))
    assert [path for path, _, _ in webhook.received] == ["/slack", "/teams"]
    unrouted = event_of("eventfn.backup.job.failed.v1")  # consumed, but not in this config
    assert served.deliver(unrouted).status_code == 204
    assert len(webhook.received) == 2


def test_a_channel_without_url_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    with serving(tmp_path, monkeypatch, webhook) as served:
        monkeypatch.delenv("NOTIFIER_TEAMS_WEBHOOK_URL")
        handler_module.notifier.configure()
        assert handler_module.notifier.disabled_channels() == ["teams"]
        assert served.deliver(event_of("eventfn.inventory.rejected.v1")).status_code == 204
        assert [path for path, _, _ in webhook.received] == ["/slack"]


# -- retries --------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(served: Served) -> None:
    served.webhook.script["/teams"] = [(429, {"Retry-After": "7"}), (503, {})]
    response = served.deliver(event_of("eventfn.inventory.rejected.v1"))
    assert response.status_code == 204
    assert [path for path, _, _ in served.webhook.received] == ["/teams"] * 3 + ["/slack"]
    assert served.time.sleeps == [7.0, 1.0]  # Retry-After, then the backoff of attempt 2
    bodies = served.webhook.bodies("/teams")
    assert bodies[0] == bodies[1] == bodies[2]


def test_retry_after_as_http_date(served: Served) -> None:
    # wall clock of the poster is 1_800_000_000 (2027-01-15T08:00:00Z)
    date = "Fri, 15 Jan 2027 08:00:05 GMT"
    served.webhook.script["/slack"] = [(429, {"Retry-After": date})]
    assert served.deliver(event_of("eventfn.inventory.rejected.v1")).status_code == 204
    assert served.time.sleeps == [5.0]


def test_a_4xx_from_the_webhook_is_permanent(served: Served) -> None:
    served.webhook.script["/teams"] = [(400, {})]
    response = served.deliver(event_of("eventfn.inventory.rejected.v1"))
    assert response.status_code == 422
    problem = json.loads(response.get_data())
    assert problem["type"] == "urn:eventfn:problem:webhook-rejected"
    assert problem["retryable"] is False
    assert "127.0.0.1" not in problem["detail"]  # the URL is a secret
    assert len(served.webhook.received) == 1 and served.time.sleeps == []


def test_persistent_5xx_ends_in_a_retryable_503(served: Served) -> None:
    served.webhook.script["/teams"] = [(500, {})] * 4
    response = served.deliver(event_of("eventfn.inventory.rejected.v1"))
    assert response.status_code == 503
    assert json.loads(response.get_data())["type"] == "urn:eventfn:problem:webhook-unavailable"
    assert served.time.sleeps == [0.5, 1.0, 2.0]  # 4 attempts, exponential backoff
    # the failed event was not recorded as done: the broker's retry posts again
    served.webhook.received.clear()
    assert served.deliver(event_of("eventfn.inventory.rejected.v1")).status_code == 204
    assert [path for path, _, _ in served.webhook.received] == ["/teams", "/slack"]


def test_a_retry_after_beyond_the_budget_is_handed_to_the_broker(served: Served) -> None:
    served.webhook.script["/teams"] = [(429, {"Retry-After": "120"})]
    response = served.deliver(event_of("eventfn.inventory.rejected.v1"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "120"
    assert served.time.sleeps == [] and len(served.webhook.received) == 1


def test_no_answer_is_retried_then_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    with serving(tmp_path, monkeypatch, webhook, env={"NOTIFIER_MAX_ATTEMPTS": "2"}) as served:
        closed = f"http://127.0.0.1:{_closed_port()}/teams"
        monkeypatch.setitem(handler_module.notifier.urls, "teams", closed)
        response = served.deliver(event_of("eventfn.inventory.rejected.v1"))
        assert response.status_code == 503
        assert served.time.sleeps == [0.5]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the routes file and the catalog --------------------------------------------------------


def test_routes_reference_fields_of_the_schemas() -> None:
    """Every `data.<field>` of a shipped route exists in its type's schema (when it has one)."""
    from eventfn_functions.notifier._config import load_config

    config = load_config(handler_module.DEFAULT_CONFIG)
    assert set(config.routes) == set(handler_module.NOTIFIED_TYPES)
    for event_type, route in config.routes.items():
        schema_path = ROOT / "schemas" / f"{event_type}.json"
        if not schema_path.is_file():
            continue
        properties = json.loads(schema_path.read_text(encoding="utf-8"))["properties"]
        templates = [route.title, *(t for _, t in route.facts)]
        templates += [route.text] if route.text is not None else []
        for template in templates:
            for placeholder in template.placeholders:
                if placeholder.path[0] == "data":
                    assert placeholder.path[1] in properties, (event_type, placeholder.path)
