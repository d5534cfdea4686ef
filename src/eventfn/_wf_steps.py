"""One state of a workflow, evaluated: input processing, the state's work, Retry/Catch.

`run_state` is pure apart from the task calls it makes through `StepContext.invoke`: it returns
an Outcome (go to a state, wait, retry later, succeed, fail) which the engine checkpoints before
it does anything else. Parallel branches and Map iterations run inside the one state, in memory
(`run_machine`), their results in branch / item order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from eventfn._wf_choice import evaluate
from eventfn._wf_definition import Definition, branch
from eventfn._wf_paths import (
    WorkflowPathError,
    apply_input_path,
    apply_result_path,
    resolve_parameters,
    select,
)
from eventfn._wf_retry import RUNTIME, StateError, find_catcher, next_retry

NO_CHOICE: Final = "States.NoChoiceMatched"
BRANCH_FAILED: Final = "States.BranchFailed"


class TaskFailure(Exception):
    """Raised by a task invoker: the task failed with this StateError."""

    def __init__(self, failure: StateError) -> None:
        super().__init__(failure.error)
        self.failure = failure


Invoke = Callable[[str, Any, float | None, str], Any]


@dataclass
class StepContext:
    """What a state needs besides its input: the task invoker, clock, randomness, context object."""

    invoke: Invoke
    execution_id: str = ""
    clock: Callable[[], float] = time.time
    uniform: Callable[[float, float], float] = random.uniform
    sleep: Callable[[float], None] = time.sleep
    counts: tuple[int, ...] = ()
    attempt: int = 0
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What follows a state: `next`, `wait` (until `at`), `retry` (at `at`), `succeed`, `fail`."""

    kind: str
    next_state: str | None = None
    output: Any = None
    error: StateError | None = None
    at: float = 0.0
    retrier: int = -1


def run_state(definition: Definition, name: str, data: Any, step: StepContext) -> Outcome:
    """Evaluate state `name` on `data`; path errors fail the execution with States.Runtime."""
    state = definition.state(name)
    context = {**step.context, "State": {"Name": name, "RetryCount": step.attempt}}
    try:
        return _RUNNERS[state["Type"]](state, data, context, step)
    except WorkflowPathError as error:
        return Outcome("fail", error=StateError(RUNTIME, error.detail, retryable=False))


def _flow(state: dict[str, Any], output: Any) -> Outcome:
    if state.get("End") is True:
        return Outcome("succeed", output=output)
    return Outcome("next", next_state=state["Next"], output=output)


