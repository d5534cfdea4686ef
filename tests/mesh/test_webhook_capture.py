"""The webhook capture endpoint `eventfn dev` gives the notifier (src/eventfn/mesh/_capture.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary
from eventfn._tracing import Tracer
from eventfn.mesh._capture import CapturedMessage, WebhookCapture, message_title, with_capture_env
from eventfn.mesh._supervisor import LaunchSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[tuple[WebhookCapture, list[CapturedMessage]]]:
    seen: list[CapturedMessage] = []
    server = WebhookCapture(on_message=seen.append, log_path=tmp_path / "webhooks.jsonl")
    server.start()
    yield server, seen
    server.stop()


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_messages_are_recorded_per_channel_and_reported(
    capture: tuple[WebhookCapture, list[CapturedMessage]], tmp_path: Path
) -> None:
    server, seen = capture
    card = {
        "type": "message",
        "attachments": [{"content": {"body": [{"type": "TextBlock", "text": "Backup  failed"}]}}],
    }
    assert _post(server.channel_url("teams"), json.dumps(card).encode()) == (202, b"")
    assert _post(server.channel_url("slack"), b'{"text": "Order rejected"}') == (200, b"ok")
    assert [m.channel for m in server.messages()] == ["teams", "slack"]
    assert server.messages("slack")[0].body == {"text": "Order rejected"}
    assert [m.line() for m in seen] == ["✉ teams Backup failed", "✉ slack Order rejected"]
    lines = (tmp_path / "webhooks.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["title"] for line in lines] == ["Backup failed", "Order rejected"]


def test_bad_requests_are_answered_like_the_real_services(
    capture: tuple[WebhookCapture, list[CapturedMessage]],
) -> None:
    server, seen = capture
    assert _post(server.channel_url("slack"), b"not json") == (400, b"invalid_payload")
    assert _post(server.channel_url("slack"), b"[1, 2]") == (400, b"invalid_payload")
    assert _post(server.channel_url("email"), b"{}")[0] == 404
    assert server.messages() == [] and seen == []


def test_titles_of_payloads_without_one() -> None:
    assert message_title("teams", {"attachments": []}) == "?"
    assert message_title("slack", {"blocks": []}) == "?"
    assert message_title("slack", {"text": "x" * 500}).endswith("…")


def test_env_and_launch_specs(capture: tuple[WebhookCapture, list[CapturedMessage]]) -> None:
    server, _ = capture
    env = server.env()
    assert env == {
        "NOTIFIER_TEAMS_WEBHOOK_URL": f"{server.url}/teams",
        "NOTIFIER_SLACK_WEBHOOK_URL": f"{server.url}/slack",
    }
    launches = {
        "notifier": LaunchSpec("notifier", "notifier", {"NOTIFIER_TEAMS_WEBHOOK_URL": "tok"}),
        "alerts": LaunchSpec("alerts", "other", {"NOTIFIER_SLACK_WEBHOOK_URL": "x", "A": "1"}),
        "echo": LaunchSpec("echo", "echo", {"A": "1"}, 1),
    }
    updated = with_capture_env(launches, server)
    assert dict(updated["notifier"].env) == env
    assert dict(updated["alerts"].env) == {**env, "A": "1"}
    assert updated["echo"] is launches["echo"]


def test_stop_is_idempotent() -> None:
    server = WebhookCapture()
    assert server.url == ""
    url = server.start()
    assert url.startswith("http://127.0.0.1:") and server.start() == url
    server.stop()
    server.stop()
    assert server.url == ""


def test_the_notifier_posts_into_the_capture(
    capture: tuple[WebhookCapture, list[CapturedMessage]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, seen = capture
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NOTIFIER_CONFIG", raising=False)
    settings = Settings(
        functions_dir=ROOT / "functions", schemas_dir=ROOT / "schemas", state_dir=tmp_path / "s"
    )
    wsgi = create_app("notifier", settings=settings, tracer=Tracer("n", enabled=False), env={})
    event = Event.new(
        "eventfn.inventory.rejected.v1",
        "/eventfn/inventory-updater",
        {
            "order_id": "o-1",
            "reason": "unknown-item",
            "items": [{"sku": "X", "requested": 1, "available": None}],
        },
    )
    headers, body = encode_binary(event)
    try:
        assert wsgi.test_client().post("/", data=body, headers=headers).status_code == 204
    finally:
        wsgi.close()
    assert [m.line() for m in seen] == [
        "✉ teams Order o-1 rejected: unknown-item",
        "✉ slack Order o-1 rejected: unknown-item",
    ]
