"""The chart's shared services: database and migrations, object storage and MinIO,
OpenTelemetry; and, in every rendering, pinned images and locked-down pods.

Every test renders the real chart with helm-python-sdk; no cluster is involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_testing import (
    EVERYTHING,
    EXTERNAL,
    POD_KINDS,
    SCENARIO_IDS,
    SCENARIOS,
    env_of,
    find,
    ksvc_env,
    one,
    pod_spec,
    render_with,
    rendered,
)

from eventfn._errors import ConfigurationError


def containers(docs: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in POD_KINDS or doc["apiVersion"] == "serving.knative.dev/v1":
            spec = pod_spec(doc)
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                yield f"{doc['kind']}/{doc['metadata']['name']}", container


# --- images and pod security in every rendering ------------------------------------------------


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_image_is_pinned_never_latest(values_file: Path | None) -> None:
    for where, container in containers(rendered(values_file)):
        image = container["image"]
        name, _, digest = image.partition("@")
        repository, _, tag = name.rpartition(":")
        assert repository and "/" in repository, f"{where}: {image} is not fully qualified"
        assert tag and tag != "latest", f"{where} runs {image}"
        assert not digest or digest.startswith("sha256:"), f"{where}: {image}"


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_workload_besides_functions_is_locked_down(values_file: Path | None) -> None:
    for doc in rendered(values_file):
        if doc["kind"] not in POD_KINDS:
            continue
        spec = pod_spec(doc)
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, where
        assert pod_context["runAsUser"] >= 10000, where
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["runAsNonRoot"] is True, where
            resources = container["resources"]
            assert set(resources["requests"]) >= {"cpu", "memory"}, where
            assert set(resources["limits"]) >= {"cpu", "memory"}, where
        bound = {b["subjects"][0]["name"] for b in find(rendered(values_file), "RoleBinding")}
        expected = spec.get("serviceAccountName") in bound
        assert spec["automountServiceAccountToken"] is expected, where


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_functions_never_mount_an_api_token(values_file: Path | None) -> None:
    for doc in rendered(values_file):
        if doc["apiVersion"] == "serving.knative.dev/v1":
            assert pod_spec(doc)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_every_service_account_a_pod_names_is_rendered(values_file: Path | None) -> None:
    docs = rendered(values_file)
    accounts = {d["metadata"]["name"] for d in find(docs, "ServiceAccount")}
    for doc in docs:
        if doc["kind"] in POD_KINDS or doc["apiVersion"] == "serving.knative.dev/v1":
            name = pod_spec(doc).get("serviceAccountName")
            if doc["kind"] in {"Deployment", "StatefulSet", "Pod"} and name is None:
                continue  # in-chart servers and the test Pod: no identity, no token
            assert name in accounts, f"{doc['kind']}/{doc['metadata']['name']} uses {name}"


# --- database ----------------------------------------------------------------------------------


def test_default_values_configure_no_database_and_no_migration_job() -> None:
    docs = rendered(None)
    assert find(docs, "Job") == [] and find(docs, "StatefulSet") == []
    assert "EVENTFN_DATABASE_URL" not in ksvc_env(docs, "echo")
    assert "EVENTFN_AUTO_MIGRATE" not in ksvc_env(docs, "echo")


def test_external_database_is_migrated_before_install_and_upgrade() -> None:
    docs = rendered(EXTERNAL)
    job = one(docs, "Job", "eventfn-db-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    account = one(docs, "ServiceAccount", "eventfn-db-migrate")
    assert account["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    (container,) = pod_spec(job)["containers"]
    assert [container["command"], container["args"]] == [["eventfn"], ["db", "upgrade"]]
    assert container["image"].startswith("registry.example.com/eventfn/base:0.1.0@sha256:")
    url = {"secretKeyRef": {"name": "eventfn-database", "key": "url"}}
    assert env_of(container)["EVENTFN_DATABASE_URL"] == url
    for name in ("echo", "storage-source"):
        env = ksvc_env(docs, name)
        assert env["EVENTFN_DATABASE_URL"] == url
        assert env["EVENTFN_AUTO_MIGRATE"] == "false"


def test_in_chart_postgresql_is_migrated_after_install_and_its_url_resolves() -> None:
    docs = rendered(EVERYTHING)
    job = one(docs, "Job", "eventfn-db-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    secret = one(docs, "Secret", "eventfn-postgresql")
    assert set(secret["data"]) == {"password", "url"}
    statefulset = one(docs, "StatefulSet", "eventfn-postgresql")
    (server,) = pod_spec(statefulset)["containers"]
    assert server["image"] == "docker.io/library/postgres:17.5-bookworm"
    assert env_of(server)["POSTGRES_PASSWORD_FILE"] == "/secrets/password"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    ref = ksvc_env(docs, "echo")["EVENTFN_DATABASE_URL"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("eventfn-postgresql", "url")


def test_generated_postgresql_password_is_url_safe_and_in_the_url(tmp_path: Path) -> None:
    import base64

    values = {"database": {"postgresql": {"enabled": True, "password": "s3cr3t-pw"}}}
    secret = one(render_with(tmp_path, values), "Secret", "eventfn-postgresql")
    url = base64.b64decode(secret["data"]["url"]).decode()
    assert url == (
        "postgresql+psycopg://eventfn:s3cr3t-pw@eventfn-postgresql.eventfn.svc.cluster.local"
        ":5432/eventfn"
    )


# --- object storage ----------------------------------------------------------------------------


def test_external_object_storage_reaches_only_the_functions_using_it() -> None:
    docs = rendered(EXTERNAL)
    env = ksvc_env(docs, "storage-source")
    assert env["EVENTFN_S3_ENDPOINT_URL"] == "https://s3.eu-west-1.amazonaws.com"
    assert env["EVENTFN_BUCKET"] == "eventfn-prod-data"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "eventfn-s3", "key": "access-key-id"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "eventfn-s3", "key": "secret-access-key"}
    }
    echo = ksvc_env(docs, "echo")  # uses.objectStorage: false
    assert not {"EVENTFN_S3_ENDPOINT_URL", "EVENTFN_BUCKET", "AWS_ACCESS_KEY_ID"} & set(echo)


def test_minio_is_configured_by_a_post_install_job_pointing_at_storage_source() -> None:
    docs = rendered(EVERYTHING)
    secret = one(docs, "Secret", "eventfn-minio")
    env = ksvc_env(docs, "echo")
    assert env["EVENTFN_S3_ENDPOINT_URL"] == "http://eventfn-minio.eventfn.svc.cluster.local:9000"
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = env[variable]["secretKeyRef"]
        assert ref["name"] == "eventfn-minio" and ref["key"] in secret["data"]
    job = one(docs, "Job", "eventfn-minio-setup")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    (mc,) = pod_spec(job)["containers"]
    assert mc["image"].startswith("quay.io/minio/mc:RELEASE.")
    job_env = env_of(mc)
    assert job_env["WEBHOOK_URL"] == "http://storage-source.eventfn.svc.cluster.local/webhook"
    assert job_env["EVENTS"] == "put"
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert volumes["webhook-secret"]["secret"]["secretName"] == "eventfn-storage-webhook"
    script = one(docs, "ConfigMap", "eventfn-minio-setup")["data"]["setup.sh"]
    for step in ("mc mb", "notify_webhook:eventfn", "mc event add", "admin policy attach"):
        assert step in script
    (server,) = pod_spec(one(docs, "Deployment", "eventfn-minio"))["containers"]
    assert env_of(server)["MINIO_ROOT_PASSWORD_FILE"] == "/secrets/root-password"


def test_minio_needs_the_storage_source_function(tmp_path: Path) -> None:
    values = {
        "objectStorage": {"minio": {"enabled": True}},
        "functions": {"storage-source": {"enabled": False}},
    }
    with pytest.raises(ConfigurationError, match=r"enable it \(functions.storage-source\)"):
        render_with(tmp_path, values)


# --- OpenTelemetry -----------------------------------------------------------------------------


def test_collector_receives_every_function_and_job() -> None:
    docs = rendered(EVERYTHING)
    service = one(docs, "Service", "eventfn-otel-collector")
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318}
    config = yaml.safe_load(
        one(docs, "ConfigMap", "eventfn-otel-collector")["data"]["collector.yaml"]
    )
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["debug", "otlphttp"]
    endpoint = "http://eventfn-otel-collector.eventfn.svc.cluster.local:4318"
    for where, container in containers(docs):
        if where.startswith(("Service/", "CronJob/", "Job/eventfn-db-migrate")):
            assert env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint, where


def test_resource_attributes_merge_global_and_per_function_settings() -> None:
    env = ksvc_env(rendered(EXTERNAL), "echo")
    assert env["OTEL_SERVICE_NAME"] == "echo"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith("observability.svc.cluster.local:4318")
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    pairs = dict(item.split("=", 1) for item in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert pairs == {
        "deployment.environment": "production",
        "eventfn.tier": "smoke-test",
        "k8s.namespace.name": "eventfn",
        "service.namespace": "eventfn",
        "service.version": "0.1.0",
    }
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in ksvc_env(rendered(None), "echo")
