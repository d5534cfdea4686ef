"""Semantics tables of the States Language subset: paths, Parameters, ResultPath, Choice, Retry,
Catch, Map and Parallel result order — evaluated by the in-memory runner."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from eventfn._wf_choice import evaluate
from eventfn._wf_definition import parse_definition
from eventfn._wf_paths import (
    WorkflowPathError,
    apply_input_path,
    apply_result_path,
    resolve_parameters,
    select,
)
from eventfn._wf_retry import StateError, backoff_delay, matches, next_retry
from eventfn._wf_steps import StepContext, TaskFailure, run_machine, run_state

DATA = {"a": {"b": [10, {"c": "x"}]}, "name": "Ada", "n": 3, "flag": True, "odd key": 1}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DATA),
        ("$.name", "Ada"),
        ("$.a.b[0]", 10),
        ("$.a.b[1].c", "x"),
        ("$['odd key']", 1),
    ],
)
def test_select(path: str, expected: Any) -> None:
    assert select(path, DATA) == expected


@pytest.mark.parametrize("path", ["$.missing", "$.a.b[5]", "$.name.x", "name", "$..a", "$.a[*]"])
def test_select_errors(path: str) -> None:
    with pytest.raises(WorkflowPathError):
        select(path, DATA)


def test_context_paths_and_input_path_null() -> None:
    assert select("$$.Execution.Id", {}, {"Execution": {"Id": "e1"}}) == "e1"
    assert apply_input_path(None, DATA, {}) == {}


@pytest.mark.parametrize(
    ("result_path", "expected"),
    [
        ("$", {"r": 1}),
        (None, {"x": 1}),
        ("$.out", {"x": 1, "out": {"r": 1}}),
        ("$.deep.er", {"x": 1, "deep": {"er": {"r": 1}}}),
        ("$.x", {"x": {"r": 1}}),
    ],
)
def test_result_path(result_path: str | None, expected: Any) -> None:
    state_input = {"x": 1}
    assert apply_result_path(result_path, state_input, {"r": 1}) == expected
    assert state_input == {"x": 1}


def test_parameters_with_paths_and_format() -> None:
    template = {
        "static": "s",
        "who.$": "$.name",
        "nested": {"first.$": "$.a.b[0]", "list": [{"c.$": "$.a.b[1].c"}]},
        "greeting.$": "States.Format('Hello {}, you have {} items', $.name, $.n)",
        "exec.$": "$$.Execution.Id",
    }
    assert resolve_parameters(template, DATA, {"Execution": {"Id": "e1"}}) == {
        "static": "s",
        "who": "Ada",
        "nested": {"first": 10, "list": [{"c": "x"}]},
        "greeting": "Hello Ada, you have 3 items",
        "exec": "e1",
    }


def test_format_argument_count_must_match() -> None:
    with pytest.raises(WorkflowPathError):
        resolve_parameters({"x.$": "States.Format('{} {}', $.name)"}, DATA, {})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.name", "StringEquals": "Ada"}, True),
        ({"Variable": "$.name", "StringLessThan": "B"}, True),
        ({"Variable": "$.name", "StringGreaterThanEquals": "Ada"}, True),
        ({"Variable": "$.name", "StringMatches": "A*a"}, True),
        ({"Variable": "$.n", "NumericEquals": 3}, True),
        ({"Variable": "$.n", "NumericGreaterThan": 3}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 3.0}, True),
        ({"Variable": "$.n", "StringEquals": "3"}, False),
        ({"Variable": "$.flag", "BooleanEquals": True}, True),
        ({"Variable": "$.n", "NumericEqualsPath": "$.a.b[0]"}, False),
        ({"Variable": "$.a.b[0]", "NumericGreaterThanPath": "$.n"}, True),
        ({"Variable": "$.nope", "IsPresent": False}, True),
        ({"Variable": "$.name", "IsPresent": True}, True),
        ({"Variable": "$.name", "IsString": True}, True),
        ({"Variable": "$.flag", "IsNumeric": True}, False),
        (
            {
                "And": [
                    {"Variable": "$.n", "NumericGreaterThan": 1},
                    {"Variable": "$.flag", "BooleanEquals": True},
                ]
            },
            True,
        ),
        (
            {
                "Or": [
                    {"Variable": "$.n", "NumericLessThan": 1},
                    {"Variable": "$.name", "StringEquals": "x"},
                ]
            },
            False,
        ),
        ({"Not": {"Variable": "$.name", "StringEquals": "x"}}, True),
    ],
)
def test_choice_rules(rule: dict[str, Any], expected: bool) -> None:
    assert evaluate(rule, DATA) is expected


def test_choice_on_missing_variable_is_a_runtime_error() -> None:
    with pytest.raises(WorkflowPathError):
        evaluate({"Variable": "$.nope", "StringEquals": "x"}, DATA)


@pytest.mark.parametrize(
    ("errors", "error", "expected"),
    [
        (["States.ALL"], "Custom", True),
        (["States.ALL"], "States.Timeout", True),
        (["States.ALL"], "States.Runtime", False),
        (["States.TaskFailed"], "States.TaskFailed", True),
        (["States.TaskFailed"], "Custom", True),
        (["States.TaskFailed"], "States.Timeout", False),
        (["States.Timeout"], "States.Timeout", True),
        (["Other"], "Custom", False),
    ],
)
def test_error_matching(errors: list[str], error: str, expected: bool) -> None:
    assert matches(errors, error) is expected


def test_backoff_sequence_and_cap() -> None:
    retrier = {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 2,
        "BackoffRate": 3,
        "MaxDelaySeconds": 40,
    }
    no_jitter = lambda low, high: high  # noqa: E731
    assert [backoff_delay(retrier, n, no_jitter) for n in range(1, 6)] == [2, 6, 18, 40, 40]
    assert backoff_delay({"ErrorEquals": ["x"]}, 1, no_jitter) == 1.0


def test_full_jitter_stays_within_bounds() -> None:
    import random

    rng = random.Random(7)
    retrier = {
        "ErrorEquals": ["x"],
        "IntervalSeconds": 1,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }
    delays = [backoff_delay(retrier, 4, rng.uniform) for _ in range(500)]
    assert all(0.0 <= delay <= 8.0 for delay in delays)
    assert max(delays) > 6.0 and min(delays) < 2.0


def test_retriers_count_separately_and_permanent_errors_skip_retry() -> None:
    retriers = [
        {"ErrorEquals": ["A"], "MaxAttempts": 1},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 2},
    ]
    assert next_retry(retriers, (0, 0), StateError("A"))[0] == 0  # type: ignore[index]
    assert next_retry(retriers, (1, 0), StateError("A")) is None
    assert next_retry(retriers, (1, 0), StateError("B"))[0] == 1  # type: ignore[index]
    assert next_retry(retriers, (0, 0), StateError("B", retryable=False)) is None


class Clock:
    """A controllable clock: `sleep` advances it and records the waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


