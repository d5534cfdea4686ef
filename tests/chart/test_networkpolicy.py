"""NetworkPolicies: default deny, then exactly the flows the topology needs.

A small evaluator applies the rendered policies the way Kubernetes does (a pod selected by a
policy of a direction is isolated in that direction; a flow passes when the source's egress and
the destination's ingress both allow it) to pods built from the rendered pod templates, plus
stand-ins for the Knative, DNS and gateway pods of other namespaces and for external addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from chart_testing import CI, CI_VALUES, POD_KINDS, find, overrides, rendered

NAMESPACE = "eventfn"


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace + labels) or an address outside the cluster (ip)."""

    name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""


DNS = Endpoint("coredns", "kube-system", {"k8s-app": "kube-dns"})
ACTIVATOR = Endpoint("activator", "knative-serving", {"app": "activator"})
BROKER = Endpoint("broker-ingress", "knative-eventing", {"app": "broker-ingress"})
BROKER_FILTER = Endpoint("broker-filter", "knative-eventing", {"app": "broker-filter"})
GATEWAY = Endpoint("kourier-internal", "kourier-system", {"app": "3scale-kourier-gateway"})
STRANGER = Endpoint("stranger", "default", {"app": "stranger"})
INTERNET = Endpoint("internet", ip="93.184.216.34")
PRIVATE = [
    Endpoint("private-10", ip="10.12.0.9"),
    Endpoint("private-172", ip="172.20.3.4"),
    Endpoint("private-192", ip="192.168.1.10"),
    Endpoint("apiserver", ip="10.96.0.1"),
]
# Functions whose own egress rule (values.yaml) opens HTTPS to public addresses by design.
INTERNET_BY_DEFAULT = {"notifier"}  # its Teams and Slack webhooks


# Scenarios with NetworkPolicies (ci/rabbitmq-values.yaml turns them off, and says why).
SCENARIOS = [
    f for f in [None, *CI_VALUES] if overrides(f).get("networkPolicy", {}).get("enabled", True)
]
SCENARIO_IDS = ["default" if f is None else f.name for f in SCENARIOS]


def _template_labels(doc: Mapping[str, Any]) -> dict[str, str]:
    if doc["kind"] == "Pod":
        return dict(doc["metadata"]["labels"])
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(doc["spec"]["template"]["metadata"]["labels"])


@cache
def pods(values_file: Path | None) -> dict[str, Endpoint]:
    """The release's pods by object name (a Knative Service stands for its revision pods)."""
    found: dict[str, Endpoint] = {}
    for doc in rendered(values_file):
        if doc["kind"] in POD_KINDS or doc["apiVersion"] == "serving.knative.dev/v1":
            name = doc["metadata"]["name"]
            found[name] = Endpoint(name, NAMESPACE, _template_labels(doc))
    return found


