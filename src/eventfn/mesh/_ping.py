"""PingSources in `eventfn dev`: the same `dev.knative.sources.ping` events, on the same schedule.

A `sources.knative.dev/v1` PingSource sends one CloudEvent per firing of `spec.schedule` (see
`_cron`) to its sink: type `dev.knative.sources.ping`, source
`/apis/v1/namespaces/<ns>/pingsources/<name>`, a fresh id, `time` = the scheduled time, the
`data` (or decoded `dataBase64`) with `contentType`, and `ceOverrides.extensions` as extensions
(knative/eventing pkg/adapter/mtping). Locally the sink must be a Broker of the topology; the
ticker publishes into it as its ingress would, so Triggers, retries and dead letters apply.
A firing missed while the mesh was down is not sent later, as in the cluster.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventfn._errors import ConfigurationError, EventfnError
from eventfn._logging import get_logger
from eventfn.mesh._cron import CronSchedule, parse_schedule
from eventfn.mesh._topology import EVENTING_API, as_mapping, read_metadata

PING_TYPE = "dev.knative.sources.ping"
_log = get_logger("mesh.ping")

Publish = Callable[[Mapping[str, str], bytes, str, str], object]  # headers, body, ns, broker


@dataclass(frozen=True)
class PingSourceSpec:
    """One PingSource: its schedule, payload and the Broker it sends to."""

    name: str
    namespace: str
    schedule: CronSchedule
    timezone: str
    content_type: str | None
    data: bytes
    extensions: dict[str, str] = field(default_factory=dict)
    broker_namespace: str = ""
    broker: str = ""

    @property
    def source(self) -> str:
        """The CloudEvents `source` of its events."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"

    def next_after(self, moment: datetime) -> datetime:
        """Its next firing after `moment`."""
        return self.schedule.next_after(moment, ZoneInfo(self.timezone))

    def event(self, fired_at: datetime) -> tuple[dict[str, str], bytes]:
        """The binary-mode headers and body of the event of one firing."""
        headers = {
            "ce-specversion": "1.0",
            "ce-type": PING_TYPE,
            "ce-source": self.source,
            "ce-id": str(uuid.uuid4()),
            "ce-time": fired_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            **{f"ce-{name}": value for name, value in self.extensions.items()},
        }
        if self.content_type:
            headers["content-type"] = self.content_type
        return headers, self.data


def parse_ping_source(doc: dict[str, Any]) -> PingSourceSpec:
    """A PingSource manifest; ConfigurationError for what a cluster's webhook would refuse, or
    a sink `eventfn dev` cannot reach."""
    name, namespace, _ = read_metadata(doc)
    where = f"PingSource {namespace}/{name}"
    spec = as_mapping(doc.get("spec"), f"{where} spec")
    schedule = spec.get("schedule")
    if not isinstance(schedule, str) or not schedule.strip():
        raise ConfigurationError(f"{where}: spec.schedule is required")
    timezone = str(spec.get("timezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{where}: unknown timezone {timezone!r}") from None
    if spec.get("data") is not None and spec.get("dataBase64") is not None:
        raise ConfigurationError(f"{where}: set data or dataBase64, not both")
    overrides = as_mapping(spec.get("ceOverrides"), f"{where} ceOverrides")
    extensions = as_mapping(overrides.get("extensions"), f"{where} ceOverrides.extensions")
    broker_namespace, broker = _broker_sink(as_mapping(spec.get("sink"), f"{where} sink"), where)
    try:  # a schedule with no firing (Feb 30) would end the ticker's thread later
        parsed = parse_schedule(schedule)
        parsed.next_after(datetime.now(UTC), ZoneInfo(timezone))
    except ConfigurationError as error:
        raise ConfigurationError(f"{where}: {error}") from None
    return PingSourceSpec(
        name=name,
        namespace=namespace,
        schedule=parsed,
        timezone=timezone,
        content_type=spec.get("contentType"),
        data=_data(spec, where),
        extensions={str(k).lower(): str(v) for k, v in extensions.items()},
        broker_namespace=broker_namespace or namespace,
        broker=broker,
    )


def _data(spec: dict[str, Any], where: str) -> bytes:
    for key in ("data", "dataBase64"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise ConfigurationError(f"{where}: spec.{key} must be a string")
    if spec.get("dataBase64") is not None:
        try:
            return base64.b64decode(str(spec["dataBase64"]), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"{where}: dataBase64 is not base64") from None
    return str(spec.get("data") or "").encode()


def _broker_sink(sink: dict[str, Any], where: str) -> tuple[str, str]:
    ref = as_mapping(sink.get("ref"), f"{where} sink.ref")
    if ref.get("kind") != "Broker" or ref.get("apiVersion") != EVENTING_API or not ref.get("name"):
        raise ConfigurationError(
            f"{where}: eventfn dev sends PingSource events to a Broker only "
            f"(sink.ref apiVersion {EVENTING_API}, kind Broker, name)"
        )
    return str(ref.get("namespace") or ""), str(ref["name"])


class PingTicker:
    """Fires every PingSource on its schedule from one daemon thread until `stop`."""

    def __init__(
        self,
        sources: list[PingSourceSpec],
        publish: Publish,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sources = sources
        self._publish = publish
        self._clock = clock
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ping-sources", daemon=True)

    def start(self) -> None:
        """Start the thread (nothing to do without PingSources)."""
        if self._sources:
            self._thread.start()

    def stop(self) -> None:
        """End the thread; a firing in progress finishes first."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        now = self._clock()
        due = [source.next_after(now) for source in self._sources]  # same name, other namespace
        while not self._stopped.is_set():
            wait = (min(due) - self._clock()).total_seconds()
            if wait > 0 and self._stopped.wait(min(wait, 1.0)):
                return
            now = self._clock()
            for index, source in enumerate(self._sources):
                if due[index] <= now:
                    self.fire(source, due[index])
                    due[index] = source.next_after(now)

    def fire(self, source: PingSourceSpec, at: datetime) -> None:
        """Publish the event of one firing; a refusal is logged (the next firing comes anyway)."""
        headers, body = source.event(at)
        try:
            self._publish(headers, body, source.broker_namespace, source.broker)
        except (EventfnError, OSError, sqlite3.Error) as error:
            _log.warning("PingSource %s: the broker refused its event: %s", source.name, error)
