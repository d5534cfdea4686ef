"""PingSources in the local mesh: manifests, the events they send, the ticker that sends them."""

from __future__ import annotations

import base64
import copy
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mesh_testing as mt
import pytest
import yaml

from eventfn._errors import ConfigurationError, DependencyUnavailable
from eventfn.mesh._broker import Broker
from eventfn.mesh._ping import PING_TYPE, PingSourceSpec, PingTicker, parse_ping_source
from eventfn.mesh._topology import load_topology

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


# --- manifests --------------------------------------------------------------------------------


def test_a_full_manifest() -> None:
    ping = source()
    assert (ping.name, ping.namespace) == ("heartbeat", "shop")
    assert ping.schedule.expression == "*/5 * * * *"
    assert ping.timezone == "Europe/Berlin"
    assert ping.content_type == "application/json"
    assert ping.data == b'{"message": "ping"}'
    assert ping.extensions == {"tenant": "acme", "region": "eu-1"}
    assert (ping.broker_namespace, ping.broker) == ("ops", "default")
    assert ping.source == "/apis/v1/namespaces/shop/pingsources/heartbeat"


def test_defaults_of_a_minimal_manifest() -> None:
    ping = source(MINIMAL)
    assert ping.namespace == "default"
    assert ping.timezone == "UTC"
    assert (ping.content_type, ping.data, ping.extensions) == (None, b"", {})
    assert (ping.broker_namespace, ping.broker) == ("default", "default")  # its own namespace


def test_the_schedule_is_read_in_the_timezone() -> None:
    ping = source(schedule="0 9 * * *")  # Europe/Berlin
    fired = ping.next_after(datetime(2024, 7, 1, tzinfo=UTC))
    assert fired.astimezone(UTC) == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)  # CEST = UTC+2


