"""`eventfn backup cluster` / `restore cluster`: the topology as clean YAML, one file a resource.

From a cluster (the `kubernetes` client's dynamic API, kube config or in-cluster): the
namespace's Knative Services, Brokers, Triggers, CronJobs, ConfigMaps and Secrets. Locally
(`--local`, or no kube config): every manifest of the rendered `k8s/` directory. Either way
status and server-managed metadata are stripped, and a Secret keeps its name, type and labels,
never its values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import yaml

from eventfn._backup_repo import (
    FORMAT_VERSION,
    BackupRepo,
    SnapshotCorrupt,
    TargetNotEmpty,
    iso,
    require,
    sha256_bytes,
)
from eventfn._errors import ConfigurationError

Clock = Callable[[], datetime]
EXPORTED_KINDS: Final = (
    ("serving.knative.dev/v1", "Service"),
    ("eventing.knative.dev/v1", "Broker"),
    ("eventing.knative.dev/v1", "Trigger"),
    ("sources.knative.dev/v1", "PingSource"),
    ("batch/v1", "CronJob"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
)
_SERVER_FIELDS: Final = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
)
LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"


class ClusterReader(Protocol):
    """Lists the resources of one kind in a namespace as plain dicts."""

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]: ...


def clean(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource without status, server-managed fields or Secret values."""
    doc = {k: v for k, v in resource.items() if k != "status"}
    meta = {k: v for k, v in dict(doc.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    annotations = {
        k: v for k, v in dict(meta.get("annotations") or {}).items() if k != LAST_APPLIED
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    doc["metadata"] = meta
    if doc.get("kind") == "Secret":
        doc = {k: v for k, v in doc.items() if k not in ("data", "stringData")}
    return doc


def local_resources(directory: Path) -> list[dict[str, Any]]:
    """Every document of the YAML files under `directory` (the rendered topology)."""
    if not directory.is_dir():
        raise ConfigurationError(f"{directory}: no rendered manifests (run `eventfn render`)")
    found = []
    for path in sorted(directory.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind"):
                found.append(doc)
    return found


def cluster_resources(reader: ClusterReader, namespace: str) -> list[dict[str, Any]]:
    """The exported kinds of `namespace`, read through `reader`."""
    found = []
    for api_version, kind in EXPORTED_KINDS:
        for item in reader.list(api_version, kind, namespace):
            found.append({"apiVersion": api_version, "kind": kind, **item})
    return found


def resource_path(doc: Mapping[str, Any]) -> str:
    """`<Kind>/<namespace>/<name>.yaml`, the file of one resource."""
    meta = doc.get("metadata") or {}
    namespace = str(meta.get("namespace") or "_cluster")
    return f"{doc['kind']}/{namespace}/{meta.get('name', 'unnamed')}.yaml"


def dump(doc: Mapping[str, Any]) -> bytes:
    """Deterministic YAML of one resource."""
    return yaml.safe_dump(dict(doc), sort_keys=True, default_flow_style=False).encode()


def backup_cluster(
    resources: Iterable[Mapping[str, Any]], source: str, repo: BackupRepo, snap: str, clock: Clock
) -> dict[str, Any]:
    """Upload each cleaned resource and the manifest under `cluster/<snap>/`."""
    started, t0 = clock(), time.monotonic()
    files: list[dict[str, Any]] = []
    for doc in sorted((clean(r) for r in resources), key=resource_path):
        data, path = dump(doc), resource_path(doc)
        repo.put(f"cluster/{snap}/{path}", data)
        files.append({"path": path, "sha256": sha256_bytes(data), "bytes": len(data)})
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "cluster",
        "snapshot_id": snap,
        "source": source,
        "started_at": iso(started),
        "ended_at": iso(clock()),
        "duration_seconds": round(time.monotonic() - t0, 3),
        "files": files,
        "resources": len(files),
        "bytes": sum(int(f["bytes"]) for f in files),
    }
    repo.write_manifest("cluster", snap, manifest)
    return manifest


def _checked(repo: BackupRepo, snap: str, entry: Mapping[str, Any]) -> bytes:
    data = repo.get(f"cluster/{snap}/{entry['path']}")
    require(sha256_bytes(data) == entry["sha256"], f"{entry['path']}: sha256 mismatch")
    return data


def verify_cluster(repo: BackupRepo, manifest: Mapping[str, Any]) -> None:
    """Every resource file is present and matches its sha256."""
    for entry in manifest["files"]:
        _checked(repo, manifest["snapshot_id"], entry)


def restore_cluster(
    repo: BackupRepo, snap: str, target: Path, *, force: bool = False
) -> dict[str, Any]:
    """Write the snapshot's YAML files into `target` and check them against the manifest."""
    manifest = repo.manifest("cluster", snap)
    if target.exists() and any(target.iterdir()) and not force:
        raise TargetNotEmpty(f"{target} is not empty: pass --force to overwrite")
    for entry in manifest["files"]:
        data = _checked(repo, snap, entry)
        path = target / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return compare_cluster(manifest, target)


def compare_cluster(manifest: Mapping[str, Any], target: Path) -> dict[str, Any]:
    """The files under `target` hash as the manifest says; raises otherwise."""
    for entry in manifest["files"]:
        path = target / entry["path"]
        if not path.is_file() or sha256_bytes(path.read_bytes()) != entry["sha256"]:
            raise SnapshotCorrupt(f"restored {entry['path']} differs from the snapshot")
    return {"resources": len(manifest["files"]), "bytes": manifest["bytes"]}


class KubernetesReader:
    """A `ClusterReader` over the `kubernetes` client's dynamic API."""

    def __init__(self, dynamic_client: Any) -> None:
        self._client = dynamic_client

    @classmethod
    def from_environment(cls) -> KubernetesReader:
        """In-cluster config, else the kube config; ConfigurationError without the client."""
        try:
            from kubernetes import config, dynamic  # type: ignore[import-not-found]
            from kubernetes.client import ApiClient  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigurationError(
                "cluster backups need the `kubernetes` package (or use --local)"
            ) from None
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return cls(dynamic.DynamicClient(ApiClient()))

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        """Items of one kind in `namespace`."""
        resource = self._client.resources.get(api_version=api_version, kind=kind)
        listed: dict[str, Any] = resource.get(namespace=namespace).to_dict()
        return [dict(item) for item in listed.get("items") or []]


def has_kube_config(env: Mapping[str, str]) -> bool:
    """Whether a cluster is reachable by configuration (in-cluster or a kube config file)."""
    if env.get("KUBERNETES_SERVICE_HOST"):
        return True
    kubeconfig = env.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return any(Path(p).is_file() for p in kubeconfig.split(":") if p)
