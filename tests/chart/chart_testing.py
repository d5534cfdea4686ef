"""Shared by the chart rendering tests: the chart, its CI scenarios, renderings (cached) and
lookups in them. Everything runs the real Helm SDK (helm-python-sdk) offline.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from eventfn._render import render_chart, split_documents

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "eventfn"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SCENARIOS = [None, *CI_VALUES]
SCENARIO_IDS = ["default", *(path.name for path in CI_VALUES)]


@cache
def rendered(values_file: Path | None) -> tuple[dict[str, Any], ...]:
    files = () if values_file is None else (values_file,)
    return tuple(split_documents(render_chart(CHART, values_files=files)))


@cache
def merged_values(values_file: Path | None) -> dict[str, Any]:
    overrides = {} if values_file is None else yaml.safe_load(values_file.read_text())
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(overrides)


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
