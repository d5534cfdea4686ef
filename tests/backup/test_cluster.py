"""`backup cluster` / `restore cluster`: the rendered chart (or a namespace) as clean YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eventfn._backup_cluster import (
    EXPORTED_KINDS,
    LAST_APPLIED,
    KubernetesReader,
    backup_cluster,
    clean,
    cluster_resources,
    local_resources,
    restore_cluster,
    verify_cluster,
)
from eventfn._backup_repo import BackupRepo, SnapshotCorrupt, TargetNotEmpty

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _identity(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return (doc["kind"], str(meta.get("namespace", "")), meta["name"])


def _loaded(directory: Path) -> dict[tuple[str, str, str], Any]:
    return {_identity(d): d for d in local_resources(directory)}


def test_the_rendered_chart_round_trips_to_the_same_resources(
    repo: BackupRepo, clock: Any, tmp_path: Path
) -> None:
    original = local_resources(K8S)
    assert {"Broker", "Service", "Trigger"} <= {d["kind"] for d in original}
    manifest = backup_cluster(original, "local:k8s", repo, "snap-1", clock)
    assert manifest["resources"] == len(original)
    verify_cluster(repo, manifest)
    restore_cluster(repo, "snap-1", tmp_path / "restored")
    assert _loaded(tmp_path / "restored") == {_identity(d): clean(d) for d in original}


def test_server_fields_status_and_secret_values_are_stripped() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "eventfn",
            "uid": "1234",
            "resourceVersion": "99",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "generation": 3,
            "managedFields": [{"manager": "kubectl"}],
            "labels": {"app": "eventfn"},
            "annotations": {LAST_APPLIED: "{...}", "keep": "me"},
        },
        "type": "Opaque",
        "data": {"password": "c2VjcmV0"},
        "stringData": {"user": "admin"},
        "status": {"phase": "whatever"},
    }
    assert clean(live) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "eventfn",
            "labels": {"app": "eventfn"},
            "annotations": {"keep": "me"},
        },
        "type": "Opaque",
    }


class _FakeListing:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = items

    def to_dict(self) -> dict[str, Any]:
        return {"items": self._items}


class _FakeResource:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.namespaces: list[str] = []

    def get(self, namespace: str) -> _FakeListing:
        self.namespaces.append(namespace)
        return _FakeListing([i for i in self.items if i["metadata"]["namespace"] == namespace])


class _FakeResources:
    def __init__(self, by_kind: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.by_kind = {key: _FakeResource(items) for key, items in by_kind.items()}

    def get(self, api_version: str, kind: str) -> _FakeResource:
        return self.by_kind.setdefault((api_version, kind), _FakeResource([]))


class FakeDynamicClient:
    """The part of kubernetes.dynamic.DynamicClient the reader uses."""

    def __init__(self, by_kind: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.resources = _FakeResources(by_kind)


def _live(name: str, namespace: str = "eventfn", **extra: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, "uid": "u", "resourceVersion": "7"}
    return {"metadata": meta, "status": {"ready": True}, **extra}


def test_cluster_mode_exports_the_kinds_of_the_namespace(
    repo: BackupRepo, clock: Any, tmp_path: Path
) -> None:
    client = FakeDynamicClient(
        {
            ("serving.knative.dev/v1", "Service"): [_live("echo", spec={"template": {}})],
            ("eventing.knative.dev/v1", "Trigger"): [_live("t"), _live("other", "kube-system")],
            ("v1", "Secret"): [_live("creds", data={"k": "dg=="})],
        }
    )
    found = cluster_resources(KubernetesReader(client), "eventfn")
    assert sorted(_identity(d) for d in found) == [
        ("Secret", "eventfn", "creds"),
        ("Service", "eventfn", "echo"),
        ("Trigger", "eventfn", "t"),
    ]
    asked = {k: r.namespaces for k, r in client.resources.by_kind.items()}
    assert len(asked) == len(EXPORTED_KINDS) and all(ns == ["eventfn"] for ns in asked.values())
    backup_cluster(found, "namespace:eventfn", repo, "snap-k", clock)
    restore_cluster(repo, "snap-k", tmp_path / "out")
    secret = yaml.safe_load((tmp_path / "out/Secret/eventfn/creds.yaml").read_text())
    assert "data" not in secret and "status" not in secret
    assert secret["metadata"] == {"name": "creds", "namespace": "eventfn"}


def test_restore_refuses_a_non_empty_directory_and_catches_corruption(
    repo: BackupRepo, clock: Any, tmp_path: Path
) -> None:
    manifest = backup_cluster(local_resources(K8S), "local:k8s", repo, "snap-1", clock)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(TargetNotEmpty):
        restore_cluster(repo, "snap-1", occupied)
    first = manifest["files"][0]["path"]
    repo.put(f"cluster/snap-1/{first}", b"kind: Tampered\n")
    with pytest.raises(SnapshotCorrupt):
        verify_cluster(repo, manifest)
    with pytest.raises(SnapshotCorrupt):
        restore_cluster(repo, "snap-1", tmp_path / "fresh")
