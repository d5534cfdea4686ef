"""Runtime benchmark: eventfn against functions-framework, func-python and a raw WSGI callable.

Every server gets the same binary-mode CloudEvent (small JSON data, unique ce-id) on loopback and
replies with an event of another type echoing the data. Phases:

1. start every server once; check how each answers data that is not valid JSON;
2. warm up (1 s of load), idle 1 s, read the RSS of each server's process tree;
3. R interleaved rounds: each round loads every server once (D seconds, N connections), in an
   order rotated per round; medians over the rounds are reported;
4. cold starts: K times per server, spawn a fresh process and time the first 2xx of a real event.

Results: a table on stdout and bench/results/runtime-<UTC timestamp>.json. The pass/fail marks
of the targets never change the exit code. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import report
from harness.events import INVALID_JSON_BODY, post_event
from harness.load import WRK, LoadResult, pick_client, run_load
from harness.report import TargetResult
from harness.servers import (
    Server,
    Target,
    spawn,
    stop,
    tree_pss_mib,
    tree_rss_mib,
    wait_first_2xx,
)
from harness.sink import OtlpSink
from harness.targets import eventfn_targets, missing_executable, peer_targets, versions
from harness.workspace import BENCH_DIR, Postgres, postgres_database

START_DEADLINE_S = 60.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections (4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (1)")
    parser.add_argument("--cold-starts", type=int, default=3, help="cold starts per server (3)")
    parser.add_argument(
        "--limit", type=int, default=1_000_000, help="max requests per run (1000000)"
    )
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--targets", default="", help="comma-separated subset of target names")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results")
    return parser


def _say(message: str) -> None:
    print(message, flush=True)


def _rotate(items: list[Any], by: int) -> list[Any]:
    if not items:
        return items
    shift = by % len(items)
    return items[shift:] + items[:shift]


def _start_all(
    targets: list[Target], results: dict[str, TargetResult], logs: Path
) -> dict[str, Server]:
    servers = {}
    for target in targets:
        try:
            server, started = spawn(target, logs, "serve")
        except OSError as error:
            results[target.name].error = f"cannot start: {error}"
            continue
        servers[target.name] = server
        try:
            wait_first_2xx(server, started, START_DEADLINE_S, f"ready-{uuid.uuid4().hex[:8]}")
        except RuntimeError as error:
            results[target.name].error = str(error)
            stop(servers.pop(target.name))
    return servers


def _prepare_servers(
    servers: dict[str, Server], results: dict[str, TargetResult], client: str, args: Any
) -> None:
    """Invalid-JSON answer, warm-up, 1 s idle, idle RSS."""
    for name, server in servers.items():
        try:
            status = post_event(server.port, f"bad-{uuid.uuid4().hex[:8]}", INVALID_JSON_BODY)
        except OSError as error:
            results[name].notes.append(f"invalid-JSON request failed: {type(error).__name__}")
            continue
        results[name].invalid_json_status = status
    for name, server in servers.items():
        _load(client, server, args.warmup, args, f"warm-{name}", results[name])
    time.sleep(1.0)  # the idle second before reading RSS (a measurement, not a synchronisation)
    for name, server in servers.items():
        results[name].idle_rss_mib = tree_rss_mib(server.pid)
        results[name].idle_pss_mib = tree_pss_mib(server.pid)


def _load(
    client: str, server: Server, duration: float, args: Any, tag: str, result: TargetResult
) -> LoadResult | None:
    """One bounded load run; a failure is noted on the target and the bench goes on."""
    try:
        return run_load(
            client,
            server.port,
            duration=duration,
            connections=args.connections,
            limit=args.limit,
            prefix=f"{tag}-{uuid.uuid4().hex[:8]}",
        )
    except (RuntimeError, OSError) as error:
        result.notes.append(f"{tag}: load run failed: {str(error).splitlines()[0][:200]}")
        return None


def _rounds(
    servers: dict[str, Server], results: dict[str, TargetResult], client: str, args: Any
) -> None:
    names = list(servers)
    for number in range(args.rounds):
        for name in _rotate(names, number):
            run = _load(
                client, servers[name], args.duration, args, f"r{number}-{name}", results[name]
            )
            if run is None:
                continue
            results[name].runs.append({**run.as_dict(), "loadavg": _loadavg()})
            _say(
                f"  round {number + 1}/{args.rounds} {name:<20} {run.rps:8.0f} req/s"
                f"  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                f"  non-2xx {run.failed}"
            )


def _cold_starts(
    targets: list[Target], results: dict[str, TargetResult], logs: Path, count: int
) -> None:
    live = [t for t in targets if results[t.name].error is None]
    for number in range(count):
        for target in _rotate(live, number):
            server, started = spawn(target, logs, f"cold{number}")
            try:
                seconds = wait_first_2xx(
                    server, started, START_DEADLINE_S, f"cold-{uuid.uuid4().hex[:8]}"
                )
            except RuntimeError as error:
                results[target.name].notes.append(f"cold start failed: {error}")
                continue
            finally:
                stop(server)
            results[target.name].cold_starts_s.append(seconds)
            _say(f"  cold start {number + 1}/{count} {target.name:<20} {seconds * 1000:7.0f} ms")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _select(targets: list[Target], wanted: str) -> list[Target]:
    names = {name.strip() for name in wanted.split(",") if name.strip()}
    return [t for t in targets if not names or t.name in names]


def _meta(args: Any, client: str, notes: list[str], started: datetime) -> dict[str, Any]:
    return {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "client": client,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "warmup_s": args.warmup,
        "cold_starts": args.cold_starts,
        "limit": args.limit,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_end": _loadavg(),
        "versions": versions(),
        "notes": notes,
    }


def _print_report(results: dict[str, TargetResult], meta: dict[str, Any], path: Path) -> None:
    _say("")
    _say(
        f"client: {meta['client']}, {meta['connections']} connections, {meta['rounds']} rounds"
        f" x {meta['duration_s']:g} s, medians; ratios are target / functions-framework and"
        " target / raw-wsgi (req/s higher is better; cold start and RSS lower is better)"
    )
    _say(report.table(results))
    _say("\neventfn variants vs eventfn (idempotency off, tracing off):")
    for line in report.variant_lines(results) or ["  (none measured)"]:
        _say(line)
    _say(
        "\nstatus for an event whose JSON data is invalid (eventfn must answer 400/422; the"
        " cloudevents SDKs of the peers fall back to the raw string, so their handlers decide):"
    )
    for name, result in results.items():
        status = result.invalid_json_status
        mark = ""
        if name.startswith(report.EVENTFN) and status is not None:
            mark = "  [PASS]" if status in (400, 422) else "  [FAIL]"
        _say(f"  {name:<20} {status if status is not None else '-'}{mark}")
    _say("\ntargets (informational, never the exit code):")
    for line in report.check_lines(results):
        _say(line)
    _say("\nnotes:")
    for note in meta["notes"]:
        _say(f"  - {note}")
    pss = ", ".join(
        f"{name} {r.idle_pss_mib:.1f}" for name, r in results.items() if r.idle_pss_mib is not None
    )
    _say(f"  - idle PSS MiB (pages shared after fork counted once): {pss}")
    for name, result in results.items():
        for note in result.notes:
            _say(f"  - {name}: {note}")
    _say(f"\nresults written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    client = _pick(args.client)
    started = datetime.now(UTC)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eventfn-bench-")))
        sink = stack.enter_context(OtlpSink())
        postgres = stack.enter_context(_postgres(args.targets))
        targets = _select(
            eventfn_targets(root, sink.traces_url, postgres.url) + peer_targets(), args.targets
        )
        results = {t.name: TargetResult(t.name, t.description, list(t.notes)) for t in targets}
        for target in targets:
            results[target.name].error = missing_executable(target)
        runnable = [t for t in targets if results[t.name].error is None]
        logs = root / "logs"
        logs.mkdir()
        _say(f"bench: {len(runnable)} servers, client {client}; starting them")
        servers = _start_all(runnable, results, logs)
        try:
            _prepare_servers(servers, results, client, args)
            _rounds(servers, results, client, args)
        finally:
            for server in servers.values():
                stop(server)
        _cold_starts(runnable, results, logs, args.cold_starts)
        notes = [postgres.note, f"OTLP sink received {sink.exports} exports ({sink.bytes} bytes)"]
        meta = _meta(args, client, notes, started)
    path = args.output / f"runtime-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report.write_json(path, meta, results)
    _print_report(results, meta, path)
    return 0


@contextmanager
def _postgres(wanted: str) -> Iterator[Postgres]:
    """The throwaway database, only when the PostgreSQL variant is selected."""
    if wanted and report.IDEM_PG not in wanted.split(","):
        yield Postgres(None, "PostgreSQL variant not selected")
        return
    with postgres_database() as postgres:
        yield postgres


def _pick(requested: str) -> str:
    client = pick_client(requested)
    if client != WRK and requested == "auto":
        _say("bench: wrk is not on PATH; using the asyncio client (install wrk for steadier runs)")
    return client


if __name__ == "__main__":
    sys.exit(main())
