"""Schema compatibility of JSON Schema changes: what is breaking, what is informational."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from schema_compat_testing import BASE, JSON_CASES, TYPE, changed, props, summary

from eventfn._schema_compat import Finding, compare_schemas


@pytest.mark.parametrize(("label", "edit", "expected"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_schema_changes(
    label: str, edit: Callable[[dict[str, Any]], object], expected: set[tuple[str, bool]]
) -> None:
    findings = compare_schemas(TYPE, BASE, changed(edit))
    assert summary(findings) == expected
    assert all(f.event_type == TYPE and f.message for f in findings)


def test_identical_schemas_have_no_findings() -> None:
    assert compare_schemas(TYPE, BASE, copy.deepcopy(BASE)) == []


def test_field_added_to_a_closed_object_is_breaking() -> None:
    closed = changed(lambda s: s.update(additionalProperties=False))
    findings = compare_schemas(TYPE, closed, changed(lambda s: props(s).update(x={}), closed))
    assert summary(findings) == {("$.x", True)}


def test_opening_a_closed_object_is_informational() -> None:
    closed = changed(lambda s: s.update(additionalProperties=False))
    findings = compare_schemas(TYPE, closed, BASE)
    assert summary(findings) == {("$", False)}


def test_messages_say_what_changed() -> None:
    narrowed = changed(lambda s: props(s)["status"]["enum"].remove("paid"))
    (finding,) = compare_schemas(TYPE, BASE, narrowed)
    assert finding == Finding(TYPE, "$.status", 'enum narrowed: "paid" no longer allowed', True)
