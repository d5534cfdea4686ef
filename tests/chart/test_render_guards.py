"""The chart refuses what Knative would reject or what would misbehave; what it accepts renders
as given."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from chart_testing import CHART, find, merged_values, one, render_with, rendered

from eventfn._errors import ConfigurationError

RESERVED_ENV = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
# Only echo, without dead-lettering: the base of guards that one of the other functions' Triggers
# (prefix/suffix filters, dead-letter sink) would otherwise preempt with an error of their own.
ONLY_ECHO: dict[str, Any] = {
    "functionDefaults": {"enabled": False},
    "functions": {"echo": {"enabled": True}},
    "deadLetter": {"enabled": False},
}


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
    ksvc = one(render_with(tmp_path, values), "Service", "echo")
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
    trigger = one(docs, "Trigger", "echo-cli")
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
    triggers = {t["metadata"]["name"]: t["spec"] for t in find(rendered(rabbitmq), "Trigger")}
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
    (trigger,) = find(render_with(tmp_path, values), "Trigger")
    assert trigger["spec"]["filter"] == {
        "attributes": {"type": "eventfn.echo.requested.v1", "source": "/cli"}
    }


def test_namespace_is_optional(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"namespace": {"create": False}})
    assert find(docs, "Namespace") == []


def test_disabled_function_renders_nothing(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"functions": {"echo": {"enabled": False}}})
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert not any(name == "echo" or name.startswith("echo-") for _, name in names)


def test_secret_is_rendered_only_when_asked_for(tmp_path: Path) -> None:
    assert find(rendered(None), "Secret") == []
    docs = render_with(
        tmp_path, {"storageSource": {"authToken": {"create": True, "value": "s3cr3t"}}}
    )
    (secret,) = find(docs, "Secret")
    assert secret["metadata"]["name"] == "eventfn-storage-webhook"
    assert set(secret["data"]) == {"token"}
