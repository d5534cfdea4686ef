"""The durable engine on SQLite and PostgreSQL: checkpoints, timers, idempotent task delivery,
deterministic ids, redrive, cancel, function tasks over loopback HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from wf_testing import Clock, pass_chain, task_chain, task_server

from eventfn._event import Event
from eventfn._tables_workflow import workflow_executions, workflow_timers
from eventfn._wf_definition import Definition, parse_definition
from eventfn._wf_engine import InvalidTransition, UnknownWorkflow, WorkflowEngine
from eventfn._wf_retry import StateError
from eventfn._wf_steps import TaskFailure
from eventfn._wf_store import history
from eventfn._wf_tasks import TaskInvoker


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


def _defs(**documents: dict[str, Any]) -> dict[str, Definition]:
    return {name: parse_definition(name, document) for name, document in documents.items()}


class Recorder:
    """A task invoker that records keys and fails on demand."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.fail: list[StateError] = []

    def __call__(self, resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        self.keys.append(key)
        if self.fail:
            raise TaskFailure(self.fail.pop(0))
        return {"v": payload["v"] + 1}


def test_pass_chain_checkpoints_every_state_and_starts_once_per_trigger(db: Engine) -> None:
    notes: list[tuple[str, str]] = []
    engine = WorkflowEngine(
        db, _defs(chain=pass_chain(3)), Recorder(), notify=lambda k, r: notes.append((k, r["id"]))
    )
    first = engine.start("chain", {"v": 7}, trigger="src 1")
    again = engine.start("chain", {"v": 7}, trigger="src 1")
    assert first == again
    row = engine.describe(first)
    assert row["status"] == "SUCCEEDED" and json.loads(row["output"]) == {"v": 7, "last": 3}
    with db.connect() as connection:
        kinds = [(e["kind"], e["state"]) for e in history(connection, first)]
        count = connection.execute(select(func.count()).select_from(workflow_executions)).scalar()
    assert kinds == [
        ("ExecutionStarted", None),
        ("StateSucceeded", "S1"),
        ("StateSucceeded", "S2"),
        ("ExecutionSucceeded", "S3"),
    ]
    assert count == 1
    assert notes == [("started", first), ("succeeded", first)]
    with pytest.raises(UnknownWorkflow):
        engine.start("nope", {})


def test_wait_and_retry_are_stored_timers_fired_by_run_due(db: Engine) -> None:
    clock, recorder = Clock(), Recorder()
    document = task_chain(1, retry=True)
    document["States"]["T1"]["Retry"][0]["BackoffRate"] = 3
    document["States"]["W"] = {"Type": "Wait", "Seconds": 30, "End": True}
    document["States"]["T1"]["Next"] = "W"
    del document["States"]["T1"]["End"]
    engine = WorkflowEngine(db, _defs(w=document), recorder, clock=clock)
    recorder.fail = [StateError("States.TaskFailed", "x"), StateError("States.TaskFailed", "y")]
    ident = engine.start("w", {"v": 1})

    def timer() -> float | None:
        with db.connect() as connection:
            return connection.execute(select(workflow_timers.c.due_at)).scalar()

    assert engine.describe(ident)["phase"] == "WAITING" and timer() == clock.now + 1
    assert engine.run_due(clock.now + 0.5) == 0
    clock.advance(1)
    assert engine.run_due() == 1 and timer() == clock.now + 3
    clock.advance(3)
    assert engine.run_due() == 1 and timer() == clock.now + 30
    assert engine.describe(ident)["state"] is None
    clock.advance(30)
    assert engine.run_due() == 1 and timer() is None
    row = engine.describe(ident)
    assert row["status"] == "SUCCEEDED" and json.loads(row["output"]) == {"v": 2}
    assert [key.split("/", 1)[1] for key in recorder.keys] == ["0/T1/0", "2/T1/1", "4/T1/2"]


class Crash(BaseException):
    """Stands for the process dying after the task ran, before the checkpoint."""


def test_a_step_resent_after_a_crash_has_the_same_key(db: Engine) -> None:
    keys: list[str] = []

    def crashing(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        keys.append(key)
        if len(keys) == 2:
            raise Crash
        return {"v": payload["v"] + 1}

    engine = WorkflowEngine(db, _defs(c=task_chain(3)), crashing)
    with pytest.raises(Crash):
        engine.start("c", {"v": 0}, name="run-1")
    restarted = WorkflowEngine(db, _defs(c=task_chain(3)), crashing)
    assert restarted.resume() == 1
    ident = keys[0].split("/")[0]
    assert json.loads(restarted.describe(ident)["output"]) == {"v": 3}
    assert keys[1] == keys[2] and len(set(keys)) == 3


def test_a_tick_resumes_only_executions_idle_longer_than_a_request_can_live(db: Engine) -> None:
    """No lease: a live request may be stepping a fresh checkpoint, so the tick leaves it."""
    clock = Clock()
    calls: list[str] = []

    def crashing(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        calls.append(key)
        if len(calls) == 1:
            raise Crash
        return {"v": payload["v"] + 1}

    engine = WorkflowEngine(db, _defs(c=task_chain(2)), crashing, clock=clock)
    with pytest.raises(Crash):
        engine.start("c", {"v": 0}, name="run-idle")
    clock.advance(299)
    assert engine.resume(idle_for=300) == 0 and len(calls) == 1
    clock.advance(1)
    assert engine.resume(idle_for=300) == 1 and len(calls) == 3


def test_redrive_restarts_the_failed_state_with_its_recorded_input(db: Engine) -> None:
    recorder = Recorder()
    engine = WorkflowEngine(db, _defs(c=task_chain(3)), recorder)
    recorder.fail = [StateError("States.TaskFailed", "down", retryable=False)]
    recorder.keys.clear()
    ident = engine.start("c", {"v": 0})
    row = engine.describe(ident)
    assert (
        row["status"] == "FAILED" and row["state"] == "T1" and row["error"] == "States.TaskFailed"
    )
    assert engine.redrive(ident) == "SUCCEEDED"
    row = engine.describe(ident)
    assert json.loads(row["output"]) == {"v": 3} and row["redrive_count"] == 1
    assert len(set(recorder.keys)) == len(recorder.keys) == 4
    with pytest.raises(InvalidTransition):
        engine.redrive(ident)


def test_cancel_stops_a_waiting_execution_and_drops_its_timer(db: Engine) -> None:
    clock = Clock()
    waiting = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 5, "Next": "P"},
            "P": {"Type": "Pass", "End": True},
        },
    }
    engine = WorkflowEngine(db, _defs(w=waiting), Recorder(), clock=clock)
    ident = engine.start("w", {})
    assert engine.cancel(ident) is True and engine.cancel(ident) is False
    assert engine.run_due(clock.advance(10)) == 0
    assert engine.describe(ident)["status"] == "CANCELLED"


