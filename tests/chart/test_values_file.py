"""values.yaml documents itself: a comment on every key, except the entries of plain data maps
(resource quantities, labels, environment variables, a Trigger's delivery) under a documented key.
"""

from __future__ import annotations

import re

from chart_testing import CHART

VALUES = CHART / "values.yaml"
KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s#:-][^:]*):(\s|$)")
DATA_MAPS = {"requests", "limits", "labels", "podLabels", "env", "delivery", "autoscaling"}


def undocumented_keys(text: str) -> list[str]:
    """Keys (as dotted paths) whose line is not right below a comment and not in a data map."""
    missing: list[str] = []
    ancestors: list[tuple[int, str]] = []
    list_indent: int | None = None
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if list_indent is not None:
            if indent > list_indent or (indent == list_indent and stripped.startswith("- ")):
                previous = line
                continue  # inside a list item: data, documented by the list's key
            list_indent = None
        if stripped.startswith("- "):
            list_indent = indent
            previous = line
            continue
        match = KEY.match(line)
        if match:
            while ancestors and ancestors[-1][0] >= indent:
                ancestors.pop()
            key = match.group("key")
            in_data_map = any(name in DATA_MAPS for _, name in ancestors)
            if not previous.strip().startswith("#") and not in_data_map:
                missing.append(".".join([*(name for _, name in ancestors), key]))
            ancestors.append((indent, key))
        previous = line
    return missing


def test_every_key_of_values_yaml_has_a_comment() -> None:
    assert undocumented_keys(VALUES.read_text()) == []


def test_the_rule_finds_a_key_without_comment() -> None:
    text = "# -- a\na:\n  # -- b\n  b: 1\n  c: 2\nresources:\n  requests:\n    cpu: 1\n"
    assert undocumented_keys(text) == ["a.c", "resources", "resources.requests"]
