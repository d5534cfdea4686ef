"""Shared by the PingSource tests: manifests of a PingSource, its Broker and a subscriber.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from eventfn.mesh._ping import PingSourceSpec, parse_ping_source

FULL = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: heartbeat, namespace: shop}
spec:
  schedule: "*/5 * * * *"
  timezone: Europe/Berlin
  contentType: application/json
  data: '{"message": "ping"}'
  ceOverrides:
    extensions: {Tenant: acme, region: eu-1}
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default, namespace: ops}
"""
MINIMAL = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick}
spec:
  schedule: "@hourly"
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}
"""
BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: shop}
"""
SUBSCRIBER = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: pinged, namespace: shop}
spec:
  template:
    spec:
      containers: [{image: pinged}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: pings, namespace: shop}
spec:
  broker: default
  filter:
    attributes: {type: dev.knative.sources.ping}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: pinged}
  delivery: {retry: 0}
"""


def manifest(text: str = FULL, **spec: Any) -> dict[str, Any]:
    """The PingSource in `text` with `spec` keys replaced (None removes one)."""
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(text))
    for key, value in spec.items():
        if value is None:
            doc["spec"].pop(key, None)
        else:
            doc["spec"][key] = value
    return doc


def source(text: str = FULL, **spec: Any) -> PingSourceSpec:
    return parse_ping_source(manifest(text, **spec))


def write(directory: Path, *documents: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "mesh.yaml").write_text("---".join(documents))
    return directory
