"""The ticker of the local mesh: it sends PingSource events at their scheduled times."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mesh_testing as mt
import pytest
from ping_testing import BROKER, FULL, SUBSCRIBER, manifest, source, write

from eventfn._errors import DependencyUnavailable
from eventfn.mesh._broker import Broker
from eventfn.mesh._ping import PING_TYPE, PingSourceSpec, PingTicker, parse_ping_source
from eventfn.mesh._topology import load_topology


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
