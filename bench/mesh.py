"""Throughput and hop latency of the local broker (`eventfn dev`) against a real function.

A tiny function (one handler replying with a new type) is generated into a temp directory and
served by gunicorn through `eventfn serve` with the settings of plain eventfn in bench/runtime.py
(1 worker, idempotency off, tracing off) and `--threads` threads: 4 by default, the gthread
worker with keep-alive, which is what the chart gives a function with its default
containerConcurrency of 4 (`--threads 1` measures the sync worker, which closes every
connection). Then, for 1, 4 and 16 Triggers matching the same event type:

- throughput: events published in-process as fast as two producer threads can, timed until
  every delivery is done and every reply stored back in the broker (replies match nothing);
- hop latency: events published at a steady rate (half the measured throughput, so queues stay
  short), timed from "event stored by the ingress" to "reply stored by the broker" for each
  delivery, i.e. broker -> trigger -> function -> reply -> broker.

The limit is a direct HTTP POST to the same function, with the broker's HTTP client and as many
client threads as the broker has dispatcher threads; the table reports the broker's
deliveries/s as a share of it.
Bounded: a fixed number of events per scenario and `--max-seconds` per phase.

    .venv/bin/python bench/mesh.py [--events 2000] [--workers 8] [--threads 4] [--max-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3

from eventfn._codec import encode_binary
from eventfn._event import Event
from eventfn.mesh._broker import Broker, Hop
from eventfn.mesh._sender import Sender
from eventfn.mesh._topology import load_topology

EVENTFN = str(Path(sys.executable).with_name("eventfn"))
TYPE = "bench.ping.v1"
HANDLER = """
from eventfn import App, Reply

app = App("benchfn")


@app.on("bench.ping.v1", reply_type="bench.pong.v1", idempotent=False)
def pong(event, ctx):
    return Reply({"n": event.data["n"]})
"""
MANIFESTS = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: bench}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: benchfn, namespace: bench}
spec: {template: {spec: {containerConcurrency: 8, containers: [{image: benchfn}]}}}
"""
TRIGGER = """---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: t{index}, namespace: bench}}
spec:
  broker: default
  filters: [{{exact: {{type: {type}}}}}]
  subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: benchfn}}}}
  delivery: {{retry: 3, backoffPolicy: exponential, backoffDelay: PT0.1S, timeout: PT10S}}
"""


@dataclass
class Result:
    name: str
    events: int
    deliveries_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def ping(n: int) -> tuple[dict[str, str], bytes]:
    return encode_binary(Event.new(TYPE, "/bench", {"n": n}))