def test_data_base64_is_decoded() -> None:
    raw = b"\x00\xffping"
    ping = source(data=None, dataBase64=base64.b64encode(raw).decode())
    assert ping.data == raw


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dataBase64": "cGluZw=="}, "data or dataBase64, not both"),
        ({"data": None, "dataBase64": "not base64!"}, "dataBase64 is not base64"),
        ({"data": {"message": "ping"}}, "spec.data must be a string"),
        ({"schedule": None}, "spec.schedule is required"),
        ({"schedule": "  "}, "spec.schedule is required"),
        ({"schedule": "61 * * * *"}, "minute '61'"),
        ({"schedule": "0 0 30 2 *"}, "never fires"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone 'Mars/Olympus_Mons'"),
        ({"timezone": "../etc/passwd"}, "unknown timezone"),
        ({"sink": {"uri": "http://example.com/"}}, "to a Broker only"),
        (
            {"sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                              "name": "default"}}},
            "to a Broker only",
        ),
        (
            {"sink": {"ref": {"apiVersion": "eventing.knative.dev/v1beta1", "kind": "Broker",
                              "name": "default"}}},
            "to a Broker only",
        ),
        (
            {"sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker"}}},
            "to a Broker only",
        ),
    ],
)  # fmt: skip
def test_invalid_manifests(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        source(**spec)
    assert message in str(raised.value)
    assert "PingSource shop/heartbeat" in str(raised.value)


def write(directory: Path, *documents: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "mesh.yaml").write_text("---".join(documents))
    return directory


def test_load_topology_reads_ping_sources(tmp_path: Path) -> None:
    other_broker = BROKER.replace("namespace: shop", "namespace: ops")
    topology = load_topology(write(tmp_path / "m", BROKER, other_broker, FULL))
    (ping,) = topology.ping_sources
    assert (ping.name, ping.broker_namespace, ping.broker) == ("heartbeat", "ops", "default")


def test_load_topology_refuses_a_ping_source_without_its_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Broker ops/default, is not defined"):
        load_topology(write(tmp_path / "m", BROKER, FULL))  # the Broker is in shop, not ops


# --- events -----------------------------------------------------------------------------------


def test_the_event_of_a_firing() -> None:
    ping = source()
    fired_at = datetime.fromisoformat("2024-07-01T09:05:00+02:00")
    headers, body = ping.event(fired_at)
    assert headers.pop("ce-id")
    assert headers == {
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.sources.ping",
        "ce-source": "/apis/v1/namespaces/shop/pingsources/heartbeat",
        "ce-time": "2024-07-01T07:05:00Z",
        "ce-tenant": "acme",
        "ce-region": "eu-1",
        "content-type": "application/json",
    }
    assert body == b'{"message": "ping"}'


def test_every_event_has_its_own_id_and_no_content_type_without_one() -> None:
    ping = source(MINIMAL)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    ids = {ping.event(at)[0]["ce-id"] for _ in range(3)}
    assert len(ids) == 3
    headers, body = ping.event(at)
    assert "content-type" not in headers
    assert body == b""


# --- the ticker -------------------------------------------------------------------------------


class ScriptedClock:
    """The ticker's clock: readings given in advance, then the last one forever.

    Readings are doubled where it matters, so the outcome does not depend on how many times
    the ticker reads the clock per round.
    """

    def __init__(self, *readings: str) -> None:
        self._readings = [datetime.fromisoformat(reading) for reading in readings]
        self._read = 0
        self.exhausted = threading.Event()

    def __call__(self) -> datetime:
        reading = self._readings[min(self._read, len(self._readings) - 1)]
        self._read += 1
        if self._read >= len(self._readings):
            self.exhausted.set()
        return reading


@dataclass(frozen=True)
class Published:
    headers: dict[str, str]
    body: bytes
    namespace: str
    broker: str


class Recorder:
    """A publish callable that records every call and refuses the first `refusals`."""

    def __init__(self, refusals: int = 0) -> None:
        self.calls: list[Published] = []
        self._refusals = refusals
        self._changed = threading.Condition()

    def __call__(self, headers: Mapping[str, str], body: bytes, namespace: str, broker: str) -> str:
        with self._changed:
            self.calls.append(Published(dict(headers), body, namespace, broker))
            self._changed.notify_all()
            refused = len(self.calls) <= self._refusals
        if refused:
            raise DependencyUnavailable("the broker is down")
        return headers["ce-id"]

    def wait_for(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.calls) >= count, mt.WAIT)

    def times(self, name: str = "heartbeat") -> list[str]:
        return [c.headers["ce-time"] for c in self.calls if c.headers["ce-source"].endswith(name)]


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger("eventfn.mesh.ping")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def every_minute(**spec: Any) -> PingSourceSpec:
    return source(schedule="* * * * *", timezone="UTC", **spec)


def ticker_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ping-sources"]


def run_until(ticker: PingTicker, clock: ScriptedClock, recorder: Recorder, count: int) -> None:
    ticker.start()
    try:
        assert recorder.wait_for(count)
        assert clock.exhausted.wait(mt.WAIT)
    finally:
        ticker.stop()


def test_the_ticker_fires_at_the_scheduled_times_only() -> None:
    clock = ScriptedClock(
        "2024-01-01T12:00:30+00:00",  # first due: 12:01:00
        "2024-01-01T12:00:59.980+00:00",
        "2024-01-01T12:00:59.990+00:00",
        "2024-01-01T12:01:00+00:00",
        "2024-01-01T12:01:59.990+00:00",
        "2024-01-01T12:02:00.500+00:00",
        "2024-01-01T12:02:30+00:00",  # then held: the next firing (12:03) never comes
    )
    recorder = Recorder()
    ticker = PingTicker([every_minute()], recorder, clock)
    run_until(ticker, clock, recorder, 2)
    assert recorder.times() == ["2024-01-01T12:01:00Z", "2024-01-01T12:02:00Z"]
    assert {(c.namespace, c.broker) for c in recorder.calls} == {("ops", "default")}
    assert all(c.headers["ce-type"] == PING_TYPE for c in recorder.calls)
    assert len({c.headers["ce-id"] for c in recorder.calls}) == 2


