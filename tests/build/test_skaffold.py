"""skaffold.yaml: one artifact per function folder built FROM the base, the chart deployed with
each image through `-`-free setValueTemplates keys, kind/minikube/dev profiles, port-forwards.

No skaffold binary runs here. Besides the structure, the deploy is simulated the way skaffold
does it: its image templates expanded for every artifact, its --set values parsed by Helm's own
parser (helm-python-sdk) and the chart rendered with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from eventfn._render import _merge_values, render_chart, split_documents

ROOT = Path(__file__).resolve().parents[2]
SKAFFOLD = ROOT / "skaffold.yaml"
CHART = ROOT / "charts" / "eventfn"
BASE_IMAGE = "eventfn-base"
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*\.([A-Za-z0-9_]+)\s*\}\}")


@cache
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(SKAFFOLD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def function_names() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))


def artifacts() -> dict[str, dict[str, Any]]:
    return {a["image"]: a for a in config()["build"]["artifacts"]}


def release() -> dict[str, Any]:
    (only,) = config()["deploy"]["helm"]["releases"]
    assert isinstance(only, dict)
    return only


def profile(name: str) -> dict[str, Any]:
    (found,) = [p for p in config()["profiles"] if p["name"] == name]
    assert isinstance(found, dict)
    return found


def helm_key(function: str) -> str:
    return function.replace("-", "_")


def template_name(image: str) -> str:
    """skaffold's spelling of an image in template variables: `/` and `-` become `_`."""
    return re.sub(r"[/-]", "_", image)


def python_minor_of_base() -> str:
    text = (ROOT / "Dockerfile.base").read_text()
    versions = set(re.findall(r"^FROM python:3\.(\d+)\.\d+-slim", text, flags=re.M))
    (minor,) = versions
    return f"3.{minor}"


# --- structure ---------------------------------------------------------------------------------


def test_schema_version_and_kind() -> None:
    assert re.fullmatch(r"skaffold/v4beta\d+", config()["apiVersion"])
    assert config()["apiVersion"] == "skaffold/v4beta13", "documented in docs/cluster.md"
    assert config()["kind"] == "Config"


def test_base_artifact_comes_first_and_builds_dockerfile_base() -> None:
    first = config()["build"]["artifacts"][0]
    assert first["image"] == BASE_IMAGE
    assert first["context"] == "."
    assert first["docker"] == {"dockerfile": "Dockerfile.base"}
    assert "requires" not in first


def test_every_function_folder_has_an_artifact_and_every_artifact_a_folder() -> None:
    functions = {f"eventfn-{name}" for name in function_names()}
    assert set(artifacts()) - {BASE_IMAGE} == functions


@pytest.mark.parametrize("name", function_names())
def test_function_artifact_requires_the_base_as_build_arg_base(name: str) -> None:
    artifact = artifacts()[f"eventfn-{name}"]
    assert artifact["context"] == "."
    dockerfile = artifact["docker"]["dockerfile"]
    assert dockerfile == f"functions/{name}/Dockerfile" and (ROOT / dockerfile).is_file()
    assert artifact["requires"] == [{"image": BASE_IMAGE, "alias": "BASE"}]
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^ARG BASE=\S+\nFROM \$\{BASE\}$", text, flags=re.M)


@pytest.mark.parametrize("name", function_names())
def test_function_artifact_syncs_python_files_into_the_image_paths(name: str) -> None:
    rules = artifacts()[f"eventfn-{name}"]["sync"]["manual"]
    site_packages = f"/opt/eventfn/lib/python{python_minor_of_base()}/site-packages"
    assert {"src": f"functions/{name}/**/*.py", "dest": "/app"} in rules
    assert {"src": "src/eventfn/**/*.py", "dest": site_packages, "strip": "src/"} in rules
    dockerfile = (ROOT / "functions" / name / "Dockerfile").read_text()
    assert f" functions/{name}/ /app/functions/{name}/" in dockerfile


def test_set_value_template_keys_have_no_dash_and_name_known_artifacts() -> None:
    templates = release()["setValueTemplates"]
    known = {template_name(image) for image in artifacts()}
    used = set()
    for key, value in templates.items():
        assert "-" not in key, f"setValueTemplates key {key!r} contains '-'"
        for variable in TEMPLATE_VARIABLE.findall(value):
            prefix, _, image = variable.partition("_eventfn")
            assert prefix in {"IMAGE_REPO", "IMAGE_TAG", "IMAGE_DIGEST"}, variable
            assert f"eventfn{image}" in known, variable
            used.add(f"eventfn{image}")
    assert used == known, "every artifact's image reaches the chart"


@pytest.mark.parametrize("name", function_names())
def test_function_image_values_follow_skaffolds_documented_pattern(name: str) -> None:
    templates = release()["setValueTemplates"]
    image = template_name(f"eventfn-{name}")
    key = helm_key(name)
    assert templates[f"images.{key}.repository"] == f"{{{{.IMAGE_REPO_{image}}}}}"
    assert templates[f"images.{key}.tag"] == (
        f"{{{{.IMAGE_TAG_{image}}}}}@{{{{.IMAGE_DIGEST_{image}}}}}"
    )


