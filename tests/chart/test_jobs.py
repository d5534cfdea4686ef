"""CronJobs and their read-only RBAC, the guards on platform values, image overrides (skaffold),
development mode and the helm test.

Every test renders the real chart with helm-python-sdk; no cluster is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chart_testing import (
    EVERYTHING,
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

READ_ONLY_VERBS = {"get", "list", "watch"}


# --- CronJobs and their RBAC -------------------------------------------------------------------


def test_default_cronjobs_are_lake_ticks_and_backups_without_api_access() -> None:
    docs = rendered(None)
    cronjobs = {doc["metadata"]["name"]: doc for doc in find(docs, "CronJob")}
    backups = {"backup-db", "backup-bucket", "backup-prune", "backup-drill"}
    assert set(cronjobs) == {"lake-flush", "lake-compact"} | backups  # cluster-backup stays off
    assert find(docs, "Role") == [] and find(docs, "RoleBinding") == []
    expected = {
        "lake-flush": ("*/5 * * * *", ["lake", "flush"], "ghcr.io/eventfn/base:0.1.0"),
        "lake-compact": ("5 * * * *", ["lake", "compact"], "ghcr.io/eventfn/csv-ingest:0.1.0"),
        "backup-db": ("0 2 * * *", ["backup", "db"], "ghcr.io/eventfn/base:0.1.0"),
        "backup-drill": ("0 4 * * 0", ["backup", "drill"], "ghcr.io/eventfn/base:0.1.0"),
    }
    for name, (schedule, args, image) in expected.items():
        spec = cronjobs[name]["spec"]
        assert spec["schedule"] == schedule and spec["concurrencyPolicy"] == "Forbid", name
        pod = pod_spec(cronjobs[name])
        assert pod["serviceAccountName"] == name
        (container,) = pod["containers"]
        assert container["command"] == ["eventfn"] and container["args"] == args, name
        assert container["image"] == image, name
        account = one(docs, "ServiceAccount", name)
        assert account["automountServiceAccountToken"] is False, name
    # lake-flush runs every 5 minutes: a run must end before the next one is due.
    flush = cronjobs["lake-flush"]["spec"]["jobTemplate"]["spec"]
    assert flush["activeDeadlineSeconds"] < 300


def test_cronjobs_can_be_turned_off(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"jobDefaults": {"enabled": False}})
    assert find(docs, "CronJob") == [] and find(docs, "Role") == []


def test_cluster_backup_cronjob_and_its_read_only_role() -> None:
    docs = rendered(EVERYTHING)
    cronjob = one(docs, "CronJob", "cluster-backup")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 0 and spec["failedJobsHistoryLimit"] >= 1
    pod = pod_spec(cronjob)
    assert pod["serviceAccountName"] == "cluster-backup"
    assert pod["containers"][0]["args"] == ["backup", "cluster"]
    role = one(docs, "Role", "cluster-backup")
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("serving.knative.dev", "services"): {"get", "list"},
        ("eventing.knative.dev", "brokers"): {"get", "list"},
        ("eventing.knative.dev", "triggers"): {"get", "list"},
        ("sources.knative.dev", "pingsources"): {"get", "list"},
        ("batch", "cronjobs"): {"get", "list"},
        ("", "configmaps"): {"get", "list"},
        ("", "secrets"): {"list"},
    }
    binding = one(docs, "RoleBinding", "cluster-backup")
    assert binding["roleRef"]["name"] == "cluster-backup"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cluster-backup", "namespace": "eventfn"}
    ]
    policy = one(docs, "NetworkPolicy", "eventfn-cronjob-cluster-backup")
    assert policy["spec"]["podSelector"]["matchLabels"]["eventfn.dev/cronjob"] == "cluster-backup"


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_no_role_grants_more_than_reading(values_file: Path | None) -> None:
    for role in find(rendered(values_file), "Role"):
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ_ONLY_VERBS, role["metadata"]["name"]
            assert "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_a_generic_cronjob_runs_its_eventfn_command(tmp_path: Path) -> None:
    values = {
        "cronJobs": {
            "lake-compaction": {"schedule": "30 2 * * *", "args": ["lake", "compact"]},
        }
    }
    docs = render_with(tmp_path, values)
    cronjob = one(docs, "CronJob", "lake-compaction")
    container = pod_spec(cronjob)["containers"][0]
    assert container["command"] == ["eventfn"] and container["args"] == ["lake", "compact"]
    assert container["image"] == "ghcr.io/eventfn/base:0.1.0"
    assert env_of(container)["K_SINK"].startswith("http://broker-ingress.")
    assert one(docs, "ServiceAccount", "lake-compaction")["automountServiceAccountToken"] is False
    assert find(docs, "Role") == []


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"database": {"external": {"enabled": True}, "postgresql": {"enabled": True}}},
            r"enable either external or postgresql, not both",
        ),
        (
            {"cronJobs": {"echo": {"schedule": "@daily", "args": ["x"]}}},
            r"cronJobs.echo: a function has the same name",
        ),
        (
            {"cronJobs": {"no-schedule": {"args": ["x"]}}},
            r"cronJobs.no-schedule: schedule is required",
        ),
        (
            {
                "cronJobs": {
                    "writer": {
                        "schedule": "@daily",
                        "args": ["x"],
                        "rbac": {
                            "rules": [
                                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
                            ]
                        },
                    }
                }
            },
            r"rules/0/verbs/0': value must be one of 'get', 'list', 'watch'",
        ),
        ({"images": {"echo": {"tag": "latest"}}}, r"(?s)images/echo/tag"),
        ({"runtimeImage": {"tag": "latest"}}, r"(?s)runtimeImage/tag"),
        (
            {"database": {"postgresql": {"enabled": True, "password": "not url safe"}}},
            r"(?s)postgresql/password",
        ),
    ],
    ids=[
        "two-databases",
        "cronjob-named-like-a-function",
        "cronjob-without-schedule",
        "rbac-write-verb",
        "latest-image-override",
        "latest-runtime-image",
        "password-not-url-safe",
    ],
)
def test_invalid_platform_values_are_refused(
    tmp_path: Path, values: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        render_with(tmp_path, values)


# --- image overrides, dev mode, helm test ------------------------------------------------------


def test_images_override_is_keyed_without_dashes(tmp_path: Path) -> None:
    values = {
        "images": {
            "storage_source": {
                "repository": "kind.local/eventfn-storage-source",
                "tag": "abc@sha256:" + "0" * 64,
            },
            "not_a_declared_function": {"repository": "kind.local/x", "tag": "1"},
        }
    }
    docs = render_with(tmp_path, values)
    (ksvc,) = [d for d in find(docs, "Service", "storage-source") if "serving" in d["apiVersion"]]
    image = pod_spec(ksvc)["containers"][0]["image"]
    assert image == "kind.local/eventfn-storage-source:abc@sha256:" + "0" * 64


def test_dev_mode_reloads_synced_code_in_one_warm_pod(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"devMode": {"enabled": True}})
    (ksvc,) = [d for d in find(docs, "Service", "echo") if "serving" in d["apiVersion"]]
    annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "1"
    assert annotations["autoscaling.knative.dev/max-scale"] == "1"
    (container,) = pod_spec(ksvc)["containers"]
    assert container["command"] == ["gunicorn"]
    assert "--reload" in container["args"] and "--threads=4" in container["args"]
    assert container["args"][-1] == "eventfn._factory:create_app()"
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert env_of(container)["EVENTFN_FUNCTION"] == "echo"


def test_helm_test_posts_an_event_and_checks_the_reply_type() -> None:
    docs = rendered(None)
    pod = one(docs, "Pod", "eventfn-test-echo")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "docker.io/curlimages/curl:8.11.1"
    script = container["args"][0]
    assert "http://echo.eventfn.svc.cluster.local/" in script
    assert "Ce-Type: eventfn.echo.requested.v1" in script
    assert "%header{ce-type}" in script
    assert 'test "$reply_type" = "eventfn.echo.replied.v1"' in script
    assert env_of(container)["EVENT_DATA"] == '{"message": "hello from helm test"}'


def test_helm_test_is_skipped_when_its_function_is_not_deployed(tmp_path: Path) -> None:
    docs = render_with(tmp_path, {"functions": {"echo": {"enabled": False}}})
    assert find(docs, "Pod") == []


def test_default_rendering_gives_functions_no_endpoint_or_secret() -> None:
    """k8s/ is also what `eventfn dev` runs locally: no in-cluster endpoint or Secret leaks in."""
    env = ksvc_env(rendered(None), "echo")
    assert set(env) == {
        "AWS_REGION",
        "EVENTFN_BUCKET",
        "EVENTFN_FUNCTION",
        "EVENTFN_STATE_DIR",
        "EVENTFN_THREADS",
        "EVENTFN_TIMEOUT_SECONDS",
        "K_SINK",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_SERVICE_NAME",
    }