def test_firings_missed_while_late_are_not_sent_afterwards() -> None:
    clock = ScriptedClock("2024-01-01T12:00:30+00:00", "2024-01-01T12:05:10+00:00")
    recorder = Recorder()
    ticker = PingTicker([every_minute()], recorder, clock)
    run_until(ticker, clock, recorder, 1)
    assert recorder.times() == ["2024-01-01T12:01:00Z"]  # the one due; 12:02-12:05 are gone


def test_a_refused_event_is_logged_and_the_ticker_goes_on(warnings: Warnings) -> None:
    clock = ScriptedClock(
        "2024-01-01T12:00:30+00:00",
        "2024-01-01T12:01:00+00:00",
        "2024-01-01T12:01:00+00:00",
        "2024-01-01T12:02:00+00:00",
        "2024-01-01T12:02:00+00:00",
    )
    recorder = Recorder(refusals=1)
    ticker = PingTicker([every_minute()], recorder, clock)
    run_until(ticker, clock, recorder, 2)
    assert recorder.times() == ["2024-01-01T12:01:00Z", "2024-01-01T12:02:00Z"]
    (message,) = warnings.messages
    assert "heartbeat" in message
    assert "refused" in message


def test_sources_with_the_same_name_in_two_namespaces_both_fire() -> None:
    minutely = every_minute()
    quarterly = parse_ping_source(
        manifest(FULL.replace("namespace: shop", "namespace: other"), schedule="*/15 * * * *")
    )
    clock = ScriptedClock(
        "2024-01-01T12:10:00+00:00",
        "2024-01-01T12:11:00+00:00",
        "2024-01-01T12:11:00+00:00",
        "2024-01-01T12:15:00+00:00",
        "2024-01-01T12:15:00+00:00",
    )
    recorder = Recorder()
    ticker = PingTicker([minutely, quarterly], recorder, clock)
    run_until(ticker, clock, recorder, 3)
    sources = [(c.headers["ce-source"], c.headers["ce-time"][11:16]) for c in recorder.calls]
    assert sorted(sources) == [
        ("/apis/v1/namespaces/other/pingsources/heartbeat", "12:15"),
        ("/apis/v1/namespaces/shop/pingsources/heartbeat", "12:11"),
        ("/apis/v1/namespaces/shop/pingsources/heartbeat", "12:12"),  # late: 12:13-15 gone
    ]


def test_stop_ends_the_thread() -> None:
    clock = ScriptedClock("2024-01-01T12:00:30+00:00")  # nothing due: the ticker waits
    ticker = PingTicker([every_minute()], Recorder(), clock)
    ticker.start()
    assert clock.exhausted.wait(mt.WAIT)
    assert ticker_threads()
    ticker.stop()
    assert not ticker_threads()


def test_without_ping_sources_no_thread_starts() -> None:
    ticker = PingTicker([], Recorder())
    ticker.start()
    assert not ticker_threads()
    ticker.stop()


def test_a_real_broker_accepts_ping_events_and_delivers_them(tmp_path: Path) -> None:
    heartbeat = FULL.replace("namespace: ops", "namespace: shop")
    topology = load_topology(write(tmp_path / "m", BROKER, SUBSCRIBER, heartbeat))
    subscriber = mt.Subscriber()
    broker = Broker(topology, tmp_path / "broker.db", lambda name: subscriber.url, workers=1)
    clock = ScriptedClock("2024-07-01T07:04:00+00:00", "2024-07-01T07:05:00+00:00")
    ticker = PingTicker(topology.ping_sources, broker.publish, clock)
    broker.start()
    ticker.start()
    try:
        assert subscriber.wait_until(lambda: len(subscriber.requests) >= 1)
    finally:
        ticker.stop()
        broker.close()
        subscriber.close()
    (received,) = subscriber.requests
    assert received.ce["type"] == PING_TYPE
    assert received.ce["source"] == "/apis/v1/namespaces/shop/pingsources/heartbeat"
    assert received.ce["time"] == "2024-07-01T07:05:00Z"  # 09:05 in Berlin, every 5 minutes
    assert (received.ce["tenant"], received.ce["region"]) == ("acme", "eu-1")
    assert received.headers["content-type"] == "application/json"
    assert received.body == b'{"message": "ping"}'