def test_release_deploys_the_chart_into_a_namespace_skaffold_creates() -> None:
    deployed = release()
    assert (ROOT / deployed["chartPath"] / "Chart.yaml").is_file()
    assert deployed["namespace"] == "eventfn" and deployed["createNamespace"] is True
    assert deployed["setValues"]["namespace.create"] == "false"


@pytest.mark.parametrize(
    ("name", "matches", "misses"),
    [
        ("kind", ["kind-kind", "kind-eventfn"], ["minikube", "gke_x_kind-1", "mykind-x"]),
        ("minikube", ["minikube"], ["kind-kind", "minikube-2"]),
    ],
)
def test_local_cluster_profiles_activate_by_context_and_never_push(
    name: str, matches: list[str], misses: list[str]
) -> None:
    found = profile(name)
    (activation,) = found["activation"]
    pattern = re.compile(activation["kubeContext"])  # skaffold matches contexts as a regexp
    assert all(pattern.search(context) for context in matches)
    assert not any(pattern.search(context) for context in misses)
    assert found["build"]["local"]["push"] is False


def test_dev_profile_turns_on_sync_writability_and_reload_for_skaffold_dev() -> None:
    found = profile("dev")
    assert found["activation"] == [{"command": "dev"}]
    patches = {p["path"]: p for p in found["patches"]}
    owner = patches["/build/artifacts/0/docker/buildArgs"]
    assert owner["op"] == "add" and owner["value"] == {"APP_OWNER": "10001"}
    assert "ARG APP_OWNER=0" in (ROOT / "Dockerfile.base").read_text()
    dev = patches["/deploy/helm/releases/0/setValues/devMode.enabled"]
    assert dev["op"] == "add" and dev["value"] == "true"


def test_port_forwards_reach_the_broker_and_the_functions_gateway() -> None:
    forwards = {(f["namespace"], f["resourceName"]): f for f in config()["portForward"]}
    broker = forwards[("knative-eventing", "broker-ingress")]
    assert (broker["resourceType"], broker["port"], broker["localPort"]) == ("service", 80, 8080)
    gateway = forwards[("kourier-system", "kourier-internal")]
    assert (gateway["port"], gateway["localPort"]) == (80, 8081)


# --- the deploy, simulated ---------------------------------------------------------------------


def expand(template: str, images: Mapping[str, str], tags: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        kind, _, image = match.group(1).partition("_eventfn")
        image = f"eventfn{image}"
        return {
            "IMAGE_REPO": images[image],
            "IMAGE_TAG": tags[image],
            "IMAGE_DIGEST": "sha256:" + "ab" * 32,
        }[kind]

    return TEMPLATE_VARIABLE.sub(value, template)


def skaffold_values(dev: bool) -> dict[str, Any]:
    """The --set values `skaffold run|dev --default-repo=kind.local` passes to Helm."""
    images = {template_name(a): f"kind.local/{a}" for a in artifacts()}
    tags = {template_name(a): f"{a}-tag" for a in artifacts()}
    sets = dict(release()["setValues"])
    if dev:
        for patch in profile("dev")["patches"]:
            prefix = "/deploy/helm/releases/0/setValues/"
            if patch["path"].startswith(prefix):
                sets[patch["path"].removeprefix(prefix)] = patch["value"]
    for key, template in release()["setValueTemplates"].items():
        sets[key] = expand(template, images, tags)
    values: dict[str, Any] = {}
    for key, value in sorted(sets.items()):
        values = _merge_values(values, helm.parse_set_string(f"{key}={value}"))
    return values


@pytest.mark.parametrize("dev", [False, True], ids=["run", "dev"])
def test_chart_renders_the_images_skaffold_built(tmp_path: Path, dev: bool) -> None:
    path = tmp_path / "skaffold-values.yaml"
    path.write_text(yaml.safe_dump(skaffold_values(dev)))
    everything = CHART / "ci" / "everything-values.yaml"  # functions, jobs and services
    docs = split_documents(render_chart(CHART, values_files=[everything, path]))
    assert not [d for d in docs if d["kind"] == "Namespace"]
    ksvcs = [d for d in docs if d["apiVersion"] == "serving.knative.dev/v1"]
    assert ksvcs
    digest = "sha256:" + "ab" * 32
    for ksvc in ksvcs:
        name = ksvc["metadata"]["name"]
        (container,) = ksvc["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"kind.local/eventfn-{name}:eventfn-{name}-tag@{digest}"
        assert (container["command"] == ["gunicorn"]) is dev
        assert container["securityContext"]["readOnlyRootFilesystem"] is not dev
    (migrate,) = [
        d for d in docs if d["metadata"]["name"] == "eventfn-db-migrate" and d["kind"] == "Job"
    ]
    (container,) = migrate["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"kind.local/eventfn-base:eventfn-base-tag@{digest}"
    assert container["imagePullPolicy"] == "IfNotPresent"