def _status(event: Event) -> tuple[int, Any]:
    if event.data["v"] == 400:
        return 422, "rejected"
    if event.data["v"] == 503:
        return 503, "dependency-unavailable"
    return 200, {"v": event.data["v"] + 1, "subject": event.subject}


def test_function_tasks_over_http_map_statuses_to_errors(sqlite_engine: Engine) -> None:
    clock = Clock()
    document = task_chain(1, retry=True)
    document["States"]["T1"]["Retry"][0]["MaxAttempts"] = 1
    with task_server(_status) as (url, received):
        invoker = TaskInvoker(lambda name: url if name == "adder" else None)
        engine = WorkflowEngine(sqlite_engine, _defs(c=document), invoker, clock=clock)
        ok = engine.describe(engine.start("c", {"v": 1}))
        assert json.loads(ok["output"]) == {"v": 2, "subject": "T1"}
        rejected = engine.describe(engine.start("c", {"v": 400}))
        assert (rejected["status"], rejected["cause"]) == ("FAILED", "rejected")
        retried = engine.start("c", {"v": 503})
        assert engine.describe(retried)["phase"] == "WAITING"
        engine.run_due(clock.advance(1))
        failed = engine.describe(retried)
        assert (failed["status"], failed["cause"]) == ("FAILED", "dependency-unavailable")
    assert received[0].type == "eventfn.workflow.task.requested.v1"
    assert received[2].id != received[3].id  # a retry is a new delivery, not a duplicate
    unreachable = TaskInvoker(lambda name: None)
    with pytest.raises(TaskFailure) as raised:
        unreachable("function:other", {}, 1, "k/1/T/0")
    assert raised.value.failure.retryable is False


