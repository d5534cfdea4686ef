"""kill -9 the engine at random points across 200 executions; every execution still ends
exactly as in an uninterrupted run, and a step sent again after a crash has the same key."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from wf_testing import crash_behaviour, crash_definitions, crash_workflow, task_server

from eventfn._event import Event
from eventfn._store import create_engine_from_url
from eventfn._tables_workflow import workflow_executions
from eventfn._wf_definition import parse_definition
from eventfn._wf_retry import StateError
from eventfn._wf_steps import StepContext, TaskFailure, run_machine

COUNT = 200
DRIVER = Path(__file__).with_name("wf_crash_driver.py")
BUDGET_S = 90.0


def _expected() -> dict[str, tuple[str, Any]]:
    definitions = {n: parse_definition(n, d) for n, d in crash_definitions().items()}

    def invoke(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        status, data = crash_behaviour(payload)
        if status != 200:
            raise TaskFailure(StateError("States.TaskFailed", data, retryable=False))
        return data

    expected: dict[str, tuple[str, Any]] = {}
    for index in range(COUNT):
        definition = definitions[crash_workflow(index)]
        step = StepContext(invoke, sleep=lambda seconds: None)
        try:
            expected[f"run-{index}"] = ("SUCCEEDED", run_machine(definition, {"v": index}, step))
        except TaskFailure as failed:
            expected[f"run-{index}"] = ("FAILED", failed.failure.error)
    return expected


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wf.db'}"
    engine: Engine = request.getfixturevalue("pg_engine")  # migrated, every table emptied
    return engine.url.render_as_string(hide_password=False)


def test_killed_engine_resumes_every_execution_to_the_same_end(url: str) -> None:
    rng = random.Random(20261129)
    process: list[subprocess.Popen[bytes]] = []
    served, kill_at, lock = [0], [rng.randint(15, 60)], threading.Lock()

    def behaviour(event: Event) -> tuple[int, Any]:
        with lock:
            served[0] += 1
            if served[0] >= kill_at[0] and process and process[-1].poll() is None:
                kill_at[0] = served[0] + rng.randint(15, 60)
                pid, delay = process[-1].pid, rng.choice([0.0, 0.0, 0.002, 0.01])
                threading.Timer(delay, os.kill, (pid, signal.SIGKILL)).start()
        return crash_behaviour(event.data)

    deadline, kills = time.monotonic() + BUDGET_S, 0
    with task_server(behaviour) as (task_url, received):
        while True:
            assert time.monotonic() < deadline, "the executions did not converge in time"
            with lock:
                process.append(subprocess.Popen(
                    [sys.executable, str(DRIVER), url, task_url, str(COUNT)],
                    stdout=subprocess.PIPE,
                ))  # fmt: skip
            out, _ = process[-1].communicate(timeout=BUDGET_S)
            if process[-1].returncode == 0:
                assert b"DONE" in out
                break
            assert process[-1].returncode == -signal.SIGKILL
            kills += 1
    assert kills >= 5
    db = create_engine_from_url(url)
    with db.connect() as connection:
        rows = connection.execute(select(workflow_executions)).mappings().all()
    db.dispose()
    actual = {
        row["name"]: (row["status"], json.loads(row["output"]) if row["output"] else row["error"])
        for row in rows
    }
    assert actual == _expected()
    keys_per_step: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in received:
        execution, _version, state, _attempt = event.extensions["workflowtaskkey"].split("/")
        keys_per_step[(execution, state)].add(event.id)
    assert all(len(ids) == 1 for ids in keys_per_step.values())
    assert len(received) > len(keys_per_step)  # some steps were really sent twice
