"""Overhead of the activator of `eventfn dev` against direct calls to the same function process.

One real `workflow-tasks` process (started by the supervisor, as `eventfn dev` does: 4 threads
like the chart's default containerConcurrency, SQLite idempotency in a fresh state directory)
answers `eventfn.workflow.task.requested.v1` for state `Validate` (pure: no S3, no broker),
binary mode, a unique `ce-id` per request. Phases:

1. cold start: the Service is at min-scale 0 and has had no request, so the first POST to the
   activator's address spawns the process; then one warm POST. Repeated `--cold-starts` times,
   scaling to zero in between with the supervisor's own idle reaping (`reap_idle`, its idle
   clock moved forward instead of waiting);
2. warm-up: `--warmup` requests to each address;
3. for 1 and 4 client threads: `--count` requests straight to the function's URL (what
   `Supervisor.resolve` returns; the baseline), then the same through the activator's address.
   Every client is a keep-alive urllib3 pool. Bounded by `--max-seconds` per phase.

The clients run in a process of their own (as the workflow function does), the supervisor and
the activator in the bench's process (as in `eventfn dev`), so they do not share a GIL.

The report gives req/s, p50 and p99 per phase, activator / direct throughput, the p50 the
activator adds, and cold-start latency against a warm request. Loopback only.

    .venv/bin/python bench/activator.py [--count 2000] [--max-seconds 30] [--warmup 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import urllib3

from eventfn._codec import encode_binary
from eventfn._event import Event
from eventfn.mesh._activator import Activator
from eventfn.mesh._supervisor import LaunchSpec, ServiceUnavailable, Supervisor
from eventfn.mesh._topology import ServiceSpec, Topology

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "workflow-tasks"
TASK_TYPE = "eventfn.workflow.task.requested.v1"
STATE = "Validate"
THREADS = 4  # the chart's default containerConcurrency, which is also the server's threads
IDLE_SECONDS = 60.0
TIMEOUT_SECONDS = 60

Request = tuple[dict[str, str], bytes]
T = TypeVar("T")


class SkippingClock:
    """The supervisor's idle clock: real time plus the idle periods the bench skips."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped


@dataclass(frozen=True)
class Run:
    """One bounded load phase against one address."""

    name: str
    clients: int
    seconds: float
    latencies_ms: list[float]
    failures: int
    load: str

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass(frozen=True)
class ColdRun:
    """The first request to a Service at zero, and a warm one right after."""

    first_ms: float
    spawn_to_ready_ms: float
    warm_ms: float


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def task_request(tag: str, n: int) -> Request:
    """What the workflow engine sends for state Validate of an order."""
    order = {"order_id": f"order-{n}", "items": [{"sku": "a-1", "quantity": 2, "price": 4.5}]}
    event = Event(
        type=TASK_TYPE, source="/bench/activator", id=f"{tag}-{n}", data=order,
        subject=STATE, datacontenttype="application/json",
    )  # fmt: skip
    return encode_binary(event)


def launch_spec(state_dir: Path) -> LaunchSpec:
    env = {
        "EVENTFN_FUNCTIONS_DIR": str(ROOT / "functions"),
        "EVENTFN_SCHEMAS_DIR": str(ROOT / "schemas"),
        "EVENTFN_STATE_DIR": str(state_dir),
        "EVENTFN_THREADS": str(THREADS),
        "EVENTFN_TRACING": "off",
        "EVENTFN_LOG_LEVEL": "WARNING",
    }
    return LaunchSpec(service=SERVICE, function=SERVICE, env=env, min_scale=0)


def topology() -> Topology:
    service = ServiceSpec(
        name=SERVICE, namespace="eventfn", env={}, secret_env={}, min_scale=0, max_scale=1,
        container_concurrency=THREADS, timeout_seconds=TIMEOUT_SECONDS, function=SERVICE,
    )  # fmt: skip
    return Topology(services={SERVICE: service}, triggers=[], brokers=[])


