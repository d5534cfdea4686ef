"""checkov finds nothing in any rendering of the chart; every skip carries its reason.

checkov pins many packages of its own, so it lives in .venv-checkov (mk/checks.mk creates it;
`make test` does so before pytest runs). checkov has no checks for Knative Services, so each one
is also scanned as what Knative makes of it: a Deployment of its revision template (the
Service's annotations, where the chart writes its reasoned skips, come along).

One checkov run covers every scenario; each scenario is rendered into its own namespace so that
checkov's graph checks (pods <-> NetworkPolicies, RBAC) never mix two scenarios.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_testing import CHART, CI_VALUES, ROOT, one, rendered

from eventfn._render import render_chart, split_documents

CONFIG = CHART / ".checkov.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SCENARIOS = {
    "default": None,
    **{path.name.removesuffix("-values.yaml"): path for path in CI_VALUES},
}
CHECK_ID = re.compile(r"CKV2?_K8S_\d+")

pytestmark = pytest.mark.skipif(
    not CHECKOV.is_file(),
    reason="checkov is not installed: `make checkov-venv` (mk/checks.mk) creates .venv-checkov",
)


def revision_deployment(ksvc: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment Knative creates for a Knative Service's current revision."""
    template = copy.deepcopy(ksvc["spec"]["template"])
    for knative_only in ("containerConcurrency", "timeoutSeconds"):
        template["spec"].pop(knative_only, None)
    metadata = ksvc["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{metadata['name']}-revision",
            "namespace": metadata["namespace"],
            "labels": metadata["labels"],
            "annotations": metadata.get("annotations") or {},
        },
        "spec": {"selector": {"matchLabels": template["metadata"]["labels"]}, "template": template},
    }


def write_scenarios(directory: Path) -> None:
    for scenario, values in SCENARIOS.items():
        files = () if values is None else (values,)
        docs = split_documents(render_chart(CHART, values_files=files, namespace=f"ck-{scenario}"))
        docs += [
            revision_deployment(d) for d in docs if d["apiVersion"] == "serving.knative.dev/v1"
        ]
        folder = directory / scenario
        folder.mkdir()
        (folder / "rendering.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("checkov")
    write_scenarios(directory)
    run = subprocess.run(
        [
            str(CHECKOV),
            "--config-file",
            str(CONFIG),
            "--directory",
            str(directory),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert isinstance(result, dict), "one framework (kubernetes) gives one report"
    return result


def scenario_of(check: Mapping[str, Any]) -> str:
    return Path(check["file_path"]).parts[1]


def test_no_check_fails_in_any_scenario(report: dict[str, Any]) -> None:
    failed = [
        f"{scenario_of(c)}: {c['check_id']} {c['resource']} ({c['check_name']})"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0


def test_every_scenario_and_every_function_was_scanned(report: dict[str, Any]) -> None:
    passed = report["results"]["passed_checks"]
    assert {scenario_of(c) for c in passed} == set(SCENARIOS)
    revisions = {c["resource"] for c in passed if c["resource"].endswith("-revision")}
    assert "Deployment.ck-default.echo-revision" in revisions
    assert "Deployment.ck-default.storage-source-revision" in revisions
    by_resource = {c["resource"] for c in passed if c["check_id"] == "CKV_K8S_22"}
    assert "Deployment.ck-default.echo-revision" in by_resource  # read-only root filesystem


def test_every_skip_has_a_reason(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the chart's reasoned skips (test Pod probes, ...) should show up here"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.split()) >= 5, f"{check['check_id']} {check['resource']}: {reason!r}"


def test_config_file_skips_are_reasoned_next_to_them() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["framework"] == ["kubernetes"]
    assert config["skip-download"] is True, "no network: checkov must not call its platform"
    lines = CONFIG.read_text().splitlines()
    for check_id in config["skip-check"]:
        (index,) = [i for i, line in enumerate(lines) if line.strip() == f"- {check_id}"]
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        assert any(check_id in line for line in comment), f"{check_id} has no reason above it"
        assert len(" ".join(comment).split()) >= 15


def test_revision_model_keeps_what_checkov_checks() -> None:
    ksvc = one(rendered(None), "Service", "echo")
    deployment = revision_deployment(ksvc)
    assert (
        deployment["spec"]["template"]["spec"]["containers"]
        == (ksvc["spec"]["template"]["spec"]["containers"])
    )
    skipped = {
        CHECK_ID.match(value).group(0)  # type: ignore[union-attr]
        for key, value in deployment["metadata"]["annotations"].items()
        if key.startswith("checkov.io/skip")
    }
    assert skipped == {"CKV_K8S_29", "CKV_K8S_11", "CKV_K8S_15"}
