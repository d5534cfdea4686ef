"""Every rendered object is valid for its API: Knative kinds against the cloudcoil Knative 1.17
models (strict, unknown fields forbidden), core kinds against the Kubernetes JSON schemas of the
chart's kubeVersion (kubernetes-validate, strict). Plus the Knative rules the schemas cannot see.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import pydantic
import pytest
import yaml
from chart_testing import CHART, SCENARIO_IDS, SCENARIOS, find, one, rendered

with warnings.catch_warnings():
    # The generated messaging models shadow Resource.name/namespace; irrelevant here.
    warnings.simplefilter("ignore", UserWarning)
    from cloudcoil.models.knative_eventing.eventing.v1 import Broker, Trigger
    from cloudcoil.models.knative_eventing.sources.v1 import PingSource
    from cloudcoil.models.knative_serving.serving.v1 import Service

KNATIVE_MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("serving.knative.dev/v1", "Service"): Service,
    ("eventing.knative.dev/v1", "Broker"): Broker,
    ("eventing.knative.dev/v1", "Trigger"): Trigger,
    ("sources.knative.dev/v1", "PingSource"): PingSource,
}
CORE_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}
AUTOSCALING = ("min-scale", "max-scale", "target")
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}


def chart_kube_version() -> str:
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", constraint)
    assert match, f"kubeVersion {constraint!r} is not a plain lower bound"
    return match.group(1)


KUBE_VERSION = chart_kube_version()


# Knative's CRDs preserve unknown fields under spec.delivery so that the `timeout` field (feature
# `delivery-timeout`, beta and on by default) reaches the webhook (knative/eventing#5654, #5687);
# the 1.17 CRD schema, hence the cloudcoil models generated from it, does not declare it. This is
# the only field the strict validation lets through, and only as an ISO-8601 duration.
PRESERVED_DELIVERY_FIELDS = ("timeout",)
ISO_DURATION = re.compile(r"PT(\d+H)?(\d+M)?(\d+(\.\d+)?S)?")


def without_preserved_fields(doc: dict[str, Any]) -> dict[str, Any]:
    delivery = (doc.get("spec") or {}).get("delivery")
    if not delivery or not any(name in delivery for name in PRESERVED_DELIVERY_FIELDS):
        return doc
    stripped = copy.deepcopy(doc)
    for name in PRESERVED_DELIVERY_FIELDS:
        value = stripped["spec"]["delivery"].pop(name, None)
        assert value is None or ISO_DURATION.fullmatch(value), f"delivery.{name}={value!r}"
    return stripped


def validate(doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in KNATIVE_MODELS:
        KNATIVE_MODELS[key].model_validate(
            without_preserved_fields(doc), strict=True, extra="forbid"
        )
    elif key in CORE_KINDS:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    else:
        pytest.fail(f"no validator for {key}: add one before rendering this kind")


def knative_services(values_file: Path | None) -> list[dict[str, Any]]:
    return [d for d in rendered(values_file) if d["apiVersion"] == "serving.knative.dev/v1"]


# --- schemas and lint -------------------------------------------------------------------------


def test_chart_kube_version_is_shipped_by_kubernetes_validate() -> None:
    shipped = kubernetes_validate.utils.all_versions()
    assert KUBE_VERSION in shipped
    assert KUBE_VERSION == "1.33.0", "newest Kubernetes <= 1.33 that kubernetes-validate ships"


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_rendered_object_is_valid_for_its_api(values_file: Path | None) -> None:
    for doc in rendered(values_file):
        validate(doc)


def test_knative_validation_is_strict() -> None:
    ksvc = copy.deepcopy(knative_services(None)[0])
    ksvc["spec"]["template"]["spec"]["containers"][0]["bogus"] = True
    with pytest.raises(pydantic.ValidationError, match="bogus"):
        validate(ksvc)
    ksvc = copy.deepcopy(knative_services(None)[0])
    ksvc["spec"]["template"]["spec"]["timeoutSeconds"] = "60"
    with pytest.raises(pydantic.ValidationError, match="timeoutSeconds"):
        validate(ksvc)
    trigger = one(rendered(None), "Trigger", "echo-requested")
    assert "deadLetterSink" in trigger["spec"]["delivery"]
    validate(trigger)
    broken = copy.deepcopy(trigger)
    broken["spec"]["delivery"]["retries"] = 3
    with pytest.raises(pydantic.ValidationError, match="retries"):
        validate(broken)
    broken = copy.deepcopy(trigger)
    broken["spec"]["delivery"]["timeout"] = "30s"
    with pytest.raises(AssertionError, match=r"delivery\.timeout"):
        validate(broken)


def test_pingsource_validation_is_strict() -> None:
    (source,) = find(rendered(None), "PingSource")
    validate(source)
    broken = copy.deepcopy(source)
    broken["spec"]["cron"] = broken["spec"].pop("schedule")
    with pytest.raises(pydantic.ValidationError, match="cron"):
        validate(broken)
    broken = copy.deepcopy(source)
    broken["spec"]["sink"]["ref"]["group"] = "eventing.knative.dev"
    with pytest.raises(pydantic.ValidationError, match="group"):
        validate(broken)


def test_core_validation_is_strict() -> None:
    (account, *_) = find(rendered(None), "ServiceAccount")
    broken = copy.deepcopy(account)
    broken["automountToken"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def _object_schemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _object_schemas(value, f"{path}/{index}")


def test_schema_closes_every_object_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_levels = [
        path
        for path, node in _object_schemas(schema)
        if node.get("additionalProperties") is not False
    ]
    assert open_levels == []


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_chart_lints_clean_as_chart_testing_would(values_file: Path | None) -> None:
    values = None if values_file is None else yaml.safe_load(values_file.read_text())
    report = helm.lint(
        CHART, values, strict=True, namespace="eventfn", kube_version=f"v{KUBE_VERSION}"
    )
    assert report["errors"] == []
    warnings_ = [m for m in report["messages"] if m["severity"] >= 2]
    assert warnings_ == []


# --- Knative rules the schemas do not express ---------------------------------------------------


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_service_has_one_http1_port_8080_and_probes_on_it(values_file: Path | None) -> None:
    for ksvc in knative_services(values_file):
        (container,) = ksvc["spec"]["template"]["spec"]["containers"]
        assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
        for probe, path in (
            ("livenessProbe", "/health/liveness"),
            ("readinessProbe", "/health/readiness"),
        ):
            http_get = container[probe]["httpGet"]
            assert http_get["port"] in ("http1", 8080)
            assert http_get["path"] == path


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_autoscaling_annotations_are_on_the_revision_template(values_file: Path | None) -> None:
    for ksvc in knative_services(values_file):
        template_annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
        for name in AUTOSCALING:
            assert f"autoscaling.knative.dev/{name}" in template_annotations
        assert not any(
            key.startswith("autoscaling.knative.dev/")
            for key in (ksvc["metadata"].get("annotations") or {})
        )
        spec = ksvc["spec"]["template"]["spec"]
        concurrency = spec["containerConcurrency"]
        target = float(template_annotations["autoscaling.knative.dev/target"])
        assert concurrency == 0 or target <= concurrency
        assert 1 <= spec["timeoutSeconds"] <= 600


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_containers_meet_pod_security_restricted(values_file: Path | None) -> None:
    docs = rendered(values_file)
    accounts = {d["metadata"]["name"]: d for d in find(docs, "ServiceAccount")}
    for ksvc in knative_services(values_file):
        spec = ksvc["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 10001
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "securityContext" not in spec, "pod-level securityContext needs a Knative flag"
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert "emptyDir" in volume
        assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
        account = accounts[spec["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_env_names_the_function_and_points_k_sink_at_the_broker(values_file: Path | None) -> None:
    docs = rendered(values_file)
    (broker,) = find(docs, "Broker")
    broker_class = broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"]
    path = f"eventfn/{broker['metadata']['name']}"
    expected_sink = {
        "MTChannelBasedBroker": f"http://broker-ingress.knative-eventing.svc.cluster.local/{path}",
        "Kafka": f"http://kafka-broker-ingress.knative-eventing.svc.cluster.local/{path}",
    }
    for ksvc in knative_services(values_file):
        name = ksvc["metadata"]["name"]
        (container,) = ksvc["spec"]["template"]["spec"]["containers"]
        names = [item["name"] for item in container["env"]]
        assert len(names) == len(set(names)), f"{name} has duplicate env names"
        assert not RESERVED_ENV & set(names)
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["EVENTFN_FUNCTION"] == name
        assert env["OTEL_SERVICE_NAME"] == name
        assert env["EVENTFN_TIMEOUT_SECONDS"] == str(
            ksvc["spec"]["template"]["spec"]["timeoutSeconds"]
        )
        assert env["K_SINK"] == expected_sink.get(broker_class, env["K_SINK"])
        assert env["K_SINK"].startswith("http")
        assert container["args"] == ["serve", name]


def test_kafka_scenario_uses_its_config_map_and_ordered_delivery() -> None:
    docs = rendered(CHART / "ci" / "kafka-values.yaml")
    (broker,) = find(docs, "Broker")
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    (config_map,) = find(docs, "ConfigMap")
    assert config_map["metadata"]["name"] == "kafka-broker-config"
    assert broker["spec"]["config"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "kafka-broker-config",
        "namespace": "eventfn",
    }
    assert set(config_map["data"]) >= {"bootstrap.servers", "default.topic.partitions"}
    triggers = find(docs, "Trigger")
    assert any(
        (t["metadata"].get("annotations") or {}).get("kafka.eventing.knative.dev/delivery.order")
        == "ordered"
        for t in triggers
    )