def policies(values_file: Path | None) -> list[dict[str, Any]]:
    return find(rendered(values_file), "NetworkPolicy")


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        present, value = expression["key"] in labels, labels.get(expression["key"])
        operator, values = expression["operator"], expression.get("values", [])
        if (
            (operator == "In" and value not in values)
            or (operator == "NotIn" and value in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if not other.ip:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if other.ip:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != NAMESPACE:
        return False
    return _selects(peer.get("podSelector") or {}, other.labels)


def _port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol
        and (p.get("port") is None or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in ports
    )


def _side_allows(
    docs: list[dict[str, Any]], pod: Endpoint, other: Endpoint, port: int, proto: str, way: str
) -> bool:
    if pod.namespace != NAMESPACE:
        return True  # other namespaces are not this chart's to isolate
    direction, rules_key, peers_key = {
        "egress": ("Egress", "egress", "to"),
        "ingress": ("Ingress", "ingress", "from"),
    }[way]
    selecting = [
        p
        for p in docs
        if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    return any(
        (not rule.get(peers_key) or any(_peer_matches(peer, other) for peer in rule[peers_key]))
        and _port_matches(rule.get("ports"), port, proto)
        for policy in selecting
        for rule in policy["spec"].get(rules_key) or []
    )


def allowed(
    values_file: Path | None, source: Endpoint, target: Endpoint, port: int, proto: str = "TCP"
) -> bool:
    docs = policies(values_file)
    return _side_allows(docs, source, target, port, proto, "egress") and _side_allows(
        docs, target, source, port, proto, "ingress"
    )


# --- the policies ------------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_namespace_is_default_deny(values_file: Path | None) -> None:
    (deny,) = [p for p in policies(values_file) if p["metadata"]["name"].endswith("-default-deny")]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_pod_resolves_names_and_nothing_else_by_default(values_file: Path | None) -> None:
    for pod in pods(values_file).values():
        assert allowed(values_file, pod, DNS, 53, "UDP"), pod.name
        assert allowed(values_file, pod, DNS, 53, "TCP"), pod.name
        assert not allowed(values_file, pod, DNS, 80), pod.name
        assert not allowed(values_file, STRANGER, pod, 8080), pod.name
        assert not allowed(values_file, pod, STRANGER, 8080), pod.name


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_knative_reaches_functions_and_functions_reach_the_broker(
    values_file: Path | None,
) -> None:
    functions = [
        p
        for p in pods(values_file).values()
        if p.labels.get("app.kubernetes.io/component") == "function"
    ]
    assert functions
    broker = Endpoint("broker", "knative-eventing", {"app": "ingress"})
    scenario = overrides(values_file)
    shared_open = bool(scenario.get("networkPolicy", {}).get("egress"))
    for function in functions:
        for caller in (ACTIVATOR, BROKER_FILTER, GATEWAY):
            assert allowed(values_file, caller, function, 8012), (caller.name, function.name)
        assert allowed(values_file, function, broker, 8080), function.name
        for other in functions:
            assert not allowed(values_file, function, other, 8012), (function.name, other.name)
        own_rules = scenario.get("functions", {}).get(function.name, {}).get("egress")
        expected = shared_open or bool(own_rules) or function.name in INTERNET_BY_DEFAULT
        assert allowed(values_file, function, INTERNET, 443) is expected, function.name


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_notifier_reaches_only_https_on_public_addresses(values_file: Path | None) -> None:
    found = pods(values_file)
    if "notifier" not in found:  # only where the scenario turns the functions off on purpose
        assert overrides(values_file).get("functionDefaults", {}).get("enabled") is False
        return
    notifier = found["notifier"]
    assert allowed(values_file, notifier, INTERNET, 443)
    assert allowed(values_file, notifier, Endpoint("slack", ip="3.120.0.1"), 443)
    for port, proto in ((80, "TCP"), (8443, "TCP"), (443, "UDP"), (25, "TCP")):
        assert not allowed(values_file, notifier, INTERNET, port, proto), (port, proto)
    for address in PRIVATE:
        assert not allowed(values_file, notifier, address, 443), address.name
    assert not allowed(values_file, notifier, STRANGER, 443)
    assert not allowed(values_file, STRANGER, notifier, 8080)
    for other in found.values():
        if other.name != "notifier":
            assert not allowed(values_file, notifier, other, 8080), other.name


def test_by_default_only_the_notifier_reaches_outside_the_cluster() -> None:
    for pod in pods(None).values():
        expected = pod.name in INTERNET_BY_DEFAULT
        assert allowed(None, pod, INTERNET, 443) is expected, pod.name
        assert not allowed(None, pod, INTERNET, 80), pod.name
        for address in PRIVATE:
            assert not allowed(None, pod, address, 443), (pod.name, address.name)


def test_everything_scenario_wires_exactly_its_shared_services() -> None:
    everything = CI / "everything-values.yaml"
    found = pods(everything)
    echo, postgres, minio = found["echo"], found["eventfn-postgresql"], found["eventfn-minio"]
    collector, backup = found["eventfn-otel-collector"], found["cluster-backup"]
    migrate, setup, test = (
        found["eventfn-db-migrate"],
        found["eventfn-minio-setup"],
        found["eventfn-test-echo"],
    )
    expected = [
        (echo, postgres, 5432, True),
        (migrate, postgres, 5432, True),
        (backup, postgres, 5432, False),  # uses.database: false
        (test, postgres, 5432, False),
        (echo, postgres, 5433, False),
        (echo, minio, 9000, True),
        (setup, minio, 9000, True),
        (backup, minio, 9000, True),
        (migrate, minio, 9000, False),
        (minio, GATEWAY, 8081, True),  # bucket notifications -> storage-source
        (minio, postgres, 5432, False),
        (echo, collector, 4318, True),
        (backup, collector, 4317, True),
        (collector, Endpoint("jaeger", "observability", {}), 4318, True),
        (collector, INTERNET, 443, False),
        (postgres, INTERNET, 443, False),
        (postgres, echo, 8080, False),
        (test, GATEWAY, 8081, True),
        (test, INTERNET, 443, False),
        (backup, Endpoint("apiserver", ip="10.96.0.1"), 443, True),
        (echo, Endpoint("apiserver", ip="10.96.0.1"), 443, False),
        (echo, INTERNET, 443, True),  # functions.echo.egress
        (echo, INTERNET, 80, False),
        (found["storage-source"], INTERNET, 443, False),  # only echo's own rule
        (backup, INTERNET, 443, False),
    ]
    for source, target, port, expected_result in expected:
        result = allowed(everything, source, target, port)
        assert result is expected_result, (source.name, target.name, port)


def test_external_scenario_opens_only_the_declared_addresses() -> None:
    external = CI / "external-values.yaml"
    found = pods(external)
    echo, migrate = found["echo"], found["eventfn-db-migrate"]
    database = Endpoint("rds", ip="10.20.0.7")
    for workload in (echo, migrate):
        assert allowed(external, workload, database, 5432)
        assert not allowed(external, workload, database, 22)
        assert allowed(external, workload, INTERNET, 443)  # S3
        assert not allowed(external, workload, Endpoint("lan", ip="192.168.1.10"), 443)
    collector = Endpoint("collector", "observability", {"app": "otel"})
    assert allowed(external, echo, collector, 4318)
    assert not allowed(external, echo, collector, 4317)


def test_the_evaluator_isolates_only_selected_pods() -> None:
    docs = [
        {"spec": {"podSelector": {"matchLabels": {"a": "1"}}, "policyTypes": ["Egress"]}},
    ]
    isolated = Endpoint("x", NAMESPACE, {"a": "1"})
    free = Endpoint("y", NAMESPACE, {"a": "2"})
    assert not _side_allows(docs, isolated, free, 80, "TCP", "egress")
    assert _side_allows(docs, free, isolated, 80, "TCP", "egress")
    assert _side_allows(docs, isolated, free, 80, "TCP", "ingress")


def test_policies_can_be_turned_off() -> None:
    rabbitmq = CI / "rabbitmq-values.yaml"
    assert rabbitmq not in SCENARIOS
    assert policies(rabbitmq) == []


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_only_functions_that_use_services_reach_the_gateway(values_file: Path | None) -> None:
    """The workflow engine calls workflow-tasks at its cluster-local URL, i.e. via the gateway."""
    functions = {
        name: pod
        for name, pod in pods(values_file).items()
        if pod.labels.get("app.kubernetes.io/component") == "function"
    }
    for name, pod in functions.items():
        assert allowed(values_file, pod, GATEWAY, 80) is (name == "workflow"), name
