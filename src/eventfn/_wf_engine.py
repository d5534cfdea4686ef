"""The durable workflow engine: executions stepped one checkpointed transition at a time.

A step reads the execution's checkpoint, evaluates its current state (calling the task, outside
any transaction), and writes the outcome, its history entry and any timer in ONE transaction
before the next step starts. A process killed anywhere therefore resumes from the last
checkpoint (`resume`), and a task whose outcome was not recorded is sent again with the same
idempotency key (`<execution>/<checkpoint version>/<state>/<attempt>`). Waits and retry backoffs
are stored deadlines that `run_due(now)` fires; nothing sleeps.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import Engine

from eventfn._context import derived_id
from eventfn._errors import PermanentError, RetryableError
from eventfn._store import translate_db_errors
from eventfn._wf_definition import Definition
from eventfn._wf_steps import Invoke, Outcome, StepContext, bump, run_state
from eventfn._wf_store import (
    Row,
    add_history,
    checkpoint,
    clear_timer,
    due_timers,
    dumps,
    insert_execution,
    load,
    mark_announced,
    ready_executions,
    set_timer,
    unannounced,
)

RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
READY: Final = "READY"
WAITING: Final = "WAITING"

Notify = Callable[[str, Row], None]
_log = logging.getLogger("eventfn.workflow")


class UnknownWorkflow(PermanentError, LookupError):
    """No workflow definition has this name."""

    status = 404
    code = "unknown-workflow"
    title = "Unknown workflow"


class ExecutionNotFound(PermanentError, LookupError):
    """No execution has this id."""

    status = 404
    code = "execution-not-found"
    title = "Execution not found"


class InvalidTransition(PermanentError):
    """The execution is not in a status that allows the request (e.g. redrive of a success)."""

    status = 409
    code = "invalid-execution-transition"
    title = "Execution cannot do that now"


def execution_id(workflow: str, name: str | None = None, trigger: str | None = None) -> str:
    """Deterministic for a name or a triggering event (`source id`); random otherwise."""
    if name:
        return derived_id("workflow-execution", workflow, "name", name)
    if trigger:
        return derived_id("workflow-execution", workflow, "trigger", trigger)
    return str(uuid.uuid4())


class WorkflowEngine:
    """Starts, steps, resumes, redrives and cancels executions stored in `db`."""

    def __init__(
        self,
        db: Engine,
        definitions: Mapping[str, Definition],
        invoke: Invoke,
        *,
        clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] = random.uniform,
        notify: Notify | None = None,
        max_steps: int = 10_000,
    ) -> None:
        self._db = db
        self._definitions = definitions
        self._invoke = invoke
        self._clock = clock
        self._uniform = uniform
        self._notify = notify
        self._max_steps = max_steps

    @property
    def db(self) -> Engine:
        """The SQL engine the executions live in."""
        return self._db

    def start(
        self,
        workflow: str,
        data: Any,
        *,
        name: str | None = None,
        trigger: str | None = None,
        trace_id: str | None = None,
        run: bool = True,
    ) -> str:
        """Create the execution (once per name/trigger) and, with `run`, step it."""
        definition = self._definitions.get(workflow)
        if definition is None:
            raise UnknownWorkflow(f"no workflow named {workflow!r}", field="workflow")
        ident, now = execution_id(workflow, name, trigger), self._clock()
        row = {
            "id": ident, "workflow": workflow, "name": name or ident, "status": RUNNING,
            "phase": READY, "state": definition.start_at, "state_input": dumps(data),
            "retry_counts": "[]", "attempt": 0, "input": dumps(data), "trigger_event": trigger,
            "trace_id": trace_id, "version": 0, "redrive_count": 0, "started_at": now,
            "updated_at": now,
        }  # fmt: skip
        with translate_db_errors(), self._db.begin() as connection:
            created = insert_execution(connection, row)
            if created:
                entry = _entry("ExecutionStarted", None, 0, (now, now), data)
                add_history(connection, ident, 0, entry)
            else:
                existing = load(connection, ident)
                if existing is not None and existing["workflow"] != workflow:
                    raise InvalidTransition("that execution id belongs to another workflow")
        if created and self._notify is not None:
            try:
                self._notify("started", row)
            except RetryableError:
                _log.warning("the started event of execution %s was not sent", ident)
        if run:
            self.advance(ident)
        return ident

    def describe(self, ident: str) -> Row:
        """The execution's row; raises ExecutionNotFound."""
        with translate_db_errors(), self._db.connect() as connection:
            row = load(connection, ident)
        if row is None:
            raise ExecutionNotFound(f"no execution {ident!r}")
        return row

    def advance(self, ident: str) -> str:
        """Step the execution until it finishes or waits; returns its status."""
        row: Row | None = self.describe(ident)
        for _ in range(self._max_steps):
            if row is None:  # another replica moved it: read what it wrote
                row = self.describe(ident)
            due = row.pop("due_at", None)
            if due is not None and due <= self._clock() and row["status"] == RUNNING:
                self._fire(ident)  # a timer already due (Wait 0, a past Timestamp): go on now
                row = None
                continue
            if row["status"] != RUNNING or row["phase"] != READY:
                return str(row["status"])
            row = self._step(row)
        return RUNNING

    def resume(self, limit: int = 1000, idle_for: float = 0.0) -> int:
        """Step every execution a crash left ready; returns how many were found.

        `idle_for` > 0 skips executions checkpointed less than that many seconds ago: a live
        request may be stepping them right now (no lease), so a periodic tick passes the longest
        a request can live (the Service's timeout) and only picks up what a dead pod left.
        """
        updated_before = self._clock() - idle_for if idle_for > 0 else None
        with translate_db_errors(), self._db.connect() as connection:
            idents = ready_executions(connection, limit, updated_before)
        for ident in idents:
            self.advance(ident)
        return len(idents)

    def run_due(self, now: float | None = None, limit: int = 1000) -> int:
        """Fire the timers due at `now` and step those executions; returns how many fired."""
        moment = self._clock() if now is None else now
        with translate_db_errors(), self._db.connect() as connection:
            idents = due_timers(connection, moment, limit)
        for ident in idents:
            if self._fire(ident):
                self.advance(ident)
        return len(idents)

    def redrive(self, ident: str) -> str:
        """Restart a FAILED execution at its failed state with that state's recorded input."""
        row = self.describe(ident)
        if row["status"] != FAILED or row["state"] is None:
            raise InvalidTransition(f"execution {ident!r} is {row['status']}, not FAILED")
        now = self._clock()
        changes = {
            "status": RUNNING, "phase": READY, "error": None, "cause": None, "finished_at": None,
            "retry_counts": "[]", "attempt": 0, "updated_at": now,
            "redrive_count": row["redrive_count"] + 1,
        }  # fmt: skip
        entry = _entry("ExecutionRedriven", row["state"], 0, (now, now), None)
        self._commit(row, changes, entry, None)
        return self.advance(ident)

    def cancel(self, ident: str) -> bool:
        """Stop a RUNNING execution; False when it had already finished."""
        row = self.describe(ident)
        if row["status"] != RUNNING:
            return False
        now = self._clock()
        changes = {"status": CANCELLED, "finished_at": now, "updated_at": now}
        return self._commit(row, changes, _entry("ExecutionCancelled", None, 0, (now, now), None))

    def _fire(self, ident: str) -> bool:
        row = self.describe(ident)
        now = self._clock()
        if row["status"] != RUNNING or row["phase"] != WAITING:
            with translate_db_errors(), self._db.begin() as connection:
                clear_timer(connection, ident)
            return False
        changes: Row = {"phase": READY, "updated_at": now}
        if row["state"] is None:  # a Wait state with End: true
            changes.update(
                status=SUCCEEDED, output=row["state_input"], finished_at=now, announced=None
            )
        entry = _entry("TimerFired", row["state"], row["attempt"], (now, now), None)
        return self._commit(row, changes, entry, None)

    def _step(self, row: Row) -> Row | None:
        """Run the current state and checkpoint it; the new row, or None when a replica won."""
        definition = self._definitions.get(row["workflow"])
        if definition is None:
            raise UnknownWorkflow(f"no workflow named {row['workflow']!r}")
        context = {
            "Execution": {"Id": row["id"], "Name": row["name"], "Input": json.loads(row["input"])},
            "StateMachine": {"Name": row["workflow"]},
        }
        step = StepContext(
            invoke=self._invoke,
            execution_id=f"{row['id']}/{row['version']}",
            clock=self._clock,
            uniform=self._uniform,
            counts=tuple(json.loads(row["retry_counts"])),
            attempt=row["attempt"],
            context=context,
        )
        started = self._clock()
        outcome = run_state(definition, row["state"], json.loads(row["state_input"]), step)
        changes, entry, timer = _transition(row, outcome, started, self._clock())
        if not self._commit(row, changes, entry, timer):
            return None
        due = None if timer is None else timer[0]
        return {**row, **changes, "version": row["version"] + 1, "due_at": due}

    def _commit(
        self, row: Row, changes: Row, entry: Row, timer: tuple[float, str] | None = None
    ) -> bool:
        with translate_db_errors(), self._db.begin() as connection:
            if not checkpoint(connection, row["id"], row["version"], changes):
                return False
            add_history(connection, row["id"], row["version"] + 1, entry)
            if timer is not None:
                set_timer(connection, row["id"], *timer)
            elif changes.get("status", RUNNING) != RUNNING:
                clear_timer(connection, row["id"])
        if changes.get("status") in (SUCCEEDED, FAILED):
            self._announce({**row, **changes})
        return True

    def announce_pending(self, older_than: float = 10.0, limit: int = 1000) -> int:
        """Send the final events a crash (or a broker outage) left unsent; returns how many.

        Only executions finished `older_than` seconds ago: the step that finished one sends
        its event itself right after the checkpoint, and should not be raced.
        """
        with translate_db_errors(), self._db.connect() as connection:
            rows = unannounced(connection, self._clock() - older_than, limit)
        return sum(self._announce(row) for row in rows)

    def _announce(self, row: Row) -> bool:
        if self._notify is None:
            return False
        status = str(row["status"])
        try:
            self._notify(status.lower(), row)
        except RetryableError:
            _log.warning("the %s event of execution %s is not sent yet", status, row["id"])
            return False
        with translate_db_errors(), self._db.begin() as connection:
            mark_announced(connection, row["id"], status)
        return True