def post(pool: urllib3.PoolManager, url: str, request: Request) -> float | None:
    """Milliseconds of one POST answered 200, None for any other answer or none at all."""
    headers, body = request
    started = time.perf_counter()
    try:
        answer = pool.request("POST", url + "/", headers=headers, body=body, retries=False)
    except urllib3.exceptions.HTTPError:
        return None
    elapsed = (time.perf_counter() - started) * 1000.0
    return elapsed if answer.status == 200 else None


def load(name: str, url: str, clients: int, count: int, bound: float) -> Run:
    """`count` POSTs from `clients` threads (keep-alive), stopping early after `bound` s."""
    tag = f"{name.replace(' ', '-')}-{clients}-{time.time_ns()}"
    requests = [task_request(tag, n) for n in range(count)]  # the clients' work, not timed
    pool = urllib3.PoolManager(maxsize=clients, retries=False)
    latencies: list[float] = []
    failures: list[int] = []
    next_index = iter(range(count))
    lock = threading.Lock()
    deadline = time.perf_counter() + bound

    def client() -> None:
        while time.perf_counter() < deadline:
            with lock:
                n = next(next_index, None)
            if n is None:
                return
            latency = post(pool, url, requests[n])
            if latency is None:
                failures.append(n)
            else:
                latencies.append(latency)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    pool.clear()
    if not latencies:
        raise RuntimeError(f"{name}: no request answered 200 ({len(failures)} failed)")
    return Run(name, clients, seconds, latencies, len(failures), loadavg())


def timed_pair(url: str, tag: str) -> tuple[float | None, float | None]:
    """Two POSTs on one keep-alive connection: (first ms, second ms), None when not 200."""
    pool = urllib3.PoolManager(maxsize=1, retries=False)
    first = post(pool, url, task_request(tag, 0))
    second = post(pool, url, task_request(tag, 1))
    pool.clear()
    return first, second


def answer_calls(connection: Connection) -> None:
    """The client process: run each (function, args) received, send back (ok, result)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the bench, which ends us
    while True:
        try:
            function, args = connection.recv()
        except EOFError:
            return
        try:
            connection.send((True, function(*args)))
        except Exception as error:  # raised again in the bench's process
            connection.send((False, error))


class ClientProcess:
    """The load generator, in a process of its own (as the workflow function is), so that it
    does not share a GIL with the activator."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=answer_calls, args=(theirs,), daemon=True)
        self._process.start()
        theirs.close()

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in the client process; EOFError if that process died."""
        self._connection.send((function, args))
        ok, result = self._connection.recv()
        if not ok:
            raise result
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        self._connection.close()
        self._process.terminate()
        self._process.join(10)


@contextmanager
def client_process() -> Iterator[ClientProcess]:
    client = ClientProcess()
    try:
        yield client
    finally:
        client.close()


def cold_start(
    supervisor: Supervisor, clock: SkippingClock, client: ClientProcess, url: str, number: int
) -> ColdRun:
    """Scale the Service to zero (unless it never ran), then time a cold and a warm POST."""
    if SERVICE in supervisor.running():
        clock.skipped += IDLE_SECONDS + 1
        if supervisor.reap_idle() != [SERVICE]:
            raise SystemExit("the supervisor did not scale the function to zero")
    first, warm = client.call(timed_pair, url, f"cold-{number}-{time.time_ns()}")
    if first is None or warm is None:
        raise SystemExit(f"cold start {number}: no 200; {log_tail(supervisor)}")
    spawned = supervisor.cold_starts[-1]
    return ColdRun(first, spawned.seconds * 1000.0, warm)


class Resolving:
    """`Supervisor.resolve` for the activator, counting the calls in progress: the activator's
    request threads are daemons, so the bench waits for a cold start to end before it exits."""

    def __init__(self, resolve: Callable[[str], str]) -> None:
        self._resolve = resolve
        self._calls = 0
        self._changed = threading.Condition()

    def __call__(self, service: str) -> str:
        with self._changed:
            self._calls += 1
        try:
            return self._resolve(service)
        finally:
            with self._changed:
                self._calls -= 1
                self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._calls == 0, timeout)


def log_tail(supervisor: Supervisor) -> str:
    log = supervisor.log_path(SERVICE)
    tail = log.read_text()[-2000:] if log.is_file() else "(no log)"
    return f"the function's log ends with:\n{tail}"


@contextmanager
def mesh(root: Path) -> Iterator[tuple[Supervisor, SkippingClock, str]]:
    """The supervisor (idle reaping driven by the bench) and the activator's address."""
    clock = SkippingClock()
    supervisor = Supervisor(
        {SERVICE: launch_spec(root / "state")},
        log_dir=root / "logs",
        idle_seconds=IDLE_SECONDS,
        stop_timeout=10.0,
        clock=clock,
    )
    resolving = Resolving(supervisor.resolve)
    activator = Activator(topology(), resolving)
    supervisor.start(reap=False)
    try:
        urls = activator.start()
        yield supervisor, clock, urls[SERVICE]
    except ServiceUnavailable:
        raise SystemExit(f"{SERVICE} did not start; {log_tail(supervisor)}") from None
    finally:
        supervisor.stop()  # a cold start still waiting for readiness gives up and ends its process
        resolving.wait_idle(supervisor.stop_timeout)
        supervisor.kill_all()  # a process that became ready while stop() ran
        activator.stop()


