"""Semantics tables of the States Language subset: error matching, Retry backoff and Catch,
evaluated by the in-memory runner with a controllable clock."""

from __future__ import annotations

from typing import Any

import pytest
from wf_runner_testing import Clock, flaky

from eventfn._wf_definition import parse_definition
from eventfn._wf_retry import StateError, backoff_delay, matches, next_retry
from eventfn._wf_steps import StepContext, run_machine, run_state


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
    clock, invoke = Clock(), flaky(3)
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
    step = StepContext(flaky(failures, retryable=retryable), "e", clock, sleep=clock.sleep)
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
    step = StepContext(flaky(1, "States.Timeout"), "e")
    outcome = run_state(parse_definition("t", document), "T", {}, step)
    assert outcome.kind == "fail" and outcome.error == StateError("States.Timeout", "boom")
