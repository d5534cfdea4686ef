"""Semantics of the States Language subset: Pass, Choice, Map and Parallel result order and Wait,
evaluated by the in-memory runner."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from wf_runner_testing import Clock, flaky

from eventfn._wf_definition import parse_definition
from eventfn._wf_steps import StepContext, TaskFailure, run_machine


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
    assert run_machine(parse_definition("p", document), {"in": 1}, StepContext(flaky(0))) == "big"


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
        run_machine(parse_definition("c", document), {}, StepContext(flaky(0)))
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
    assert run_machine(parse_definition("p", document), {}, StepContext(flaky(0))) == {
        "out": ["a", "b", "c"]
    }
    document["States"]["Par"]["Branches"].append(
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Broken", "Cause": "c"}}}
    )
    with pytest.raises(TaskFailure) as failed:
        run_machine(parse_definition("p", document), {}, StepContext(flaky(0)))
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
        StepContext(flaky(0), "e", clock, sleep=clock.sleep),
    ) == {"s": 7}
    assert clock.waits == [7.0]
