"""Workflow engine benchmark: state transitions/s and per-transition overhead of checkpoints.

Chains of 10 states, run to the end N times each:

- `pass`: 10 Pass states (each resolves a small Parameters template);
- `task`: 10 Task states calling `function:adder` on a loopback HTTP task server (a
  ThreadingHTTPServer in this process replying with a binary CloudEvent).

Targets: `memory` — the same chain evaluated by the in-memory runner (`run_machine`: identical
state evaluation and task calls, no checkpoints): the named baseline; `sqlite` — the durable
engine on a fresh SQLite file; `postgres` — on a throwaway database of the server at
`EVENTFN_BENCH_DATABASE_URL` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres;
skipped with the reason when it does not answer). Overhead = (durable - memory) time per
transition. Bounded: `--executions` per target (default 30) and `--budget` seconds per target.

    .venv/bin/python bench/workflow.py [--executions 30] [--budget 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "workflow"))

from wf_testing import pass_chain, task_chain, task_server  # noqa: E402

from eventfn._store import create_engine_from_url, upgrade  # noqa: E402
from eventfn._wf_definition import parse_definition  # noqa: E402
from eventfn._wf_engine import WorkflowEngine  # noqa: E402
from eventfn._wf_steps import StepContext, run_machine  # noqa: E402
from eventfn._wf_tasks import TaskInvoker  # noqa: E402

ENV_BENCH_DATABASE_URL = "EVENTFN_BENCH_DATABASE_URL"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STATES = 10


@contextmanager
def _postgres() -> Iterator[str]:
    import sqlalchemy

    server = os.environ.get(ENV_BENCH_DATABASE_URL, DEFAULT_PG)
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"wfbench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield str(sqlalchemy.engine.make_url(server).set(database=name))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _timed(run_one: Callable[[int], None], executions: int, budget: float) -> tuple[int, float]:
    run_one(-1)  # warm-up (connections, imports)
    started = time.perf_counter()
    done = 0
    while done < executions and time.perf_counter() - started < budget:
        run_one(done)
        done += 1
    return done, time.perf_counter() - started


def _memory(document: dict[str, Any], invoke: Any, executions: int, budget: float) -> Any:
    definition = parse_definition("bench", document)

    def one(index: int) -> None:
        run_machine(definition, {"v": index}, StepContext(invoke, f"bench-{index}"))

    return _timed(one, executions, budget)


def _durable(
    url: str, document: dict[str, Any], invoke: Any, executions: int, budget: float
) -> Any:
    db = create_engine_from_url(url)
    upgrade(db)
    engine = WorkflowEngine(db, {"bench": parse_definition("bench", document)}, invoke)
    tag = secrets.token_hex(3)

    def one(index: int) -> None:
        ident = engine.start("bench", {"v": index}, name=f"{tag}-{index}")
        assert engine.describe(ident)["status"] == "SUCCEEDED"

    try:
        return _timed(one, executions, budget)
    finally:
        db.dispose()


def _row(chain: str, target: str, done: int, seconds: float, base: float | None) -> dict[str, Any]:
    transitions = done * STATES
    per = seconds / transitions * 1e6
    row = {
        "chain": chain, "target": target, "executions": done, "transitions": transitions,
        "transitions_per_s": round(transitions / seconds, 1), "us_per_transition": round(per, 1),
    }  # fmt: skip
    if base is not None:
        row["overhead_us_per_transition"] = round(per - base, 1)
        row["slowdown_vs_memory"] = round(per / base, 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=30)
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with task_server() as (url, _received), tempfile.TemporaryDirectory() as tmp:
        invoker = TaskInvoker(lambda name: url)
        for chain, document in (("pass", pass_chain(STATES)), ("task", task_chain(STATES))):
            done, seconds = _memory(document, invoker, args.executions, args.budget)
            base = seconds / (done * STATES) * 1e6
            rows.append(_row(chain, "memory (baseline)", done, seconds, None))
            sqlite_url = f"sqlite:///{Path(tmp) / f'{chain}.db'}"
            done, seconds = _durable(sqlite_url, document, invoker, args.executions, args.budget)
            rows.append(_row(chain, "sqlite", done, seconds, base))
            try:
                with _postgres() as pg_url:
                    done, seconds = _durable(
                        pg_url, document, invoker, args.executions, args.budget
                    )
                rows.append(_row(chain, "postgres", done, seconds, base))
            except Exception as error:  # report why PostgreSQL was skipped, then go on
                print(f"postgres skipped: {type(error).__name__}", file=sys.stderr)
    print(
        f"{'chain':<6} {'target':<18} {'trans/s':>9} {'us/trans':>9} {'overhead us':>12} {'x':>6}"
    )
    for row in rows:
        print(
            f"{row['chain']:<6} {row['target']:<18} {row['transitions_per_s']:>9} "
            f"{row['us_per_transition']:>9} {row.get('overhead_us_per_transition', '-'):>12} "
            f"{row.get('slowdown_vs_memory', '-'):>6}"
        )
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "loadavg": load}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
