"""Choice rules of the Amazon States Language: comparisons, type tests, And/Or/Not.

Every comparison operator has its `…Path` variant, whose right-hand side is a path into the same
input. A comparison whose variable is missing or of the wrong type is simply false, except that a
missing `Variable` raises WorkflowPathError (ASL's `States.Runtime`) — use `IsPresent` to test.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from eventfn._wf_paths import WorkflowPathError, is_present, select


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": lambda a, b: bool(a == b),
    "LessThan": lambda a, b: bool(a < b),
    "GreaterThan": lambda a, b: bool(a > b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}


def _compare(kind: str, relation: str, left: Any, right: Any) -> bool:
    if kind == "String":
        ok = isinstance(left, str) and isinstance(right, str)
    elif kind == "Numeric":
        ok = _is_number(left) and _is_number(right)
    elif kind == "Boolean":
        ok = isinstance(left, bool) and isinstance(right, bool) and relation == "Equals"
    else:
        left, right = _timestamp(left), _timestamp(right)
        ok = left is not None and right is not None
    return ok and _ORDER[relation](left, right)


def _comparisons() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for kind in ("String", "Numeric", "Timestamp"):
        for relation in _ORDER:
            table[kind + relation] = (kind, relation)
    table["BooleanEquals"] = ("Boolean", "Equals")
    return table


COMPARISONS: Final = _comparisons()
TYPE_TESTS: Final[dict[str, Callable[[Any], bool]]] = {
    "IsNull": lambda v: v is None,
    "IsString": lambda v: isinstance(v, str),
    "IsNumeric": _is_number,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: _timestamp(v) is not None,
}
OPERATORS: Final = frozenset(
    {*COMPARISONS, *(name + "Path" for name in COMPARISONS), *TYPE_TESTS, "IsPresent"}
    | {"StringMatches"}
)


def rule_operator(rule: dict[str, Any]) -> str | None:
    """The single comparison operator of a rule (None when it has none or several)."""
    found = [key for key in rule if key in OPERATORS]
    return found[0] if len(found) == 1 else None


def evaluate(rule: dict[str, Any], data: Any) -> bool:
    """True when the (validated) choice rule matches `data`."""
    if "And" in rule:
        return all(evaluate(item, data) for item in rule["And"])
    if "Or" in rule:
        return any(evaluate(item, data) for item in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data)
    return _comparison(rule, data)


def _comparison(rule: dict[str, Any], data: Any) -> bool:
    variable: str = rule["Variable"]
    operator = rule_operator(rule)
    if operator is None:
        raise WorkflowPathError("a choice rule needs exactly one comparison operator")
    expected = rule[operator]
    if operator == "IsPresent":
        return is_present(variable, data) == bool(expected)
    value = select(variable, data)
    if operator in TYPE_TESTS:
        return TYPE_TESTS[operator](value) == bool(expected)
    if operator == "StringMatches":
        return isinstance(value, str) and fnmatch.fnmatchcase(value, str(expected))
    if operator.endswith("Path"):
        operator, expected = operator[:-4], select(str(expected), data)
    kind, relation = COMPARISONS[operator]
    return _compare(kind, relation, value, expected)