def test_map_and_parallel_results_are_checkpointed_in_order(db: Engine) -> None:
    adder = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "function:a", "End": True}},
    }
    document = {
        "StartAt": "Fan",
        "States": {
            "Fan": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3,
                    "ItemProcessor": adder, "ResultPath": "$.mapped", "Next": "Both"},
            "Both": {"Type": "Parallel", "Branches": [adder, adder], "InputPath": "$.mapped[0]",
                     "End": True},
        },
    }  # fmt: skip
    recorder = Recorder()
    engine = WorkflowEngine(db, _defs(m=document), recorder)
    ident = engine.start("m", {"items": [{"v": i} for i in range(7)]})
    row = engine.describe(ident)
    assert json.loads(row["output"]) == [{"v": 2}, {"v": 2}]
    with db.connect() as connection:
        [mapped] = [e for e in history(connection, ident) if e["state"] == "Fan"]
    assert json.loads(mapped["output"])["mapped"] == [{"v": i + 1} for i in range(7)]
    assert len(set(recorder.keys)) == 9  # every item and branch has its own task key


def test_a_function_that_does_not_answer_in_time_is_states_timeout(sqlite_engine: Engine) -> None:
    import threading

    release = threading.Event()

    def slow(event: Event) -> tuple[int, Any]:
        release.wait(10)
        return 200, {}

    document = task_chain(1)
    document["States"]["T1"]["TimeoutSeconds"] = 0.3
    document["States"]["T1"]["Catch"] = [
        {"ErrorEquals": ["States.Timeout"], "Next": "Late", "ResultPath": "$.error"}
    ]
    document["States"]["Late"] = {"Type": "Pass", "End": True}
    with task_server(slow) as (url, _received):
        engine = WorkflowEngine(sqlite_engine, _defs(t=document), TaskInvoker(lambda n: url))
        try:
            row = engine.describe(engine.start("t", {"v": 1}))
        finally:
            release.set()
    assert json.loads(row["output"])["error"]["Error"] == "States.Timeout"


def test_event_emit_sends_a_derived_id_to_the_broker(sqlite_engine: Engine) -> None:
    from eventfn._emitter import Emitter

    document = {"StartAt": "E", "States": {"E": {
        "Type": "Task", "Resource": "event:emit", "ResultPath": "$.sent", "End": True,
        "Parameters": {"Type": "eventfn.test.emitted.v1", "Data": {"v.$": "$.v"}, "Subject": "s"},
    }}}  # fmt: skip
    with task_server(lambda event: (200, None)) as (url, received):
        invoker = TaskInvoker(lambda n: None, emit=Emitter(sink=url, retries=0).emit)
        engine = WorkflowEngine(sqlite_engine, _defs(e=document), invoker)
        row = engine.describe(engine.start("e", {"v": 5}))
    [event] = received
    assert (event.type, event.data, event.subject) == ("eventfn.test.emitted.v1", {"v": 5}, "s")
    assert json.loads(row["output"])["sent"]["Id"] == event.id


def test_a_final_event_the_broker_refused_is_sent_again_later(db: Engine) -> None:
    from eventfn._errors import DependencyUnavailable

    sent: list[tuple[str, str]] = []
    broker_up = [False]

    def notify(kind: str, row: dict[str, Any]) -> None:
        if kind != "started" and not broker_up[0]:
            raise DependencyUnavailable("broker down")
        sent.append((kind, row["id"]))

    engine = WorkflowEngine(db, _defs(chain=pass_chain(2)), Recorder(), notify=notify)
    ident = engine.start("chain", {"v": 1})
    assert engine.describe(ident)["status"] == "SUCCEEDED" and sent == [("started", ident)]
    broker_up[0] = True
    assert engine.announce_pending() == 0  # just finished: its own step may still send it
    assert engine.announce_pending(older_than=0) == 1
    assert engine.announce_pending(older_than=0) == 0
    assert sent == [("started", ident), ("succeeded", ident)]
    assert engine.describe(ident)["announced"] == "SUCCEEDED"


def test_a_timer_already_due_does_not_wait_for_the_scheduler(db: Engine) -> None:
    document = {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z", "Next": "Z"},
        "Z": {"Type": "Wait", "Seconds": 0, "End": True}}}  # fmt: skip
    engine = WorkflowEngine(db, _defs(w=document), Recorder())
    row = engine.describe(engine.start("w", {"k": 1}))
    assert (row["status"], json.loads(row["output"])) == ("SUCCEEDED", {"k": 1})
