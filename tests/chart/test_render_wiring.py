"""Every scenario of the chart renders and is wired soundly: Brokers, pinned images, Triggers and
their dead-letter sinks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from chart_testing import (
    CHART,
    SCENARIO_IDS,
    SCENARIOS,
    find,
    knative_services,
    merged_values,
    one,
    render_with,
    rendered,
)

# The dead-letter sink of the default values' Triggers.
DLQ_HANDLER_SINK = {
    "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "dlq-handler"}
}


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_renders_a_broker_and_namespaced_objects(values_file: Path | None) -> None:
    docs = rendered(values_file)
    assert len(find(docs, "Broker")) == 1
    assert knative_services(docs)
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "eventfn", doc["metadata"]["name"]


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_images_are_pinned_never_latest(values_file: Path | None) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    for name, ksvc in knative_services(rendered(values_file)).items():
        for container in ksvc["spec"]["template"]["spec"]["containers"]:
            repository, _, tag = container["image"].rpartition(":")
            assert repository and "/" in repository, container["image"]
            assert tag not in ("", "latest"), f"{name} runs {container['image']}"
            assert tag == app_version


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_trigger_subscriber_and_dead_letter_sink_resolve(values_file: Path | None) -> None:
    docs = rendered(values_file)
    services = knative_services(docs)
    broker = find(docs, "Broker")[0]["metadata"]["name"]
    values = merged_values(values_file)
    dead_letter = values["deadLetter"]
    for trigger in find(docs, "Trigger"):
        spec = trigger["spec"]
        name = trigger["metadata"]["name"]
        subscriber = spec["subscriber"]["ref"]
        assert spec["broker"] == broker
        assert (subscriber["apiVersion"], subscriber["kind"]) == (
            "serving.knative.dev/v1",
            "Service",
        )
        assert subscriber["name"] in services, f"{name} subscribes to a missing Service"
        assert name.startswith(subscriber["name"] + "-")
        sink = spec["delivery"].get("deadLetterSink")
        if not dead_letter["enabled"] or subscriber["name"] == dead_letter["function"]:
            assert sink is None, f"{name} has an unexpected dead-letter sink"
            continue
        assert sink is not None, f"{name} has no dead-letter sink although deadLetter.enabled"
        assert sink["ref"]["name"] == dead_letter["function"]
        assert sink["ref"]["name"] in services, f"{name} dead-letters to a missing Service"


def test_dead_letter_scenario_gives_every_trigger_a_sink() -> None:
    docs = rendered(CHART / "ci" / "dead-letter-values.yaml")
    sinks = {t["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] for t in find(docs, "Trigger")}
    assert sinks == {"dlq-handler"}
    assert "dlq-handler" in knative_services(docs)


def test_default_values_dead_letter_every_trigger_to_dlq_handler() -> None:
    values = merged_values(None)
    assert values["deadLetter"] == {"enabled": True, "function": "dlq-handler", "uri": ""}
    docs = rendered(None)
    assert "dlq-handler" in knative_services(docs)
    triggers = find(docs, "Trigger")
    # Every function with Triggers is covered (not only the first one or two).
    subscribers = {t["spec"]["subscriber"]["ref"]["name"] for t in triggers}
    declared = {name for name, fn in values["functions"].items() if fn.get("triggers")}
    assert subscribers == declared and len(subscribers) > 2
    for trigger in triggers:
        name, delivery = trigger["metadata"]["name"], trigger["spec"]["delivery"]
        if trigger["spec"]["subscriber"]["ref"]["name"] == "dlq-handler":
            assert "deadLetterSink" not in delivery, f"{name}: dlq-handler would dead-letter itself"
        else:
            assert delivery.get("deadLetterSink") == DLQ_HANDLER_SINK, name


def test_dead_letter_function_gets_no_sink_on_its_own_triggers(tmp_path: Path) -> None:
    own = {"filters": [{"exact": {"type": "eventfn.dlq.replay.requested.v1"}}]}
    docs = render_with(tmp_path, {"functions": {"dlq-handler": {"triggers": {"replay": own}}}})
    triggers = {t["metadata"]["name"]: t["spec"]["delivery"] for t in find(docs, "Trigger")}
    assert "deadLetterSink" not in triggers["dlq-handler-replay"]
    assert triggers["echo-requested"]["deadLetterSink"] == DLQ_HANDLER_SINK


def test_dead_lettering_can_be_turned_off(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"deadLetter": {"enabled": False}})
    triggers = find(docs, "Trigger")
    assert triggers
    assert all("deadLetterSink" not in t["spec"]["delivery"] for t in triggers)


def test_echo_trigger_delivery_is_explicit() -> None:
    trigger = one(rendered(None), "Trigger", "echo-requested")
    assert trigger["spec"]["filters"] == [{"exact": {"type": "eventfn.echo.requested.v1"}}]
    assert trigger["spec"]["delivery"] == {
        "backoffDelay": "PT0.5S",
        "backoffPolicy": "exponential",
        "retry": 3,
        "timeout": "PT30S",
        "deadLetterSink": DLQ_HANDLER_SINK,
    }
