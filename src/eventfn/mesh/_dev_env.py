"""The environment of each function process in `eventfn dev`: the chart's env, made local.

A Service keeps its literal env from the manifests. What a cluster injects is replaced by its
local counterpart: `K_SINK` points at the local broker ingress (same `/<namespace>/<broker>`
path), in-cluster Service URLs (`http://<name>.<namespace>.svc.cluster.local/...`) point at that
Service's local address (`_activator`), `secretKeyRef` values come from the dev secrets map,
and the mesh adds the state
directory, the one SQLite database (already migrated), the embedded S3 endpoint with its
credentials and the folders of functions and schemas.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from eventfn._errors import ConfigurationError
from eventfn._loader import HANDLER_MODULE
from eventfn._settings import (
    DEFAULT_BUCKET,
    ENV_AUTO_MIGRATE,
    ENV_BUCKET,
    ENV_DATABASE_URL,
    ENV_FUNCTION,
    ENV_FUNCTIONS_DIR,
    ENV_S3_ENDPOINT,
    ENV_S3_REGION,
    ENV_SCHEMAS_DIR,
    ENV_SINK,
    ENV_STATE_DIR,
)
from eventfn.mesh._activator import local_env
from eventfn.mesh._supervisor import LaunchSpec
from eventfn.mesh._topology import ServiceSpec, Topology

ENV_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
ENV_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
ENV_K_SERVICE = "K_SERVICE"
ENV_K_CONFIGURATION = "K_CONFIGURATION"
ENV_K_REVISION = "K_REVISION"
STORAGE_FUNCTION = "storage-source"
TOKEN_ENV = "STORAGE_SOURCE_TOKEN"  # noqa: S105 - a variable name


@dataclass
class DevSecrets:
    """Values of `secretKeyRef`s for this run: given ones, else a random token per (secret, key).

    A generated value is stable for the whole run, so the storage-source function and the
    embedded S3 notifier agree on the webhook token without anyone writing it down.
    """

    values: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def value(self, secret: str, key: str) -> str:
        """The value of `key` in Secret `secret`."""
        with self._lock:
            return self.values.setdefault((secret, key), secrets.token_urlsafe(24))

    def env_value(self, service: ServiceSpec, name: str) -> str | None:
        """What `service` sees in env `name` (literal or from a Secret), None when unset."""
        if name in service.secret_env:
            return self.value(*service.secret_env[name])
        return service.env.get(name)


@dataclass(frozen=True)
class S3Access:
    """The embedded S3 endpoint and the credentials every process uses with it."""

    endpoint_url: str
    region: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """`EVENTFN_S3_ENDPOINT_URL`, region and AWS credentials."""
        return {
            ENV_S3_ENDPOINT: self.endpoint_url,
            ENV_S3_REGION: self.region,
            ENV_ACCESS_KEY: self.access_key,
            ENV_SECRET_KEY: self.secret_key,
        }


@dataclass(frozen=True)
class DevEnvironment:
    """What every function process of one `eventfn dev` run shares."""

    ingress_url: str  # http://127.0.0.1:PORT (no path)
    state_dir: Path
    database_url: str
    schemas_dir: Path
    functions_dirs: Sequence[Path]
    s3: S3Access
    secrets: DevSecrets
    service_urls: Mapping[str, str] = field(default_factory=dict)  # Service -> local address


def function_dir(function: str, search: Sequence[Path]) -> Path:
    """The first folder of `search` holding `<function>/handler.py`."""
    for folder in search:
        if (folder / function / f"{HANDLER_MODULE}.py").is_file():
            return folder.resolve()
    where = ", ".join(str(folder) for folder in search) or "no folder"
    raise ConfigurationError(
        f"function {function!r} has no {function}/{HANDLER_MODULE}.py in {where} "
        "(add its folder with --functions-dir)"
    )


def sink_url(service: ServiceSpec, topology: Topology, ingress_url: str) -> str:
    """The local ingress of the Broker the service's `K_SINK` names (default: the first one)."""
    path = urlsplit(service.env.get(ENV_SINK, "")).path.strip("/")
    namespace, _, name = path.partition("/")
    if topology.broker(namespace, name) is None:
        if not topology.brokers:
            raise ConfigurationError("the manifests define no Broker for functions to emit to")
        first = topology.brokers[0]
        namespace, name = first.namespace, first.name
    return f"{ingress_url}/{namespace}/{name}"


def launch_spec(service: ServiceSpec, topology: Topology, dev: DevEnvironment) -> LaunchSpec:
    """The process of one Service: its env from the manifests, made local."""
    env = local_env(service.env, service, topology, dev.service_urls)
    for name in service.secret_env:
        value = dev.secrets.env_value(service, name)
        if value is not None:
            env[name] = value
    env.update(dev.s3.env())
    env.update(
        {
            ENV_FUNCTION: service.function,
            ENV_SINK: sink_url(service, topology, dev.ingress_url),
            ENV_STATE_DIR: str(dev.state_dir),
            ENV_DATABASE_URL: dev.database_url,
            ENV_AUTO_MIGRATE: "false",  # `eventfn dev` migrated the database before starting
            ENV_FUNCTIONS_DIR: str(function_dir(service.function, dev.functions_dirs)),
            ENV_SCHEMAS_DIR: str(dev.schemas_dir),
            ENV_K_SERVICE: service.name,
            ENV_K_CONFIGURATION: service.name,
            ENV_K_REVISION: f"{service.name}-dev",
        }
    )
    return LaunchSpec(service.name, service.function, env, service.min_scale)


def launch_specs(topology: Topology, dev: DevEnvironment) -> dict[str, LaunchSpec]:
    """Every Service of the topology, checked before anything starts."""
    return {name: launch_spec(spec, topology, dev) for name, spec in topology.services.items()}


def storage_service(topology: Topology) -> ServiceSpec | None:
    """The Service running storage-source (the bucket-notification webhook), if any."""
    return next((s for s in topology.services.values() if s.function == STORAGE_FUNCTION), None)


def ensure_token(
    launches: dict[str, LaunchSpec], storage: ServiceSpec, dev_secrets: DevSecrets
) -> str:
    """The webhook token storage-source checks; one is made up when its env has none."""
    token = dev_secrets.env_value(storage, TOKEN_ENV)
    if token:
        return token
    token = dev_secrets.value("eventfn-dev", "storage-webhook-token")
    spec = launches[storage.name]
    launches[storage.name] = LaunchSpec(
        spec.service, spec.function, {**spec.env, TOKEN_ENV: token}, spec.min_scale
    )
    return token


def data_bucket(topology: Topology) -> str:
    """The bucket storage-source watches (its env), else the default bucket."""
    storage = storage_service(topology)
    if storage is not None and storage.env.get(ENV_BUCKET):
        return storage.env[ENV_BUCKET]
    return DEFAULT_BUCKET