def print_runs(runs: list[Run]) -> None:
    print(
        f"\n{'phase':<12}{'clients':>8}{'requests':>10}{'failed':>8}{'req/s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}  load (1/5/15 min)"
    )
    for run in runs:
        print(
            f"{run.name:<12}{run.clients:>8}{len(run.latencies_ms):>10}{run.failures:>8}"
            f"{run.rate:>9.0f}{run.p50:>9.2f}{run.p99:>9.2f}  {run.load}"
        )
    print("\nactivator against direct (same process, same requests):")
    for direct, through in zip(runs[::2], runs[1::2], strict=True):
        print(
            f"  {direct.clients} client(s): throughput ratio {through.rate / direct.rate:.2f}, "
            f"p50 {through.p50 - direct.p50:+.2f} ms, p99 {through.p99 - direct.p99:+.2f} ms"
        )


def print_cold(colds: list[ColdRun]) -> None:
    first = statistics.median(c.first_ms for c in colds)
    spawned = statistics.median(c.spawn_to_ready_ms for c in colds)
    warm = statistics.median(c.warm_ms for c in colds)
    print(f"\ncold start through the activator (median of {len(colds)}):")
    print(f"  first request   {first:8.1f} ms  (supervisor spawn -> ready: {spawned:.1f} ms)")
    print(f"  warm request    {warm:8.2f} ms  (the next request, same connection)")
    print(f"  cold / warm     {first / warm:8.0f} x")


def measure(args: argparse.Namespace, root: Path) -> tuple[list[ColdRun], list[Run]]:
    """Cold starts, warm-up, then direct and activator phases for 1 and THREADS clients."""
    with (
        client_process() as client,
        mesh(root) as (supervisor, clock, activator_url),
    ):
        colds = [
            cold_start(supervisor, clock, client, activator_url, n) for n in range(args.cold_starts)
        ]
        direct_url = supervisor.resolve(SERVICE)
        for name, url in (("direct", direct_url), ("activator", activator_url)):
            client.call(load, f"warm-up {name}", url, THREADS, args.warmup, args.max_seconds)
        runs = []
        for clients in (1, THREADS):
            for name, url in (("direct", direct_url), ("activator", activator_url)):
                runs.append(client.call(load, name, url, clients, args.count, args.max_seconds))
        return colds, runs


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `mesh`, which stops every process


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="requests per phase (2000)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="bound per phase (30)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up requests (100)")
    parser.add_argument("--cold-starts", type=int, default=3, help="cold starts (3)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    print(f"bench: {os.cpu_count()} cpus, load {loadavg()} at start", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="eventfn-bench-activator-") as tmp:
            colds, runs = measure(args, Path(tmp))
    except KeyboardInterrupt:
        raise SystemExit("interrupted; every process the bench started is stopped") from None
    print_runs(runs)
    if colds:
        print_cold(colds)
    print(f"\nload {loadavg()} at end")


if __name__ == "__main__":
    main()
