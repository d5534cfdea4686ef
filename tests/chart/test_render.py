"""The chart renders, k8s/ is its rendering, its guards fire, and its wiring is sound.

Everything runs the real Helm SDK (helm-python-sdk) offline; no cluster is involved.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from eventfn._errors import ConfigurationError
from eventfn._render import (
    HEADER,
    diff_k8s,
    layout,
    render_chart,
    split_documents,
    write_k8s,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "eventfn"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SCENARIOS = [None, *CI_VALUES]
SCENARIO_IDS = ["default", *(path.name for path in CI_VALUES)]
RESERVED_ENV = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
# The dead-letter sink of the default values' Triggers.
DLQ_HANDLER_SINK = {
    "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "dlq-handler"}
}
# Only echo, without dead-lettering: the base of guards that one of the other functions' Triggers
# (prefix/suffix filters, dead-letter sink) would otherwise preempt with an error of their own.
ONLY_ECHO: dict[str, Any] = {
    "functionDefaults": {"enabled": False},
    "functions": {"echo": {"enabled": True}},
    "deadLetter": {"enabled": False},
}


@cache
def rendered(values_file: Path | None) -> tuple[dict[str, Any], ...]:
    files = () if values_file is None else (values_file,)
    return tuple(split_documents(render_chart(CHART, values_files=files)))


@cache
def merged_values(values_file: Path | None) -> dict[str, Any]:
    overrides = {} if values_file is None else yaml.safe_load(values_file.read_text())
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(overrides)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def only_echo(values: Mapping[str, Any]) -> dict[str, Any]:
    return deep_merge(ONLY_ECHO, values)


def render_with(tmp_path: Path, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return split_documents(render_chart(CHART, values_files=[path]))


def of_kind(docs: tuple[dict[str, Any], ...] | list[dict[str, Any]], kind: str) -> list[Any]:
    return [doc for doc in docs if doc["kind"] == kind]


def knative_services(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for doc in docs
        if doc["kind"] == "Service" and doc["apiVersion"] == "serving.knative.dev/v1"
    }


# --- k8s/ is the rendering ---------------------------------------------------------------------


def test_checked_in_k8s_equals_the_rendering_of_default_values() -> None:
    stale = diff_k8s(ROOT)
    assert stale == [], (
        f"k8s/ differs from charts/eventfn rendered with default values in {stale}; "
        "run `make render` (eventfn render) and commit k8s/"
    )


def test_write_k8s_rewrites_drifted_files_and_removes_stale_ones(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "charts").mkdir(parents=True)
    (project / "charts" / "eventfn").symlink_to(CHART, target_is_directory=True)
    k8s = project / "k8s"
    (k8s / "functions").mkdir(parents=True)
    (k8s / "README.md").write_text("kept\n")
    (k8s / "functions" / "gone.yaml").write_text("kind: Service\n")
    (k8s / "20-broker.yaml").write_text("edited by hand\n")

    assert {"functions/gone.yaml", "20-broker.yaml", "functions/echo.yaml"} <= set(
        diff_k8s(project)
    )
    changed = write_k8s(project)

    assert diff_k8s(project) == []
    assert (k8s / "README.md").read_text() == "kept\n"
    assert not (k8s / "functions" / "gone.yaml").exists()
    assert {path.relative_to(k8s).as_posix() for path in changed} == {
        *layout(rendered(None)),
        "functions/gone.yaml",
    }
    assert write_k8s(project) == []


def test_layout_puts_each_function_in_its_own_file_and_kinds_in_ordered_files() -> None:
    files = layout(rendered(None))
    assert list(files) == sorted(files)
    assert {"00-namespace.yaml", "20-broker.yaml", "functions/echo.yaml"} <= set(files)
    echo = list(yaml.safe_load_all(files["functions/echo.yaml"].removeprefix(HEADER)))
    assert [doc["kind"] for doc in echo] == ["ServiceAccount", "Service", "Trigger"]
    assert {doc["metadata"]["labels"]["eventfn.dev/function"] for doc in echo} == {"echo"}
    assert all(text.startswith(HEADER + "---\n") for text in files.values())


# --- every scenario renders and is wired soundly -----------------------------------------------


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_renders_a_broker_and_namespaced_objects(values_file: Path | None) -> None:
    docs = rendered(values_file)
    assert len(of_kind(docs, "Broker")) == 1
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
    broker = of_kind(docs, "Broker")[0]["metadata"]["name"]
    values = merged_values(values_file)
    dead_letter = values["deadLetter"]
    for trigger in of_kind(docs, "Trigger"):
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
    sinks = {
        t["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] for t in of_kind(docs, "Trigger")
    }
    assert sinks == {"dlq-handler"}
    assert "dlq-handler" in knative_services(docs)


def test_default_values_dead_letter_every_trigger_to_dlq_handler() -> None:
    values = merged_values(None)
    assert values["deadLetter"] == {"enabled": True, "function": "dlq-handler", "uri": ""}
    docs = rendered(None)
    assert "dlq-handler" in knative_services(docs)
    triggers = of_kind(docs, "Trigger")
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
    triggers = {t["metadata"]["name"]: t["spec"]["delivery"] for t in of_kind(docs, "Trigger")}
    assert "deadLetterSink" not in triggers["dlq-handler-replay"]
    assert triggers["echo-requested"]["deadLetterSink"] == DLQ_HANDLER_SINK


def test_dead_lettering_can_be_turned_off(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"deadLetter": {"enabled": False}})
    triggers = of_kind(docs, "Trigger")
    assert triggers
    assert all("deadLetterSink" not in t["spec"]["delivery"] for t in triggers)


def test_echo_trigger_delivery_is_explicit() -> None:
    (trigger,) = [
        t for t in of_kind(rendered(None), "Trigger") if t["metadata"]["name"] == "echo-requested"
    ]
    assert trigger["spec"]["filters"] == [{"exact": {"type": "eventfn.echo.requested.v1"}}]
    assert trigger["spec"]["delivery"] == {
        "backoffDelay": "PT0.5S",
        "backoffPolicy": "exponential",
        "retry": 3,
        "timeout": "PT30S",
        "deadLetterSink": DLQ_HANDLER_SINK,
    }


# --- no Trigger feeds a function its own output (reply loops) ----------------------------------

# Three-valued logic: True (matches), False (cannot match), None (depends on an attribute whose
# value is unknown statically, e.g. the subject). A loop is possible unless the result is False.


def _all(results: Iterator[bool | None]) -> bool | None:
    values = list(results)
    if False in values:
        return False
    return None if None in values else True


def _any(results: Iterator[bool | None]) -> bool | None:
    values = list(results)
    if True in values:
        return True
    return None if None in values else False


def _attributes_match(
    attributes: Mapping[str, str], event: Mapping[str, str], test: Any
) -> bool | None:
    return _all(
        (test(event[name], value) if name in event else None) for name, value in attributes.items()
    )


def evaluate(expression: Mapping[str, Any], event: Mapping[str, str]) -> bool | None:
    ((operator, operand),) = expression.items()
    if operator == "exact":
        return _attributes_match(operand, event, lambda actual, want: actual == want)
    if operator == "prefix":
        return _attributes_match(operand, event, lambda actual, want: actual.startswith(want))
    if operator == "suffix":
        return _attributes_match(operand, event, lambda actual, want: actual.endswith(want))
    if operator == "all":
        return _all(evaluate(item, event) for item in operand)
    if operator == "any":
        return _any(evaluate(item, event) for item in operand)
    if operator == "not":
        result = evaluate(operand, event)
        return None if result is None else not result
    raise AssertionError(f"the chart does not allow filter operator {operator!r}")


def trigger_may_match(spec: Mapping[str, Any], event: Mapping[str, str]) -> bool:
    if spec.get("filters"):
        return _all(evaluate(expression, event) for expression in spec["filters"]) is not False
    attributes = (spec.get("filter") or {}).get("attributes") or {}
    return _attributes_match(attributes, event, lambda actual, want: actual == want) is not False


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_no_trigger_matches_what_its_own_function_emits(values_file: Path | None) -> None:
    functions = merged_values(values_file)["functions"]
    for trigger in of_kind(rendered(values_file), "Trigger"):
        subscriber = trigger["spec"]["subscriber"]["ref"]["name"]
        for emitted in functions[subscriber].get("emits", []):
            assert not trigger_may_match(trigger["spec"], {"type": emitted}), (
                f"Trigger {trigger['metadata']['name']} matches {emitted}, which {subscriber} "
                "emits itself: a reply loop"
            )


@pytest.mark.parametrize(
    ("spec", "loops"),
    [
        ({"filters": [{"exact": {"type": "eventfn.echo.requested.v1"}}]}, False),
        ({"filters": [{"prefix": {"type": "eventfn.echo."}}]}, True),
        ({"filters": [{"exact": {"type": "x"}}, {"suffix": {"subject": ".jpg"}}]}, False),
        ({"filters": [{"prefix": {"type": "eventfn."}}, {"suffix": {"subject": ".jpg"}}]}, True),
        ({"filters": [{"not": {"exact": {"type": "eventfn.echo.requested.v1"}}}]}, True),
        ({"filters": [{"any": [{"exact": {"type": "a"}}, {"suffix": {"type": ".v1"}}]}]}, True),
        ({"filter": {"attributes": {"type": "eventfn.echo.replied.v1"}}}, True),
        ({"filter": {"attributes": {"type": "eventfn.echo.requested.v1", "source": "/x"}}}, False),
        ({}, True),
    ],
)
def test_loop_matcher_flags_filters_that_accept_the_emitted_type(
    spec: dict[str, Any], loops: bool
) -> None:
    assert trigger_may_match(spec, {"type": "eventfn.echo.replied.v1"}) is loops


# --- guards: the chart refuses what Knative would reject or what would misbehave ----------------


@pytest.mark.parametrize("name", RESERVED_ENV)
def test_reserved_env_name_is_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"env {name} is a reserved name"):
        render_with(tmp_path, {"functions": {"echo": {"env": {name: "1"}}}})


def test_eventfn_function_env_is_set_by_the_chart_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"EVENTFN_FUNCTION is a reserved name.*chart"):
        render_with(tmp_path, {"functions": {"echo": {"env": {"EVENTFN_FUNCTION": "x"}}}})


def test_delivery_timeout_longer_than_timeout_seconds_is_rejected(tmp_path: Path) -> None:
    values = {
        "functions": {
            "echo": {
                "autoscaling": {"timeoutSeconds": 60},
                "triggers": {"requested": {"delivery": {"timeout": "PT1M30S"}}},
            }
        }
    }
    with pytest.raises(
        ConfigurationError,
        match=r"echo-requested: delivery.timeout PT1M30S \(90s\) exceeds timeoutSeconds 60",
    ):
        render_with(tmp_path, values)


def test_delivery_timeout_equal_to_timeout_seconds_is_accepted(tmp_path: Path) -> None:
    values = {
        "functions": {
            "echo": {
                "autoscaling": {"timeoutSeconds": 90},
                "triggers": {"requested": {"delivery": {"timeout": "PT1M30S"}}},
            }
        }
    }
    (ksvc,) = [
        d
        for d in render_with(tmp_path, values)
        if d["metadata"]["name"] == "echo" and d["kind"] == "Service"
    ]
    assert ksvc["spec"]["template"]["spec"]["timeoutSeconds"] == 90


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"functions": {"echo": {"image": {"tag": "latest"}}}},
            r"function echo: image tag `latest` is not allowed",
        ),
        (
            {"functions": {"echo": {"image": {"repository": "example.org/echo:latest"}}}},
            r"function echo: image tag `latest` is not allowed",
        ),
        (
            {"functions": {"dlq-handler": {"enabled": False}}},
            r"deadLetter.function dlq-handler is not an enabled",
        ),
        (
            {"functions": {"echo": {"autoscaling": {"containerConcurrency": 2, "target": 5}}}},
            r"target 5 exceeds the hard limit containerConcurrency 2",
        ),
        (
            only_echo(
                {
                    "broker": {"class": "RabbitMQBroker", "url": "http://rabbit.example"},
                    "functions": {
                        "echo": {
                            "triggers": {
                                "requested": {"filters": [{"prefix": {"type": "eventfn.echo.r"}}]}
                            }
                        }
                    },
                }
            ),
            r"echo-requested: broker class RabbitMQBroker supports only exact matches.*prefix",
        ),
        (
            only_echo(
                {"broker": {"class": "SomethingElse"}, "functions": {"echo": {"triggers": None}}}
            ),
            r"broker.class SomethingElse: set broker.url",
        ),
        (
            {"functions": {"echo": {"triggers": {"requested": {"filters": None}}}}},
            r"(?s)echo/triggers/requested.*filters",
        ),
        ({"functions": {"Echo": {}}}, r"at '/functions': additional properties 'Echo'"),
        ({"functions": {"echo": {"unknown": 1}}}, r"additional propert.*unknown"),
        (
            {"storageSource": {"authToken": {"create": True}}},
            r"needs storageSource.authToken.value",
        ),
    ],
    ids=[
        "latest-tag",
        "latest-in-repository",
        "dead-letter-function-missing",
        "target-above-concurrency",
        "filters-on-rabbitmq",
        "unknown-class-without-url",
        "unfiltered-trigger",
        "function-name-not-dns",
        "unknown-key",
        "secret-without-value",
    ],
)
def test_invalid_values_are_refused_with_their_reason(
    tmp_path: Path, values: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        render_with(tmp_path, values)


def test_legacy_filter_attributes_are_rendered_as_given(tmp_path: Path) -> None:
    legacy = {"filter": {"attributes": {"type": "eventfn.echo.requested.v1", "source": "/cli"}}}
    docs = render_with(tmp_path, {"functions": {"echo": {"triggers": {"cli": legacy}}}})
    (trigger,) = [t for t in of_kind(docs, "Trigger") if t["metadata"]["name"] == "echo-cli"]
    assert trigger["spec"]["filter"] == legacy["filter"]
    assert "filters" not in trigger["spec"]


def test_exact_filters_become_attributes_for_classes_without_filters() -> None:
    rabbitmq = CHART / "ci" / "rabbitmq-values.yaml"
    functions = merged_values(rabbitmq)["functions"]
    expected = {
        f"{name}-{key}": {
            attribute: value
            for expression in trigger["filters"]
            for attribute, value in expression["exact"].items()
        }
        for name, fn in functions.items()
        if fn.get("enabled", True)
        for key, trigger in (fn.get("triggers") or {}).items()
    }
    triggers = {t["metadata"]["name"]: t["spec"] for t in of_kind(rendered(rabbitmq), "Trigger")}
    assert set(triggers) == set(expected) and len(triggers) > 1
    for name, spec in triggers.items():
        assert "filters" not in spec, name
        assert spec["filter"] == {"attributes": expected[name]}, name
    assert triggers["echo-requested"]["filter"] == {
        "attributes": {"type": "eventfn.echo.requested.v1"}
    }


def test_exact_filters_on_several_attributes_become_one_attribute_filter(tmp_path: Path) -> None:
    exact = [{"exact": {"type": "eventfn.echo.requested.v1"}}, {"exact": {"source": "/cli"}}]
    values = only_echo(
        {
            "broker": {"class": "RabbitMQBroker", "url": "http://rabbit.example"},
            "functions": {"echo": {"triggers": {"requested": {"filters": exact}}}},
        }
    )
    (trigger,) = of_kind(render_with(tmp_path, values), "Trigger")
    assert trigger["spec"]["filter"] == {
        "attributes": {"type": "eventfn.echo.requested.v1", "source": "/cli"}
    }


def test_namespace_is_optional(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"namespace": {"create": False}})
    assert of_kind(docs, "Namespace") == []


def test_disabled_function_renders_nothing(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"functions": {"echo": {"enabled": False}}})
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not any(name == "echo" or name.startswith("echo-") for _, name in names)


def test_secret_is_rendered_only_when_asked_for(tmp_path: Path) -> None:
    assert of_kind(rendered(None), "Secret") == []
    docs = render_with(
        tmp_path, {"storageSource": {"authToken": {"create": True, "value": "s3cr3t"}}}
    )
    (secret,) = of_kind(docs, "Secret")
    assert secret["metadata"]["name"] == "eventfn-storage-webhook"
    assert set(secret["data"]) == {"token"}


# --- values.yaml and NOTES.txt ----------------------------------------------------------------


def test_default_functions_declare_what_they_emit() -> None:
    functions = merged_values(None)["functions"]
    assert functions["echo"]["emits"] == ["eventfn.echo.replied.v1", "eventfn.echo.recorded.v1"]
    assert functions["storage-source"]["emits"] == ["eventfn.storage.object.created.v1"]
    assert functions["storage-source"].get("triggers", {}) == {}


def test_notes_explain_how_to_send_a_first_event() -> None:
    with helm.Chart.load(CHART) as chart:
        notes = chart.render(None, name="eventfn", namespace="eventfn")[
            "eventfn/templates/NOTES.txt"
        ]
    assert "port-forward svc/broker-ingress" in notes
    assert "curl" in notes and "Ce-Type: eventfn.echo.requested.v1" in notes
    assert "http://localhost:8080/eventfn/default" in notes
    assert "See it arrive at echo:" in notes and "eventfn.dev/function=echo " in notes


def test_notes_example_is_an_event_that_reaches_its_function() -> None:
    """Without echo the example is a Trigger that an event with only a type reaches: not one of
    the prefix/suffix filtered storage Triggers (backup-auditor comes first by name)."""
    with helm.Chart.load(CHART) as chart:
        notes = chart.render(
            {"functions": {"echo": {"enabled": False}}}, name="eventfn", namespace="eventfn"
        )["eventfn/templates/NOTES.txt"]
    assert "Ce-Type: eventfn.order.confirmed.v1" in notes
    assert "See it arrive at inventory-updater:" in notes
    assert "backup-auditor" not in notes.split("Functions:", 1)[1].split("\n", 1)[1]
