"""Shared by the chart rendering tests: the chart, its CI scenarios, renderings (cached) and
lookups in them. Everything runs the real Helm SDK (helm-python-sdk) offline.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from eventfn._render import NAMESPACE_DEFAULT, render_chart, split_documents

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "eventfn"
CI = CHART / "ci"
CI_VALUES = sorted(CI.glob("*-values.yaml"))
SCENARIOS = [None, *CI_VALUES]
SCENARIO_IDS = ["default", *(path.name for path in CI_VALUES)]
EVERYTHING = CI / "everything-values.yaml"
EXTERNAL = CI / "external-values.yaml"
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "Job", "CronJob"}


@cache
def rendered(values_file: Path | None) -> tuple[dict[str, Any], ...]:
    """One rendering per scenario for the whole test session: callers never mutate it."""
    files = () if values_file is None else (values_file,)
    return tuple(split_documents(render_chart(CHART, values_files=files)))


def overrides(values_file: Path | None) -> dict[str, Any]:
    """What a scenario's values file sets over the chart's defaults."""
    return {} if values_file is None else dict(yaml.safe_load(values_file.read_text()))


@cache
def merged_values(values_file: Path | None) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(overrides(values_file))


def render_with(
    tmp_path: Path, values: Mapping[str, Any], namespace: str = NAMESPACE_DEFAULT
) -> list[dict[str, Any]]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    return split_documents(render_chart(CHART, values_files=[path], namespace=namespace))


def find(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[Any]:
    """The documents of a kind, and of that name when one is given."""
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = find(docs, kind, name)
    return doc


def knative_services(docs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for doc in docs
        if doc["kind"] == "Service" and doc["apiVersion"] == "serving.knative.dev/v1"
    }


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec of any pod-bearing kind (Knative Services included)."""
    if doc["kind"] == "Pod":
        return dict(doc["spec"])
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def ksvc_env(docs: Iterable[dict[str, Any]], name: str) -> dict[str, Any]:
    ksvc = [d for d in find(docs, "Service", name) if d["apiVersion"] == "serving.knative.dev/v1"]
    return env_of(pod_spec(ksvc[0])["containers"][0])
