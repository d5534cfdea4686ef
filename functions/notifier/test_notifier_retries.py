"""notifier's retries against a scripted loopback webhook: the real HTTP path with an injected
sleep/clock, so no test waits."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from notifier_testing import Served, Webhook, event_of, handler_module, serving


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
