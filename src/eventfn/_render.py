"""Render the Helm chart (the single source of topology) and keep k8s/ equal to its rendering.

`helm template` runs in-process through helm-python-sdk (the Helm v4 Go SDK, no binary, no
cluster). The rendering is split into one file per function (its ServiceAccount, Knative Service
and Triggers), one per CronJob (its ServiceAccount, RBAC and CronJob) and one file per other kind,
with a numeric prefix so that `kubectl apply -R -f k8s/` creates the Namespace first, the
NetworkPolicies before any pod and the Broker before the functions. `helm test` hooks (objects
annotated helm.sh/hook: test) are left out: they belong to `helm test`, not to an install.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from eventfn._errors import ConfigurationError

CHART_DIR_DEFAULT = Path("charts") / "eventfn"
K8S_DIR_DEFAULT = Path("k8s")
RELEASE_DEFAULT = "eventfn"
NAMESPACE_DEFAULT = "eventfn"

FUNCTION_LABEL = "eventfn.dev/function"
FUNCTIONS_SUBDIR = "functions"
CRONJOB_LABEL = "eventfn.dev/cronjob"
CRONJOBS_SUBDIR = "cronjobs"
HOOK_ANNOTATION = "helm.sh/hook"
TEST_HOOK = "test"
HEADER = (
    "# Rendered from charts/eventfn with its default values by `eventfn render` (make render).\n"
    "# Do not edit: change charts/eventfn/values.yaml and render again.\n"
)

# Kinds that get their own file; the prefix orders `kubectl apply -R -f k8s/`.
_KIND_FILES = {
    "Namespace": "00-namespace.yaml",
    "NetworkPolicy": "10-networkpolicy.yaml",
    "ConfigMap": "10-configmap.yaml",
    "Secret": "10-secret.yaml",
    "Broker": "20-broker.yaml",
}
_OTHER_KIND_PREFIX = "30-"
# Order of documents inside one file.
_KIND_ORDER = (
    "Namespace",
    "NetworkPolicy",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Broker",
    "Service",
    "StatefulSet",
    "Deployment",
    "Job",
    "CronJob",
    "Trigger",
)
_YAML_SUFFIXES = (".yaml", ".yml")


def chart_path(project_root: Path) -> Path:
    """The chart directory of a project."""
    return project_root / CHART_DIR_DEFAULT


def k8s_path(project_root: Path) -> Path:
    """The directory holding the checked-in rendering of a project."""
    return project_root / K8S_DIR_DEFAULT


def render_chart(
    chart_dir: Path,
    *,
    values_files: Sequence[Path] = (),
    release: str = RELEASE_DEFAULT,
    namespace: str = NAMESPACE_DEFAULT,
) -> str:
    """`helm template <release> <chart_dir> -n <namespace> -f <values_files...>` as one YAML stream.

    Values files merge left to right like repeated `-f`; a null removes a default. Raises
    ConfigurationError naming the reason when the values break the schema or a template `fail`s.
    """
    import helm_python as helm  # loads the Go shared library: only when rendering

    overrides: dict[str, Any] = {}
    try:
        for path in values_files:
            overrides = _merge_values(overrides, helm.values_from_yaml(path.read_text()))
        with helm.Chart.load(chart_dir) as chart:
            manifests = chart.render(overrides or None, name=release, namespace=namespace)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the chart or a values file: {exc}") from exc
    except helm.HelmError as exc:
        raise ConfigurationError(f"chart {chart_dir} does not render: {exc.detail}") from exc
    parts = [
        manifests[name].strip()
        for name in sorted(manifests)
        if name.endswith(_YAML_SUFFIXES) and manifests[name].strip()
    ]
    return "\n---\n".join(parts) + "\n"


def _merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two values documents as Helm merges repeated `-f` files (maps recursively)."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merge_values(current, value)
        else:
            merged[key] = value
    return merged


def split_documents(rendered: str) -> list[dict[str, Any]]:
    """The Kubernetes objects of a YAML stream; empty documents are dropped."""
    docs: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(rendered):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ConfigurationError("the rendering holds a YAML document that is not an object")
        docs.append(doc)
    return docs


def is_test_hook(doc: Mapping[str, Any]) -> bool:
    """Whether an object belongs to `helm test` (annotation helm.sh/hook lists `test`)."""
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    hooks = str(annotations.get(HOOK_ANNOTATION, ""))
    return TEST_HOOK in (hook.strip() for hook in hooks.split(","))


def layout(docs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """File name (relative to k8s/, `/`-separated) -> YAML text, in a deterministic order.

    Objects labelled eventfn.dev/function=<name> go to functions/<name>.yaml, those labelled
    eventfn.dev/cronjob=<name> to cronjobs/<name>.yaml; every other kind gets one file:
    00-namespace.yaml, 10-networkpolicy.yaml, 10-configmap.yaml, 10-secret.yaml, 20-broker.yaml
    or 30-<kind>.yaml. `helm test` hooks are left out.
    """
    files: dict[str, list[Mapping[str, Any]]] = {}
    for doc in docs:
        if not is_test_hook(doc):
            files.setdefault(_file_name(doc), []).append(doc)
    return {name: _dump(files[name]) for name in sorted(files)}


def _file_name(doc: Mapping[str, Any]) -> str:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    if function := labels.get(FUNCTION_LABEL):
        return f"{FUNCTIONS_SUBDIR}/{function}.yaml"
    if cronjob := labels.get(CRONJOB_LABEL):
        return f"{CRONJOBS_SUBDIR}/{cronjob}.yaml"
    kind = str(doc.get("kind", "unknown"))
    return _KIND_FILES.get(kind, f"{_OTHER_KIND_PREFIX}{kind.lower()}.yaml")


def _sort_key(doc: Mapping[str, Any]) -> tuple[int, str, str]:
    kind = str(doc.get("kind", ""))
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, kind, str((doc.get("metadata") or {}).get("name", ""))


def _dump(docs: list[Mapping[str, Any]]) -> str:
    ordered = [dict(doc) for doc in sorted(docs, key=_sort_key)]
    body = yaml.safe_dump_all(
        ordered, explicit_start=True, sort_keys=False, default_flow_style=False, width=4096
    )
    return HEADER + body


def expected_k8s(project_root: Path) -> dict[str, str]:
    """What k8s/ must contain: the layout of the chart rendered with its default values."""
    return layout(split_documents(render_chart(chart_path(project_root))))


def _existing_yaml(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix in _YAML_SUFFIXES
    }


def write_k8s(project_root: Path) -> list[Path]:
    """Bring k8s/ in line with the chart; returns the files written or deleted.

    Files whose text already matches are left untouched, stale YAML files (and directories
    left empty) are removed, README.md and other non-YAML files stay.
    """
    target = k8s_path(project_root)
    expected = expected_k8s(project_root)
    existing = _existing_yaml(target)
    changed: list[Path] = []
    for name, text in expected.items():
        path = target / name
        if name in existing and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    for name, path in existing.items():
        if name not in expected:
            path.unlink()
            changed.append(path)
    for directory in sorted(target.rglob("*"), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return changed


def diff_k8s(project_root: Path) -> list[str]:
    """Names (relative to k8s/) of files that differ, are missing or are extra; [] when in sync."""
    expected = expected_k8s(project_root)
    existing = _existing_yaml(k8s_path(project_root))
    names = sorted(set(expected) | set(existing))
    return [
        name
        for name in names
        if name not in existing
        or name not in expected
        or existing[name].read_text(encoding="utf-8") != expected[name]
    ]