def _flaky(failures: int, error: str = "States.TaskFailed", retryable: bool = True) -> Any:
    calls: list[str] = []

    def invoke(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        calls.append(key)
        if len(calls) <= failures:
            raise TaskFailure(StateError(error, "boom", retryable))
        return {"ok": payload}

    invoke.calls = calls  # type: ignore[attr-defined]
    return invoke


RETRYING = {
    "StartAt": "T",
    "States": {
        "T": {
            "Type": "Task",
            "Resource": "function:tasks",
            "Retry": [
                {
                    "ErrorEquals": ["States.TaskFailed"],
                    "IntervalSeconds": 1,
                    "BackoffRate": 2,
                    "MaxAttempts": 4,
                    "MaxDelaySeconds": 3,
                }
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle", "ResultPath": "$.error"}],
            "End": True,
        },
        "Handle": {"Type": "Pass", "End": True},
    },
}


def test_retry_waits_follow_the_backoff_with_a_controllable_clock() -> None:
    clock, invoke = Clock(), _flaky(3)
    definition = parse_definition("r", RETRYING)
    step = StepContext(invoke, "exec", clock, sleep=clock.sleep)
    assert run_machine(definition, {"v": 1}, step) == {"ok": {"v": 1}}
    assert clock.waits == [1.0, 2.0, 3.0]
    assert invoke.calls == ["exec/T/0", "exec/T/1", "exec/T/2", "exec/T/3"]


@pytest.mark.parametrize(
    ("failures", "retryable", "waits", "expected"),
    [
        (
            10,
            True,
            [1.0, 2.0, 3.0, 3.0],
            {"v": 1, "error": {"Error": "States.TaskFailed", "Cause": "boom"}},
        ),
        (10, False, [], {"v": 1, "error": {"Error": "States.TaskFailed", "Cause": "boom"}}),
    ],
)
def test_catch_after_retries_are_exhausted_or_at_once_when_permanent(
    failures: int, retryable: bool, waits: list[float], expected: Any
) -> None:
    clock = Clock()
    step = StepContext(_flaky(failures, retryable=retryable), "e", clock, sleep=clock.sleep)
    assert run_machine(parse_definition("r", RETRYING), {"v": 1}, step) == expected
    assert clock.waits == waits


def test_uncaught_error_fails_and_timeout_is_not_task_failed() -> None:
    document = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "event:emit",
                "End": True,
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "C"}],
            },
            "C": {"Type": "Succeed"},
        },
    }
    step = StepContext(_flaky(1, "States.Timeout"), "e")
    outcome = run_state(parse_definition("t", document), "T", {}, step)
    assert outcome.kind == "fail" and outcome.error == StateError("States.Timeout", "boom")


