"""The notifier's routing configuration: which event types go to which channels, and what the
message says. A YAML (or JSON) file, `NOTIFIER_CONFIG`, default `routes.yaml` beside this module:

    defaults:
      channels: [teams, slack]          # channels of routes that name none
    routes:
      eventfn.document.sentiment.scored.v1:
        channels: [slack]               # teams and/or slack
        severity: warning               # info | good | warning | attention
        when:                           # every condition must hold, else no message
          - {field: data.compound, lte: -0.5}
        title: "Strongly negative: {subject}"
        text: "{data.most_negative_sentence}"     # optional
        facts:                                      # ordered; one `name: template` per item
          - Compound: "{data.compound:.3f}"

Conditions compare the value at `field` (a template path) with `lt`, `lte`, `gt`, `gte`
(numbers), `eq`, `ne` or `in` (a list); a missing field never satisfies a condition.
Everything is checked when the function starts: unknown keys, channels, severities,
operators and malformed placeholders raise ConfigurationError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventfn import ConfigurationError, Event

from ._template import Template, compile_template, lookup

CHANNELS = ("teams", "slack")
SEVERITIES = ("info", "good", "warning", "attention")
NUMERIC_OPERATORS = ("lt", "lte", "gt", "gte")
OPERATORS = (*NUMERIC_OPERATORS, "eq", "ne", "in")
_ROUTE_KEYS = frozenset({"channels", "severity", "when", "title", "text", "facts"})


@dataclass(frozen=True)
class Condition:
    """`field` compared with `value` by `operator`."""

    field: tuple[str, ...]
    operator: str
    value: Any

    def holds(self, event: Event) -> bool:
        actual = lookup(event, self.field)
        if actual is None:
            return False
        if self.operator in NUMERIC_OPERATORS:
            if not _is_number(actual):
                return False
            return bool(
                {
                    "lt": actual < self.value,
                    "lte": actual <= self.value,
                    "gt": actual > self.value,
                    "gte": actual >= self.value,
                }[self.operator]
            )
        if self.operator == "eq":
            return bool(actual == self.value)
        if self.operator == "ne":
            return bool(actual != self.value)
        return actual in self.value


@dataclass(frozen=True)
class Route:
    """How events of one type are announced."""

    event_type: str
    channels: tuple[str, ...]
    severity: str
    title: Template
    text: Template | None
    facts: tuple[tuple[str, Template], ...]
    when: tuple[Condition, ...]

    def applies(self, event: Event) -> bool:
        """True when every condition holds for `event`."""
        return all(condition.holds(event) for condition in self.when)


@dataclass(frozen=True)
class NotifierConfig:
    """Every route, by event type."""

    routes: Mapping[str, Route]
    source: str


def load_config(path: Path) -> NotifierConfig:
    """Read and check the configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"notifier config {path}: cannot read it ({error})") from None
    return parse_config(_parse(text, path), str(path))


def _parse(text: str, path: Path) -> Any:
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigurationError(f"notifier config {path}: not valid JSON") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigurationError(f"notifier config {path}: not valid YAML") from None


def parse_config(document: Any, where: str) -> NotifierConfig:
    """Check a parsed configuration document."""
    document = _mapping(document, where)
    unknown = set(document) - {"defaults", "routes"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    defaults = _mapping(document.get("defaults") or {}, f"{where} defaults")
    default_channels = _channels(defaults.get("channels", list(CHANNELS)), f"{where} defaults")
    routes = _mapping(document.get("routes") or {}, f"{where} routes")
    parsed = {
        event_type: _route(event_type, spec, default_channels, f"{where} routes.{event_type}")
        for event_type, spec in routes.items()
    }
    return NotifierConfig(parsed, where)


def _route(event_type: str, spec: Any, default_channels: tuple[str, ...], where: str) -> Route:
    spec = _mapping(spec, where)
    unknown = set(spec) - _ROUTE_KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    if "title" not in spec:
        raise ConfigurationError(f"{where}: a route needs a title")
    severity = spec.get("severity", "info")
    if severity not in SEVERITIES:
        raise ConfigurationError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    text = spec.get("text")
    return Route(
        event_type=event_type,
        channels=_channels(spec.get("channels", list(default_channels)), where),
        severity=severity,
        title=compile_template(spec["title"], f"{where}.title"),
        text=None if text is None else compile_template(text, f"{where}.text"),
        facts=_facts(spec.get("facts") or [], f"{where}.facts"),
        when=tuple(
            _condition(item, f"{where}.when[{index}]")
            for index, item in enumerate(_list(spec.get("when") or [], f"{where}.when"))
        ),
    )


def _channels(value: Any, where: str) -> tuple[str, ...]:
    channels = _list(value, f"{where}.channels")
    for channel in channels:
        if channel not in CHANNELS:
            raise ConfigurationError(f"{where}: channel {channel!r} is not one of {CHANNELS}")
    return tuple(dict.fromkeys(channels))


def _facts(value: Any, where: str) -> tuple[tuple[str, Template], ...]:
    facts = []
    for index, item in enumerate(_list(value, where)):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ConfigurationError(f"{where}[{index}]: write one `name: template` per fact")
        [(name, template)] = item.items()
        facts.append((str(name), compile_template(template, f"{where}[{index}]")))
    return tuple(facts)


def _condition(item: Any, where: str) -> Condition:
    item = _mapping(item, where)
    operators = [key for key in item if key != "field"]
    if "field" not in item or len(operators) != 1 or operators[0] not in OPERATORS:
        raise ConfigurationError(
            f"{where}: write {{field: data.x, <op>: value}} with one op of {', '.join(OPERATORS)}"
        )
    [placeholder] = compile_template("{" + str(item["field"]) + "}", where).placeholders
    operator = operators[0]
    value = item[operator]
    if operator in NUMERIC_OPERATORS and not _is_number(value):
        raise ConfigurationError(f"{where}: {operator} needs a number")
    if operator == "in" and not isinstance(value, list):
        raise ConfigurationError(f"{where}: in needs a list")
    return Condition(placeholder.path, operator, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigurationError(f"{where}: expected a list")
    return value
