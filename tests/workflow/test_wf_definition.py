"""The definition loader names every problem with its JSON path, before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventfn._wf_definition import (
    DefinitionError,
    load_definition,
    load_directory,
    parse_definition,
)

BROKEN: dict[str, Any] = {
    "StartAt": "Validate",
    "States": {
        "Validate": {
            "Type": "Task",
            "Resource": "function:validate",
            "Next": "Nowhere",
            "InputPath": "data",
            "Retry": [{"ErrorEquals": [], "JitterStrategy": "SOME"}],
        },
        "Orphan": {"Type": "Pass", "End": True},
        "Loop": {"Type": "Pass"},
        "Odd": {"Type": "Sleep"},
        "Pick": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.x", "Next": "Validate"}],
            "Default": "Gone",
        },
        "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2020-01-01T00:00:00Z", "End": True},
        "T": {
            "Type": "Task",
            "Resource": "lambda:thing",
            "End": True,
            "Parameters": {"a.$": "not-a-path", "b": {"c.$": "States.Format('{}', $.ok)"}},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Missing", "ResultPath": "$.a b"}],
        },
        "M": {
            "Type": "Map",
            "End": True,
            "Iterator": {"StartAt": "X", "States": {"Y": {"Type": "Succeed"}}},
        },
    },
}


def test_every_problem_is_named_with_its_json_path() -> None:
    with pytest.raises(DefinitionError) as raised:
        parse_definition("broken", BROKEN)
    paths = {path for path, _ in raised.value.problems}
    assert paths == {
        "$.States.Validate.Next",
        "$.States.Validate.InputPath",
        "$.States.Validate.Retry[0].ErrorEquals",
        "$.States.Validate.Retry[0].JitterStrategy",
        "$.States.Orphan",
        "$.States.Loop",
        "$.States.Odd.Type",
        "$.States.Odd",
        "$.States.Pick",
        "$.States.Pick.Choices[0]",
        "$.States.Pick.Default",
        "$.States.W",
        "$.States.T",
        "$.States.T.Resource",
        "$.States.T.Parameters.a.$",
        "$.States.T.Catch[0].Next",
        "$.States.T.Catch[0].ResultPath",
        "$.States.M",
        "$.States.M.Iterator.StartAt",
    }
    problems = raised.value.problems
    assert ("$.States.Orphan", "is unreachable from StartAt") in problems
    assert ("$.States.Loop", "needs exactly one of Next and End: true") in problems
    assert "broken" in str(raised.value) and "$.States.Validate.Next" in str(raised.value)


@pytest.mark.parametrize("document", [None, [], {"StartAt": "A"}, {"StartAt": "A", "States": {}}])
def test_not_a_state_machine(document: Any) -> None:
    with pytest.raises(DefinitionError):
        parse_definition("x", document)


def test_json_and_yaml_files_load_by_stem(tmp_path: Path) -> None:
    machine = {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    (tmp_path / "one.json").write_text(json.dumps(machine))
    (tmp_path / "two.yaml").write_text("StartAt: A\nStates:\n  A:\n    Type: Succeed\n")
    (tmp_path / "bad.yml").write_text("StartAt: [unclosed\n")
    with pytest.raises(DefinitionError) as raised:
        load_directory(tmp_path)
    assert raised.value.problems == [("$", "not parseable: ParserError")]
    (tmp_path / "bad.yml").unlink()
    loaded = load_directory(tmp_path)
    assert sorted(loaded) == ["one", "two"]
    assert load_definition(tmp_path / "two.yaml").start_at == "A"