def _effective(state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
    effective = apply_input_path(state.get("InputPath", "$"), data, context)
    if "Parameters" in state:
        effective = resolve_parameters(state["Parameters"], effective, context)
    return effective


def _finish(state: dict[str, Any], data: Any, result: Any, context: dict[str, Any]) -> Outcome:
    if "ResultSelector" in state:
        result = resolve_parameters(state["ResultSelector"], result, context)
    output = apply_result_path(state.get("ResultPath", "$"), data, result)
    return _flow(state, apply_input_path(state.get("OutputPath", "$"), output, context))


def _pass(state: dict[str, Any], data: Any, context: dict[str, Any], step: StepContext) -> Outcome:
    result = state["Result"] if "Result" in state else _effective(state, data, context)
    output = apply_result_path(state.get("ResultPath", "$"), data, result)
    return _flow(state, apply_input_path(state.get("OutputPath", "$"), output, context))


def _choice(
    state: dict[str, Any], data: Any, context: dict[str, Any], step: StepContext
) -> Outcome:
    effective = apply_input_path(state.get("InputPath", "$"), data, context)
    output = apply_input_path(state.get("OutputPath", "$"), effective, context)
    for rule in state["Choices"]:
        if evaluate(rule, effective):
            return Outcome("next", next_state=rule["Next"], output=output)
    if "Default" in state:
        return Outcome("next", next_state=state["Default"], output=output)
    return Outcome("fail", error=StateError(NO_CHOICE, "no choice rule matched", False))


def _wait(state: dict[str, Any], data: Any, context: dict[str, Any], step: StepContext) -> Outcome:
    effective = apply_input_path(state.get("InputPath", "$"), data, context)
    if "Seconds" in state or "SecondsPath" in state:
        seconds = state.get("Seconds")
        if seconds is None:
            seconds = select(state["SecondsPath"], effective)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise WorkflowPathError("Wait seconds must be a non-negative number")
        at = step.clock() + float(seconds)
    else:
        stamp = state.get("Timestamp") or select(state["TimestampPath"], effective)
        try:
            at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise WorkflowPathError("Wait timestamp is not RFC 3339") from None
    output = apply_input_path(state.get("OutputPath", "$"), effective, context)
    flow = _flow(state, output)
    return Outcome("wait", next_state=flow.next_state, output=output, at=at)


def _succeed(
    state: dict[str, Any], data: Any, context: dict[str, Any], step: StepContext
) -> Outcome:
    effective = apply_input_path(state.get("InputPath", "$"), data, context)
    return Outcome(
        "succeed", output=apply_input_path(state.get("OutputPath", "$"), effective, context)
    )


def _fail(state: dict[str, Any], data: Any, context: dict[str, Any], step: StepContext) -> Outcome:
    failure = StateError(state.get("Error", "States.Fail"), state.get("Cause", ""), False)
    return Outcome("fail", error=failure)


def _guarded(work: Callable[[dict[str, Any], Any, dict[str, Any], StepContext], Any]) -> Any:
    """Wrap Task/Parallel/Map work with result processing, Retry and Catch."""

    def run(
        state: dict[str, Any], data: Any, context: dict[str, Any], step: StepContext
    ) -> Outcome:
        effective = _effective(state, data, context)
        try:
            result = work(state, effective, context, step)
        except TaskFailure as failed:
            return _failed(state, data, failed.failure, step)
        return _finish(state, data, result, context)

    return run


def _failed(state: dict[str, Any], data: Any, failure: StateError, step: StepContext) -> Outcome:
    retry = next_retry(state.get("Retry", []), step.counts, failure, step.uniform)
    if retry is not None:
        index, delay = retry
        return Outcome("retry", error=failure, at=step.clock() + delay, retrier=index)
    catcher = find_catcher(state.get("Catch", []), failure)
    if catcher is None:
        return Outcome("fail", error=failure)
    output = apply_result_path(catcher.get("ResultPath", "$"), data, failure.as_output())
    return Outcome("next", next_state=catcher["Next"], output=output, error=failure)


def _task(state: dict[str, Any], effective: Any, context: dict[str, Any], step: StepContext) -> Any:
    key = f"{step.execution_id}/{context['State']['Name']}/{step.attempt}"
    return step.invoke(state["Resource"], effective, state.get("TimeoutSeconds"), key)


def _parallel(
    state: dict[str, Any], effective: Any, context: dict[str, Any], step: StepContext
) -> Any:
    machines = [branch(f"branch{i}", item) for i, item in enumerate(state["Branches"])]
    with ThreadPoolExecutor(max_workers=len(machines)) as pool:
        futures = [
            pool.submit(run_machine, machine, effective, _child(step, f"{i}"))
            for i, machine in enumerate(machines)
        ]
        return [future.result() for future in futures]


def _map(state: dict[str, Any], effective: Any, context: dict[str, Any], step: StepContext) -> Any:
    items = select(state.get("ItemsPath", "$"), effective, context)
    if not isinstance(items, list):
        raise WorkflowPathError("Map ItemsPath must select a list")
    machine = branch("iterator", state.get("ItemProcessor") or state["Iterator"])
    selector = state.get("ItemSelector")

    def one(index: int) -> Any:
        item_context = {**context, "Map": {"Item": {"Index": index, "Value": items[index]}}}
        value = (
            items[index]
            if selector is None
            else resolve_parameters(selector, effective, item_context)
        )
        return run_machine(machine, value, _child(step, str(index), item_context))

    workers = state.get("MaxConcurrency", 0) or max(len(items), 1)
    with ThreadPoolExecutor(max_workers=min(workers, 32)) as pool:
        return list(pool.map(one, range(len(items))))


def _child(step: StepContext, suffix: str, context: dict[str, Any] | None = None) -> StepContext:
    return StepContext(
        invoke=step.invoke,
        execution_id=f"{step.execution_id}/{suffix}",
        clock=step.clock,
        uniform=step.uniform,
        sleep=step.sleep,
        context=context if context is not None else dict(step.context),
    )


def run_machine(definition: Definition, data: Any, step: StepContext) -> Any:
    """Run a (sub-)machine to its end in memory; a failure raises TaskFailure."""
    name, counts, attempt = definition.start_at, tuple[int, ...](), 0
    while True:
        current = StepContext(
            step.invoke, step.execution_id, step.clock, step.uniform, step.sleep, counts, attempt
        )
        current.context = step.context
        outcome = run_state(definition, name, data, current)
        if outcome.kind == "retry":
            counts = bump(counts, outcome.retrier)
            attempt += 1
            step.sleep(max(0.0, outcome.at - step.clock()))
            continue
        if outcome.kind == "wait":
            step.sleep(max(0.0, outcome.at - step.clock()))
            if outcome.next_state is None:
                return outcome.output
        elif outcome.kind == "succeed":
            return outcome.output
        elif outcome.kind == "fail":
            assert outcome.error is not None
            raise TaskFailure(outcome.error)
        name, data, counts, attempt = str(outcome.next_state), outcome.output, (), 0


def bump(counts: tuple[int, ...], index: int) -> tuple[int, ...]:
    """`counts` with retrier `index` counted once more."""
    grown = list(counts) + [0] * (index + 1 - len(counts))
    grown[index] += 1
    return tuple(grown)


_RUNNERS: Final[
    dict[str, Callable[[dict[str, Any], Any, dict[str, Any], StepContext], Outcome]]
] = {
    "Pass": _pass,
    "Choice": _choice,
    "Wait": _wait,
    "Succeed": _succeed,
    "Fail": _fail,
    "Task": _guarded(_task),
    "Parallel": _guarded(_parallel),
    "Map": _guarded(_map),
}
