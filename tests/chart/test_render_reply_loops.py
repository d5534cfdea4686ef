"""Functions declare what they emit; no Trigger feeds a function its own output (reply loops)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from chart_testing import SCENARIO_IDS, SCENARIOS, find, merged_values, rendered

# Three-valued logic: True (matches), False (cannot match), None (depends on an attribute whose
# value is unknown statically, e.g. the subject). A loop is possible unless the result is False.


def _all(results: Iterator[bool | None]) -> bool | None:
    values = list(results)
    if False in values:
        return False
    return None if None in values else True


def _any(results: Iterator[bool | None]) -> bool | None:
    values = list(results)
    if True in values:
        return True
    return None if None in values else False


def _attributes_match(
    attributes: Mapping[str, str], event: Mapping[str, str], test: Any
) -> bool | None:
    return _all(
        (test(event[name], value) if name in event else None) for name, value in attributes.items()
    )


def evaluate(expression: Mapping[str, Any], event: Mapping[str, str]) -> bool | None:
    ((operator, operand),) = expression.items()
    if operator == "exact":
        return _attributes_match(operand, event, lambda actual, want: actual == want)
    if operator == "prefix":
        return _attributes_match(operand, event, lambda actual, want: actual.startswith(want))
    if operator == "suffix":
        return _attributes_match(operand, event, lambda actual, want: actual.endswith(want))
    if operator == "all":
        return _all(evaluate(item, event) for item in operand)
    if operator == "any":
        return _any(evaluate(item, event) for item in operand)
    if operator == "not":
        result = evaluate(operand, event)
        return None if result is None else not result
    raise AssertionError(f"the chart does not allow filter operator {operator!r}")


def trigger_may_match(spec: Mapping[str, Any], event: Mapping[str, str]) -> bool:
    if spec.get("filters"):
        return _all(evaluate(expression, event) for expression in spec["filters"]) is not False
    attributes = (spec.get("filter") or {}).get("attributes") or {}
    return _attributes_match(attributes, event, lambda actual, want: actual == want) is not False


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_no_trigger_matches_what_its_own_function_emits(values_file: Path | None) -> None:
    functions = merged_values(values_file)["functions"]
    for trigger in find(rendered(values_file), "Trigger"):
        subscriber = trigger["spec"]["subscriber"]["ref"]["name"]
        for emitted in functions[subscriber].get("emits", []):
            assert not trigger_may_match(trigger["spec"], {"type": emitted}), (
                f"Trigger {trigger['metadata']['name']} matches {emitted}, which {subscriber} "
                "emits itself: a reply loop"
            )


@pytest.mark.parametrize(
    ("spec", "loops"),
    [
        ({"filters": [{"exact": {"type": "eventfn.echo.requested.v1"}}]}, False),
        ({"filters": [{"prefix": {"type": "eventfn.echo."}}]}, True),
        ({"filters": [{"exact": {"type": "x"}}, {"suffix": {"subject": ".jpg"}}]}, False),
        ({"filters": [{"prefix": {"type": "eventfn."}}, {"suffix": {"subject": ".jpg"}}]}, True),
        ({"filters": [{"not": {"exact": {"type": "eventfn.echo.requested.v1"}}}]}, True),
        ({"filters": [{"any": [{"exact": {"type": "a"}}, {"suffix": {"type": ".v1"}}]}]}, True),
        ({"filter": {"attributes": {"type": "eventfn.echo.replied.v1"}}}, True),
        ({"filter": {"attributes": {"type": "eventfn.echo.requested.v1", "source": "/x"}}}, False),
        ({}, True),
    ],
)
def test_loop_matcher_flags_filters_that_accept_the_emitted_type(
    spec: dict[str, Any], loops: bool
) -> None:
    assert trigger_may_match(spec, {"type": "eventfn.echo.replied.v1"}) is loops


def test_default_functions_declare_what_they_emit() -> None:
    functions = merged_values(None)["functions"]
    assert functions["echo"]["emits"] == ["eventfn.echo.replied.v1", "eventfn.echo.recorded.v1"]
    assert functions["storage-source"]["emits"] == ["eventfn.storage.object.created.v1"]
    assert functions["storage-source"].get("triggers", {}) == {}
