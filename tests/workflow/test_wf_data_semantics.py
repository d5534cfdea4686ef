"""Semantics tables of the States Language subset: paths, Parameters, ResultPath and Choice
rules, evaluated on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from eventfn._wf_choice import evaluate
from eventfn._wf_paths import (
    WorkflowPathError,
    apply_input_path,
    apply_result_path,
    resolve_parameters,
    select,
)

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
