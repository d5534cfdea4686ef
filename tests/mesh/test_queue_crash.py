"""Crash safety: kill -9 the broker process mid-stream, restart it on the same SQLite file.

Phase 1: the subscriber holds every delivery open, so at the kill the broker has deliveries in
flight and a backlog in its queue, and none has completed. Phase 2: a new broker process on
the same database must redeliver every event that got a 202 (at-least-once); the events that
were never acknowledged are published again. Duplicates are allowed and reported.
"""

from __future__ import annotations

import itertools
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import mesh_testing as mt
import pytest
import urllib3

HERE = Path(__file__).parent
EVENTS = 1000
KILL_AFTER = 300
BOUND = 30.0


class BrokerProcess:
    """`broker_process.py` in a subprocess; its stderr goes to a log file."""

    def __init__(self, db: Path, subscriber: str, log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "broker_process.py"),
                str(mt.DATA / "crash"),
                str(db),
                subscriber,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            assert selector.select(BOUND), "the broker process did not start in time"
        port = self.proc.stdout.readline().decode().strip()
        assert port.isdigit(), f"broker process failed: see {log}"
        self.url = f"http://127.0.0.1:{port}/crash/default"

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(BOUND)
        self._log.close()


def publish_all(url: str, ids: Iterable[str], acked: set[str], on_ack: Callable[[], None]) -> None:
    """POST each id with 4 threads until the ids run out or the broker goes away."""
    pool = urllib3.PoolManager(maxsize=4)
    pending = iter(ids)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                event_id = next(pending, None)
            if event_id is None:
                return
            headers = mt.binary_headers("crash.event.v1", event_id)
            try:
                answer = pool.request(
                    "POST", url, body=b'{"n": 1}', headers=headers, retries=False, timeout=BOUND
                )
            except urllib3.exceptions.HTTPError:
                return  # the broker was killed
            if answer.status == 202:
                with lock:
                    acked.add(event_id)
                on_ack()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
        assert not thread.is_alive()


@pytest.fixture
def subscriber() -> Iterator[Any]:
    phase = [1]
    sub = mt.Subscriber(now=lambda: phase[0])
    sub.phase = phase

    def hold_until_the_kill(request: object, call: int) -> tuple[int, dict[str, str], bytes]:
        if phase[0] == 1:
            sub.release.wait(BOUND)
        return 204, {}, b""

    sub.script = hold_until_the_kill
    yield sub
    sub.close()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, subscriber: Any) -> None:
    sub = subscriber
    ids = [f"ev-{n:04d}" for n in range(EVENTS)]
    db, log = tmp_path / "broker.db", tmp_path / "broker.log"
    acked: set[str] = set()
    enough = threading.Event()

    # phase 1: publish until ~300 are acknowledged, then kill -9 mid-stream
    first = BrokerProcess(db, sub.url, log)

    def count_ack() -> None:
        if len(acked) >= KILL_AFTER:
            enough.set()

    publisher = threading.Thread(target=publish_all, args=(first.url, ids, acked, count_ack))
    publisher.start()
    assert enough.wait(BOUND), "the broker never acknowledged 300 events"
    first.kill()
    publisher.join(BOUND)
    acked_before_kill = set(acked)
    assert KILL_AFTER <= len(acked_before_kill) < EVENTS
    assert sub.requests, "no delivery was in flight at the kill"
    assert all(request.at == 1 for request in sub.requests)

    # phase 2: same database, publish whatever was never acknowledged
    sub.phase[0] = 2
    sub.release.set()
    second = BrokerProcess(db, sub.url, log)
    try:
        rest = [event_id for event_id in ids if event_id not in acked_before_kill]
        publish_all(second.url, rest, acked, lambda: None)
        assert acked == set(ids), "the restarted broker refused events"

        def delivered() -> Counter[str]:
            phase_two = (r for r in sub.requests if r.at == 2)
            return Counter(r.ce["id"] for r in phase_two)

        def everything_delivered() -> bool:
            return set(delivered()) >= acked

        assert sub.wait_until(everything_delivered, BOUND), (
            f"lost: {sorted(acked - set(delivered()))[:10]}"
        )
    finally:
        second.kill()

    counts = delivered()
    # Nothing completed before the kill, so every event acknowledged then was redelivered.
    assert acked_before_kill <= set(counts)
    duplicates = sum(counts.values()) - len(counts)
    held = Counter(r.ce["id"] for r in sub.requests if r.at == 1)
    print(
        f"\ncrash test: {len(acked_before_kill)} acknowledged before kill -9, {len(held)} in "
        f"flight at the kill, {EVENTS} delivered after restart, {duplicates} duplicates"
    )
    assert set(counts) == set(ids)
    assert not set(itertools.chain(counts)) - set(ids)