def _entry(
    kind: str, state: str | None, attempt: int, span: tuple[float, float], output: Any
) -> Row:
    started, finished = span
    return {
        "kind": kind, "state": state, "attempt": attempt, "input": None,
        "output": None if output is None else dumps(output), "error": None, "cause": None,
        "started_at": started, "finished_at": finished,
    }  # fmt: skip


def _transition(
    row: Row, outcome: Outcome, started: float, now: float
) -> tuple[Row, Row, tuple[float, str] | None]:
    """(execution changes, history entry, timer) recording `outcome` of the current state."""
    kinds = {"next": "StateSucceeded", "wait": "StateWaiting", "retry": "StateRetrying"}
    kind = kinds.get(outcome.kind, "Execution" + outcome.kind.capitalize() + "ed")
    if outcome.kind == "next" and outcome.error is not None:
        kind = "StateCaught"
    entry = _entry(kind, row["state"], row["attempt"], (started, now), outcome.output)
    entry["input"] = row["state_input"]
    if outcome.error is not None:
        entry.update(error=outcome.error.error, cause=outcome.error.cause)
    changes: Row = {"updated_at": now}
    timer: tuple[float, str] | None = None
    if outcome.kind in ("next", "wait"):
        changes.update(
            state=outcome.next_state, state_input=dumps(outcome.output), retry_counts="[]",
            attempt=0, phase=READY if outcome.kind == "next" else WAITING,
        )  # fmt: skip
        timer = (outcome.at, "wait") if outcome.kind == "wait" else None
    elif outcome.kind == "retry":
        counts = bump(tuple(json.loads(row["retry_counts"])), outcome.retrier)
        changes.update(retry_counts=dumps(counts), attempt=row["attempt"] + 1, phase=WAITING)
        timer = (outcome.at, "retry")
    elif outcome.kind == "succeed":
        changes.update(
            status=SUCCEEDED, output=dumps(outcome.output), finished_at=now, announced=None
        )
    else:
        assert outcome.error is not None
        changes.update(
            status=FAILED,
            error=outcome.error.error,
            cause=outcome.error.cause,
            finished_at=now,
            announced=None,
        )
    return changes, entry, timer
