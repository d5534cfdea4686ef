"""Load and validate workflow definitions (Amazon States Language subset, JSON or YAML).

`load_definition` reads a file, `parse_definition` checks a mapping. Either raises
DefinitionError listing EVERY problem found, each with the JSON path of the offending field
(`$.States.Charge.Next`), before anything runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from eventfn._errors import ConfigurationError
from eventfn._wf_choice import rule_operator
from eventfn._wf_paths import is_valid_expression, is_valid_path

TYPES: Final = frozenset({"Task", "Choice", "Pass", "Wait", "Parallel", "Map", "Succeed", "Fail"})
_FLOWING: Final = frozenset({"Task", "Pass", "Wait", "Parallel", "Map"})
_RESOURCE: Final = re.compile(
    r"^(function:[a-z0-9]([a-z0-9-]*[a-z0-9])?|s3:copyObject|s3:putObject|event:emit)$"
)
_PATH_FIELDS: Final = ("InputPath", "OutputPath", "ResultPath", "ItemsPath", "SecondsPath")
_WAIT_FIELDS: Final = ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")


class DefinitionError(ConfigurationError):
    """A workflow definition is invalid; `problems` lists (JSON path, message) pairs."""

    def __init__(self, name: str, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"workflow {name!r} is invalid:\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class Definition:
    """A validated state machine (top level, or a Parallel branch / Map iterator)."""

    name: str
    start_at: str
    states: dict[str, dict[str, Any]]
    timeout_seconds: float | None = None

    def state(self, name: str) -> dict[str, Any]:
        """The state called `name`."""
        return self.states[name]


def load_definition(path: Path) -> Definition:
    """Read a `.json`, `.yaml` or `.yml` definition; the workflow name is the file stem."""
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (ValueError, yaml.YAMLError) as error:
        raise DefinitionError(
            path.stem, [("$", f"not parseable: {type(error).__name__}")]
        ) from None
    return parse_definition(path.stem, document)


def load_directory(directory: Path) -> dict[str, Definition]:
    """Every definition of a directory, by name."""
    found: dict[str, Definition] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix in (".json", ".yaml", ".yml"):
            found[path.stem] = load_definition(path)
    return found


def parse_definition(name: str, document: Any) -> Definition:
    """Validate `document`; raises DefinitionError naming every problem."""
    problems = list(_machine(document, "$"))
    if problems:
        raise DefinitionError(name, problems)
    timeout = document.get("TimeoutSeconds")
    return Definition(name, document["StartAt"], document["States"], timeout)


def branch(name: str, document: dict[str, Any]) -> Definition:
    """A Parallel branch or Map iterator of an already validated definition."""
    return Definition(name, document["StartAt"], document["States"])


def _machine(document: Any, at: str) -> Iterator[tuple[str, str]]:
    if not isinstance(document, dict):
        yield at, "must be an object with StartAt and States"
        return
    states = document.get("States")
    if not isinstance(states, dict) or not states:
        yield f"{at}.States", "must be a non-empty object of states"
        return
    start = document.get("StartAt")
    if not isinstance(start, str) or start not in states:
        yield f"{at}.StartAt", f"names no state: {start!r}"
    for state_name, state in states.items():
        yield from _state(states, state, f"{at}.States.{state_name}")
    if isinstance(start, str) and start in states:
        reachable = _reachable(states, start)
        for state_name in states:
            if state_name not in reachable:
                yield f"{at}.States.{state_name}", "is unreachable from StartAt"


def _targets(state: Any) -> Iterator[str]:
    if not isinstance(state, dict):
        return
    for key in ("Next", "Default"):
        if isinstance(state.get(key), str):
            yield state[key]
    for group in ("Choices", "Catch"):
        for item in state.get(group) or []:
            if isinstance(item, dict) and isinstance(item.get("Next"), str):
                yield item["Next"]


def _reachable(states: dict[str, Any], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for target in _targets(states.get(todo.pop())):
            if target in states and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _state(states: dict[str, Any], state: Any, at: str) -> Iterator[tuple[str, str]]:
    if not isinstance(state, dict):
        yield at, "must be an object"
        return
    kind = state.get("Type")
    if kind not in TYPES:
        yield f"{at}.Type", f"unknown state type {kind!r}"
        return
    if kind in _FLOWING:
        yield from _transition(states, state, at)
    for field in _PATH_FIELDS:
        value = state.get(field)
        if field in state and value is not None and not is_valid_path(value):
            yield f"{at}.{field}", f"bad path {value!r}"
    for field in ("Parameters", "ResultSelector", "ItemSelector"):
        if field in state:
            yield from _template(state[field], f"{at}.{field}")
    yield from _by_type(states, kind, state, at)


def _transition(
    states: dict[str, Any], state: dict[str, Any], at: str
) -> Iterator[tuple[str, str]]:
    has_next, end = "Next" in state, state.get("End") is True
    if has_next == end:
        yield at, "needs exactly one of Next and End: true"
    if has_next and state["Next"] not in states:
        yield f"{at}.Next", f"names no state: {state['Next']!r}"


def _template(template: Any, at: str) -> Iterator[tuple[str, str]]:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                if not is_valid_expression(value):
                    yield f"{at}.{key}", f"bad path or intrinsic {value!r}"
            else:
                yield from _template(value, f"{at}.{key}")
    elif isinstance(template, list):
        for index, item in enumerate(template):
            yield from _template(item, f"{at}[{index}]")


def _by_type(
    states: dict[str, Any], kind: str, state: dict[str, Any], at: str
) -> Iterator[tuple[str, str]]:
    if kind == "Task":
        resource = state.get("Resource")
        if not isinstance(resource, str) or not _RESOURCE.match(resource):
            yield f"{at}.Resource", f"unknown resource {resource!r}"
        yield from _positive(state, "TimeoutSeconds", at)
    elif kind == "Wait":
        given = [field for field in _WAIT_FIELDS if field in state]
        if len(given) != 1:
            yield at, "needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath"
        elif given[0] == "TimestampPath" and not is_valid_path(state["TimestampPath"]):
            yield f"{at}.TimestampPath", "bad path"
    elif kind == "Choice":
        yield from _choice(states, state, at)
    elif kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            yield f"{at}.Branches", "must be a non-empty list of state machines"
        for index, item in enumerate(branches or []):
            yield from _machine(item, f"{at}.Branches[{index}]")
    elif kind == "Map":
        field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        yield from _machine(state.get(field), f"{at}.{field}")
        concurrency = state.get("MaxConcurrency", 0)
        if not isinstance(concurrency, int) or concurrency < 0:
            yield f"{at}.MaxConcurrency", "must be an integer >= 0"
    if kind in ("Task", "Parallel", "Map"):
        yield from _retry_catch(states, state, at)


def _positive(state: dict[str, Any], field: str, at: str) -> Iterator[tuple[str, str]]:
    value = state.get(field)
    if field in state and (not isinstance(value, int | float) or value <= 0):
        yield f"{at}.{field}", "must be a positive number"


def _choice(states: dict[str, Any], state: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        yield f"{at}.Choices", "must be a non-empty list of rules"
        return
    for index, rule in enumerate(choices):
        where = f"{at}.Choices[{index}]"
        if not isinstance(rule, dict) or rule.get("Next") not in states:
            yield f"{where}.Next", "names no state"
        if isinstance(rule, dict):
            yield from _rule(rule, where)
    if "Default" in state and state["Default"] not in states:
        yield f"{at}.Default", f"names no state: {state['Default']!r}"


def _rule(rule: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    for combinator in ("And", "Or"):
        if combinator in rule:
            items = rule[combinator]
            if not isinstance(items, list) or not items:
                yield f"{at}.{combinator}", "must be a non-empty list of rules"
                return
            for index, item in enumerate(items):
                yield from _rule(
                    item if isinstance(item, dict) else {}, f"{at}.{combinator}[{index}]"
                )
            return
    if "Not" in rule:
        yield from _rule(rule["Not"] if isinstance(rule["Not"], dict) else {}, f"{at}.Not")
        return
    if not is_valid_path(rule.get("Variable")):
        yield f"{at}.Variable", f"bad path {rule.get('Variable')!r}"
    operator = rule_operator(rule)
    if operator is None:
        yield at, "needs exactly one comparison operator"
    elif operator.endswith("Path") and not is_valid_path(rule[operator]):
        yield f"{at}.{operator}", f"bad path {rule[operator]!r}"


def _retry_catch(
    states: dict[str, Any], state: dict[str, Any], at: str
) -> Iterator[tuple[str, str]]:
    for group in ("Retry", "Catch"):
        for index, item in enumerate(state.get(group) or []):
            where = f"{at}.{group}[{index}]"
            errors = item.get("ErrorEquals") if isinstance(item, dict) else None
            if not isinstance(errors, list) or not errors:
                yield f"{where}.ErrorEquals", "must be a non-empty list of error names"
            if group == "Catch" and (not isinstance(item, dict) or item.get("Next") not in states):
                yield f"{where}.Next", "names no state"
            path = item.get("ResultPath") if isinstance(item, dict) else None
            if group == "Catch" and path is not None and not is_valid_path(path):
                yield f"{where}.ResultPath", f"bad path {path!r}"
            if group == "Retry" and isinstance(item, dict):
                for field in ("IntervalSeconds", "MaxDelaySeconds", "BackoffRate"):
                    yield from _positive(item, field, where)
                jitter = item.get("JitterStrategy", "NONE")
                if jitter not in ("NONE", "FULL"):
                    yield f"{where}.JitterStrategy", "must be NONE or FULL"
