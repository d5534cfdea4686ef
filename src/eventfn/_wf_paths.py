"""Amazon States Language paths: the JsonPath subset, Parameters templates and ResultPath.

Supported paths are *reference paths*: `$`, `$.a.b`, `$.a[0]`, `$['a b']`, and `$$.…` for the
context object (`$$.Execution.Id`, `$$.Map.Item.Value`, …). Parameter values whose key ends in
`.$` are paths or the intrinsic `States.Format('{} and {}', $.a, $.b)`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from eventfn._errors import PermanentError

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]")
_FORMAT = re.compile(r"^States\.Format\((.*)\)$", re.DOTALL)
_ARGUMENT = re.compile(r"\s*('(?:[^'\\]|\\.)*'|\$\$?[^,]*|-?\d+(?:\.\d+)?|true|false|null)\s*(,|$)")

Step = str | int


class WorkflowPathError(PermanentError, ValueError):
    """A path is malformed, or names nothing in the data (ASL error `States.Runtime`)."""

    code = "workflow-path-error"
    title = "Workflow path error"


def parse_path(path: str) -> tuple[bool, tuple[Step, ...]]:
    """(refers to the context object, steps) of a reference path; raises WorkflowPathError."""
    context = path.startswith("$$")
    rest = path[2:] if context else path[1:]
    if not path.startswith("$"):
        raise WorkflowPathError(f"a path must start with '$': {path!r}")
    steps: list[Step] = []
    position = 0
    while position < len(rest):
        match = _SEGMENT.match(rest, position)
        if match is None:
            raise WorkflowPathError(f"unsupported path syntax at {position}: {path!r}")
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        position = match.end()
    return context, tuple(steps)


def is_valid_path(path: object) -> bool:
    """True when `path` is a supported reference path."""
    if not isinstance(path, str):
        return False
    try:
        parse_path(path)
    except WorkflowPathError:
        return False
    return True


def _walk(value: Any, steps: tuple[Step, ...], path: str) -> Any:
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and 0 <= step < len(value)
        if in_list or (isinstance(step, str) and isinstance(value, dict) and step in value):
            value = value[step]
        else:
            raise WorkflowPathError(f"the path {path!r} matches nothing in the data")
    return value


def select(path: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """The value `path` names in `data` (or in the context object for `$$` paths)."""
    in_context, steps = parse_path(path)
    return _walk(dict(context or {}) if in_context else data, steps, path)


def is_present(path: str, data: Any) -> bool:
    """True when `path` names a value in `data`."""
    try:
        select(path, data)
    except WorkflowPathError:
        return False
    return True


def apply_input_path(path: str | None, data: Any, context: Mapping[str, Any]) -> Any:
    """InputPath/OutputPath: null gives `{}`, a path selects."""
    return {} if path is None else select(path, data, context)


def apply_result_path(path: str | None, state_input: Any, result: Any) -> Any:
    """ResultPath: null keeps the input, `$` is the result, `$.a.b` puts it into a copy of input."""
    if path is None:
        return state_input
    in_context, steps = parse_path(path)
    if in_context:
        raise WorkflowPathError("a ResultPath cannot refer to the context object")
    if not steps:
        return result
    output = copy.deepcopy(state_input) if isinstance(state_input, dict) else {}
    target = output
    for step in steps[:-1]:
        if not isinstance(step, str):
            raise WorkflowPathError(f"a ResultPath may only name fields: {path!r}")
        child = target.get(step)
        if not isinstance(child, dict):
            child = target[step] = {}
        target = child
    last = steps[-1]
    if not isinstance(last, str):
        raise WorkflowPathError(f"a ResultPath may only name fields: {path!r}")
    target[last] = result
    return output


def resolve_parameters(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """A Parameters/ResultSelector template with its `.$` keys resolved against `data`."""
    if isinstance(template, dict):
        resolved: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise WorkflowPathError(f"the value of {key!r} must be a path string")
                resolved[key[:-2]] = evaluate_expression(value, data, context)
            else:
                resolved[key] = resolve_parameters(value, data, context)
        return resolved
    if isinstance(template, list):
        return [resolve_parameters(item, data, context) for item in template]
    return template


def evaluate_expression(expression: str, data: Any, context: Mapping[str, Any]) -> Any:
    """A `.$` value: a reference path or an intrinsic function call."""
    match = _FORMAT.match(expression.strip())
    if match is None:
        return select(expression, data, context)
    arguments = _arguments(match.group(1), data, context)
    if not arguments or not isinstance(arguments[0], str):
        raise WorkflowPathError("States.Format needs a template string first")
    template, values = arguments[0], arguments[1:]
    pieces = template.split("{}")
    if len(pieces) - 1 != len(values):
        raise WorkflowPathError("States.Format has a different number of {} and arguments")
    out = pieces[0]
    for value, piece in zip(values, pieces[1:], strict=True):
        out += (value if isinstance(value, str) else json.dumps(value)) + piece
    return out


def _arguments(text: str, data: Any, context: Mapping[str, Any]) -> list[Any]:
    values: list[Any] = []
    position = 0
    while position < len(text):
        match = _ARGUMENT.match(text, position)
        if match is None:
            raise WorkflowPathError("malformed intrinsic function arguments")
        token = match.group(1).strip()
        if token.startswith("'"):
            values.append(re.sub(r"\\(.)", r"\1", token[1:-1]))
        elif token.startswith("$"):
            values.append(select(token, data, context))
        else:
            values.append(json.loads(token))
        position = match.end()
    return values


def is_valid_expression(expression: object) -> bool:
    """True for a reference path or a well-formed States.Format call (checked statically)."""
    if not isinstance(expression, str):
        return False
    match = _FORMAT.match(expression.strip())
    if match is None:
        return is_valid_path(expression)
    text, position = match.group(1), 0
    while position < len(text):
        argument = _ARGUMENT.match(text, position)
        if argument is None:
            return False
        token = argument.group(1).strip()
        if token.startswith("$") and not is_valid_path(token):
            return False
        position = argument.end()
    return True
