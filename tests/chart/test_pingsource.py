"""PingSources (values `pingSources`): the workflow engine's tick reaches the Broker, and through
the Trigger `workflow-tick` the engine, whenever the workflow function is enabled.

Every test renders the real chart with helm-python-sdk; no cluster is involved. The strict
validation of the PingSource against the Knative 1.17 model is in test_validate.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_testing import SCENARIO_IDS, SCENARIOS, find, one, render_with, rendered

from eventfn._errors import ConfigurationError

PING_TYPE = "dev.knative.sources.ping"
TICK = "workflow-tick"
# One cron field: *, a number or a range, optionally stepped, comma-separated.
CRON_FIELD = re.compile(r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*")


def ping_sources(docs: Any) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "PingSource"}


def exact_attributes(trigger: Mapping[str, Any]) -> dict[str, str] | None:
    """The attributes a Trigger requires when all its filters are exact matches, else None."""
    spec = trigger["spec"]
    if "filter" in spec:
        return dict(spec["filter"]["attributes"])
    attributes: dict[str, str] = {}
    for expression in spec["filters"]:
        if set(expression) != {"exact"}:
            return None
        attributes.update(expression["exact"])
    return attributes


def triggers_receiving(docs: Any, event: Mapping[str, str]) -> list[str]:
    """Names of the Triggers whose exact-only filters certainly match the event."""
    names = []
    for doc in docs:
        if doc["kind"] != "Trigger":
            continue
        attributes = exact_attributes(doc)
        if attributes is not None and all(event.get(k) == v for k, v in attributes.items()):
            names.append(doc["metadata"]["name"])
    return names


def ping_event(source: Mapping[str, Any]) -> dict[str, str]:
    """The context attributes Knative gives the events of a PingSource (KNATIVE.md, section 4)."""
    meta = source["metadata"]
    path = f"/apis/v1/namespaces/{meta['namespace']}/pingsources/{meta['name']}"
    return {"type": PING_TYPE, "source": path}


# --- rendered or not ------------------------------------------------------------------------------


def test_workflow_tick_is_rendered_with_the_workflow_function() -> None:
    source = ping_sources(rendered(None))[TICK]
    assert source["apiVersion"] == "sources.knative.dev/v1"
    assert source["metadata"]["labels"]["app.kubernetes.io/component"] == "pingsource"
    spec = source["spec"]
    assert spec["timezone"] == "Etc/UTC"
    assert spec["contentType"] == "application/json"
    assert yaml.safe_load(spec["data"]) == {"reason": "workflow-timers"}
    assert "ceOverrides" not in spec


def test_no_pingsource_without_the_workflow_function(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"functions": {"workflow": {"enabled": False}}})
    assert ping_sources(docs) == {}


def test_a_disabled_pingsource_is_not_rendered(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"pingSources": {TICK: {"enabled": False}}})
    assert ping_sources(docs) == {}


# --- where its events go ------------------------------------------------------------------------


def test_sink_is_the_broker_in_the_release_namespace(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"broker": {"name": "events"}}, namespace="ops")
    source = ping_sources(docs)[TICK]
    assert source["metadata"]["namespace"] == "ops"
    assert source["spec"]["sink"] == {
        "ref": {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "name": "events",
            "namespace": "ops",
        }
    }
    (broker,) = find(docs, "Broker")
    assert (broker["metadata"]["name"], broker["metadata"]["namespace"]) == ("events", "ops")


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_schedules_are_five_field_cron_expressions(values_file: Path | None) -> None:
    for name, source in ping_sources(rendered(values_file)).items():
        fields = source["spec"]["schedule"].split()
        assert len(fields) == 5, f"PingSource {name}: {fields}"
        assert all(CRON_FIELD.fullmatch(field) for field in fields), f"PingSource {name}: {fields}"


def test_the_tick_reaches_the_workflow_through_its_tick_trigger() -> None:
    docs = rendered(None)
    event = ping_event(ping_sources(docs)[TICK])
    assert triggers_receiving(docs, event) == [TICK]
    assert one(docs, "Trigger", TICK)["spec"]["subscriber"]["ref"]["name"] == "workflow"


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_pingsource_feeds_a_trigger(values_file: Path | None) -> None:
    docs = rendered(values_file)
    for name, source in ping_sources(docs).items():
        assert triggers_receiving(docs, ping_event(source)), f"no Trigger takes PingSource {name}"


def test_ce_overrides_extensions_are_rendered(tmp_path: Path) -> None:
    values = {"pingSources": {TICK: {"ceOverrides": {"extensions": {"tickfor": "workflow"}}}}}
    source = ping_sources(render_with(tmp_path, values))[TICK]
    assert source["spec"]["ceOverrides"] == {"extensions": {"tickfor": "workflow"}}


# --- refused values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"pingSources": {TICK: {"schedule": ""}}}, rf"pingSources\.{TICK}: schedule is required"),
        (
            {"pingSources": {"clock": {"function": "workflow"}}},
            r"pingSources\.clock: schedule is required",
        ),
        (
            {"pingSources": {"clock": {"function": "wrokflow", "schedule": "@hourly"}}},
            r"pingSources\.clock: function wrokflow is not declared",
        ),
        ({"pingSources": {TICK: {"schedule": "every minute"}}}, rf"(?s){TICK}.*schedule"),
        ({"pingSources": {TICK: {"bogus": 1}}}, r"(?s)bogus"),
    ],
    ids=["empty-schedule", "missing-schedule", "undeclared-function", "not-cron", "unknown-key"],
)
def test_invalid_pingsources_are_refused(
    tmp_path: Path, values: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        render_with(tmp_path, values)