@contextmanager
def function_server(root: Path, threads: int) -> Iterator[str]:
    """gunicorn serving the generated function; yields its base URL."""
    (root / "functions" / "benchfn").mkdir(parents=True)
    (root / "functions" / "benchfn" / "handler.py").write_text(HANDLER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PORT": str(port),
        "EVENTFN_FUNCTIONS_DIR": str(root / "functions"),
        "EVENTFN_STATE_DIR": str(root / "state"),
        "EVENTFN_SCHEMAS_DIR": str(root / "no-schemas"),
        "EVENTFN_WORKERS": "1",
        "EVENTFN_THREADS": str(threads),
        "EVENTFN_IDEMPOTENCY": "off",
        "EVENTFN_TRACING": "off",
        "EVENTFN_LOG_LEVEL": "WARNING",
        "K_SINK": "http://127.0.0.1:9/unused",
    }
    log = (root / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [EVENTFN, "serve", "benchfn", "--bind", f"127.0.0.1:{port}"], env=env, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = urllib3.request("GET", url + "/health/readiness", retries=False, timeout=1)
                if answer.status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"function server did not start; see {root / 'gunicorn.log'}")
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def run_threads(count: int, target: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def paced(count: int, rate: float, send: Callable[[int], None], bound: float) -> None:
    """Call send(0..count-1) at `rate` per second from one thread, within `bound` seconds."""
    start = time.perf_counter()
    for n in range(count):
        due = start + n / rate
        if due - start > bound:
            return
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        send(n)


def direct(url: str, events: int, concurrency: int, bound: float) -> tuple[float, list[float]]:
    """The limit: requests/s of direct POSTs, and their latencies at half that rate.

    The client is the broker's own (`Sender`), so the ratio shows what the broker adds on top
    of the HTTP call it has to make anyway (urllib3 costs the client about 0.45 ms of CPU a
    request, `Sender` 0.1 ms: with urllib3 the client, not the function, would set the limit).
    """
    sender = Sender()
    counter = iter(range(events))
    lock = threading.Lock()
    latencies: list[float] = []
    encoded = [ping(n) for n in range(events)]

    def post(n: int) -> None:
        headers, body = encoded[n]
        started = time.perf_counter()
        answer = sender.post(url + "/", headers, body, 10.0)
        assert answer.status == 200, answer
        latencies.append((time.perf_counter() - started) * 1000.0)

    def worker() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            post(n)

    started = time.perf_counter()
    run_threads(concurrency, worker)
    rate = events / (time.perf_counter() - started)
    latencies.clear()
    paced(min(events, int(rate * 5)), rate / 2, post, bound)
    sender.close()
    return rate, latencies


class Recorder:
    """on_hop: per delivery, time from the ingress storing the event to its reply stored."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.latencies: list[float] = []
        self.delivered = 0
        self.lock = threading.Lock()

    def __call__(self, hop: Hop) -> None:
        now = time.perf_counter()
        with self.lock:
            if hop.outcome == "accepted":
                self.accepted[hop.event_id] = now
            elif hop.outcome == "delivered":
                self.delivered += 1
                start = self.accepted.get(hop.event_id)
                if start is not None:
                    self.latencies.append((now - start) * 1000.0)


def through_broker(
    root: Path, url: str, triggers: int, events: int, workers: int, bound: float
) -> Result:
    manifests = root / f"k{triggers}"
    manifests.mkdir()
    text = MANIFESTS + "".join(TRIGGER.format(index=i, type=TYPE) for i in range(triggers))
    (manifests / "mesh.yaml").write_text(text)
    recorder = Recorder()
    broker = Broker(
        load_topology(manifests),
        manifests / "broker.db",
        lambda name: url,
        on_hop=recorder,
        workers=workers,
    )
    broker.start()
    try:
        encoded = iter([ping(n) for n in range(events)])  # clients' work, not the broker's
        lock = threading.Lock()

        def producer() -> None:
            while True:
                with lock:
                    event = next(encoded, None)
                if event is None:
                    return
                broker.publish(event[0], event[1], "bench", "default")

        started = time.perf_counter()
        run_threads(2, producer)
        if not broker.wait_idle(bound):
            raise SystemExit(f"{triggers} trigger(s): deliveries did not finish in {bound} s")
        elapsed = time.perf_counter() - started
        assert recorder.delivered == events * triggers, recorder.delivered
        assert broker.stats["replies"] == events * triggers
        rate = events / elapsed
        recorder.latencies.clear()

        steady = [ping(n) for n in range(min(events, int(rate * 5)))]

        def publish(n: int) -> None:
            broker.publish(steady[n][0], steady[n][1], "bench", "default")

        paced(len(steady), rate / 2, publish, bound)
        broker.wait_idle(bound)
        hops = recorder.latencies
        return Result(
            f"broker, {triggers} trigger(s)",
            events,
            rate * triggers,
            rate,
            statistics.median(hops),
            percentile(hops, 0.99),
        )
    finally:
        broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events for 1 trigger")
    parser.add_argument(
        "--workers", type=int, default=8, help="broker dispatcher threads (eventfn dev: 8)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="function threads (1: sync worker, >1: gthread)"
    )
    parser.add_argument("--max-seconds", type=float, default=60.0, help="bound per phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, function_server(Path(tmp), args.threads) as url:
        root = Path(tmp)
        rate, latencies = direct(url, args.events, args.workers, args.max_seconds)
        limit = Result(
            "direct POST (limit)",
            args.events,
            rate,
            rate,
            statistics.median(latencies),
            percentile(latencies, 0.99),
        )
        rows = [limit]
        for triggers in (1, 4, 16):
            events = max(100, args.events * 2 // (triggers + 1))
            rows.append(through_broker(root, url, triggers, events, args.workers, args.max_seconds))
    print(
        f"\n{'scenario':<24}{'events':>8}{'deliv/s':>10}{'events/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'vs limit':>10}"
    )
    for row in rows:
        share = row.deliveries_per_s / limit.deliveries_per_s
        print(
            f"{row.name:<24}{row.events:>8}{row.deliveries_per_s:>10.0f}{row.events_per_s:>10.0f}"
            f"{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{share:>10.2f}"
        )
    print(
        "\nlatency: direct = one POST round trip; broker = ingress stored -> reply stored, "
        "at half the measured throughput"
    )


if __name__ == "__main__":
    main()