def test_pass_choice_and_output_path() -> None:
    document = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Result": {"k": 5}, "ResultPath": "$.r", "Next": "C"},
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.r.k", "NumericGreaterThan": 4, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {
                "Type": "Pass",
                "Parameters": {"size": "big", "k.$": "$.r.k"},
                "OutputPath": "$.size",
                "End": True,
            },
            "Small": {"Type": "Fail", "Error": "TooSmall"},
        },
    }
    assert run_machine(parse_definition("p", document), {"in": 1}, StepContext(_flaky(0))) == "big"


def test_no_matching_choice_fails() -> None:
    document = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "C"}],
            }
        },
    }
    with pytest.raises(TaskFailure) as failed:
        run_machine(parse_definition("c", document), {}, StepContext(_flaky(0)))
    assert failed.value.failure.error == "States.NoChoiceMatched"


def test_map_keeps_item_order_and_respects_max_concurrency() -> None:
    running, peak, lock = [0], [0], threading.Lock()
    release = threading.Barrier(2, timeout=5)

    def invoke(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if payload["i"] < 2:
            release.wait()  # the first two items run together, so the cap of 2 is reached
        with lock:
            running[0] -= 1
        return payload["i"] * 10

    document = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "End": True,
                "ItemSelector": {"i.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": "function:x", "End": True}},
                },
            }
        },
    }
    result = run_machine(
        parse_definition("m", document), {"items": [0, 1, 2, 3, 4, 5]}, StepContext(invoke)
    )
    assert result == [0, 10, 20, 30, 40, 50]
    assert peak[0] == 2


def test_parallel_results_are_in_branch_order_and_a_failed_branch_fails_the_state() -> None:
    def machine(value: str) -> dict[str, Any]:
        return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "End": True}}}

    document = {
        "StartAt": "Par",
        "States": {
            "Par": {
                "Type": "Parallel",
                "Branches": [machine("a"), machine("b"), machine("c")],
                "ResultPath": "$.out",
                "End": True,
            }
        },
    }
    assert run_machine(parse_definition("p", document), {}, StepContext(_flaky(0))) == {
        "out": ["a", "b", "c"]
    }
    document["States"]["Par"]["Branches"].append(
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Broken", "Cause": "c"}}}
    )
    with pytest.raises(TaskFailure) as failed:
        run_machine(parse_definition("p", document), {}, StepContext(_flaky(0)))
    assert failed.value.failure.error == "Broken"


def test_wait_seconds_path_uses_the_clock() -> None:
    clock = Clock()
    document = {
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}},
    }
    assert run_machine(
        parse_definition("w", document),
        {"s": 7},
        StepContext(_flaky(0), "e", clock, sleep=clock.sleep),
    ) == {"s": 7}
    assert clock.waits == [7.0]
