"""notifier's conditions, routing configuration and idempotency through the WSGI test client,
and the shipped routes against the schema catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notifier_testing import ROOT, Served, Webhook, event_of, handler_module, serving


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
