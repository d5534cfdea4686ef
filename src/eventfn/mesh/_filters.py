"""Trigger filters with Knative's exact semantics (knative/eventing pkg/eventfilter).

Two dialects:
- `spec.filters` (the Subscriptions API dialect, GA since v1.15): a list ANDed together, each
  entry one of `exact`, `prefix`, `suffix` (one attribute each), `all`, `any`, `not`. `cesql`
  is refused at load time with a ConfigurationError: eventfn dev does not evaluate CESQL.
- legacy `spec.filter.attributes`: exact matches ANDed; an empty value means "present with a
  non-empty value" (pkg/eventfilter/attributes/filter.go).
A non-empty `filters` takes precedence over `filter` (pkg/broker/filter/filter_handler.go).

Evaluation is three-valued like Knative's `FilterResult` (Pass, Fail, NoFilter); an event is
delivered unless the result is Fail. Consequences worth knowing:
- matching is case-sensitive, and a missing attribute never matches exact/prefix/suffix (unset
  optional core attributes read as "" and filter values are never empty);
- `any: []`, `all: []` and `{}` carry no filter and are skipped (they match everything), and
  `not` of such an empty filter is NoFilter too, so it also matches;
- `not` of a non-match matches; `any` short-circuits on the first Pass.
Attribute lookup mirrors `attributes.LookupAttribute`: core attributes always exist (unset ones
read as ""), `schemaurl` aliases `dataschema`, `datamediatype` is the media type of
`datacontenttype`, `time` is rendered as Go's RFC 3339 (nano) text, and extension attributes
exist only when the event carries them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventfn._errors import ConfigurationError
from eventfn._event import Event

if TYPE_CHECKING:
    from eventfn.mesh._topology import TriggerSpec

PASS, FAIL, NO_FILTER = 0, 1, 2
Result = int
Lookup = Callable[[str], "str | None"]
Node = Callable[[Lookup], Result]

_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")


def validate_attributes(attributes: Mapping[str, Any], where: str) -> None:
    """Check legacy `filter.attributes` the way Knative's webhook does."""
    for name, value in attributes.items():
        _check_name(name, f"{where}: filter.attributes")
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: filter.attributes.{name} must be a string")


def validate_filters(filters: list[Any], where: str) -> None:
    """Check a `filters` list; raises ConfigurationError for what Knative would reject."""
    for index, entry in enumerate(filters):
        _validate(entry, f"{where}: filters[{index}]")


def _validate(entry: Any, where: str) -> None:
    if entry is None:
        return
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} must be a mapping")
    unknown = sorted(set(entry) - set(_DIALECTS))
    if unknown:
        raise ConfigurationError(f"{where}: unknown filter dialect {unknown[0]!r}")
    if entry.get("cesql"):
        raise ConfigurationError(
            f"{where}: CESQL filters are not supported by eventfn dev; "
            "use exact/prefix/suffix/all/any/not"
        )
    present = [d for d in _DIALECTS if entry.get(d) or (d == "not" and entry.get(d) is not None)]
    if len(present) > 1:
        raise ConfigurationError(f"{where}: multiple dialects {present}; use one per entry")
    for dialect in ("exact", "prefix", "suffix"):
        if entry.get(dialect):
            _validate_single(entry[dialect], f"{where}.{dialect}")
    for dialect in ("all", "any"):
        children = entry.get(dialect)
        if children is None:
            continue
        if not isinstance(children, list):
            raise ConfigurationError(f"{where}.{dialect} must be a list")
        for index, child in enumerate(children):
            _validate(child, f"{where}.{dialect}[{index}]")
    if entry.get("not") is not None:
        _validate(entry["not"], f"{where}.not")


def _validate_single(mapping: Any, where: str) -> None:
    if not isinstance(mapping, dict) or len(mapping) != 1:
        raise ConfigurationError(f"{where} must hold exactly one attribute: value pair")
    ((name, value),) = mapping.items()
    _check_name(name, where)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}.{name} must be a non-empty string")


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name):
        raise ConfigurationError(
            f"{where}: attribute name {name!r} must start with a letter and contain only "
            "lowercase letters and digits"
        )


def compile_trigger(filters: list[dict[str, Any]], attributes: Mapping[str, str]) -> Node:
    """The predicate of one Trigger: `filters` when non-empty, else `filter.attributes`."""
    if filters:
        return _all([node for node in map(_compile, filters) if node is not None])
    if attributes:
        return _attributes(dict(attributes))
    return _no_filter


class Router:
    """Every Broker's Triggers with their compiled filters, in manifest order."""

    def __init__(self, triggers: Iterable[TriggerSpec]) -> None:
        self._routes: dict[tuple[str, str], list[tuple[str, Node]]] = {}
        for trigger in triggers:
            node = compile_trigger(trigger.filters, trigger.attributes)
            key = (trigger.namespace, trigger.broker)
            self._routes.setdefault(key, []).append((trigger.name, node))

    def match(
        self,
        event: Event,
        namespace: str,
        broker: str,
        extensions: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The names of the Triggers of Broker `namespace/broker` that accept `event`
        (with `extensions` instead of its own, when given)."""
        lookup = attribute_lookup(event, extensions)
        routes = self._routes.get((namespace, broker), ())
        return [name for name, node in routes if node(lookup) != FAIL]


def matches(node: Node, event: Event) -> bool:
    """True unless the filter fails for `event`."""
    return node(attribute_lookup(event)) != FAIL


def attribute_lookup(event: Event, extensions: Mapping[str, str] | None = None) -> Lookup:
    """Knative's `LookupAttribute` over an event: a value, "" for unset core attributes, or None."""
    cache: dict[str, str | None] = {}
    others = event.extensions if extensions is None else extensions

    def lookup(name: str) -> str | None:
        if name not in cache:
            cache[name] = _lookup(event, others, name)
        return cache[name]

    return lookup


def _lookup(event: Event, extensions: Mapping[str, str], name: str) -> str | None:
    if name in ("specversion", "type", "source", "subject", "id", "datacontenttype"):
        return getattr(event, name) or ""
    if name in ("dataschema", "schemaurl"):
        return event.dataschema or ""
    if name == "datamediatype":
        return (event.datacontenttype or "").split(";", 1)[0].strip().lower()
    if name == "datacontentencoding":
        return ""
    if name == "time":
        return go_time_text(event.time)
    return extensions.get(name)


def go_time_text(raw: str | None) -> str:
    """An RFC 3339 timestamp as Go's `time.Time.MarshalText` writes it ("" when unset)."""
    if not raw:
        return "0001-01-01T00:00:00Z"
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return raw
    text = parsed.strftime("%Y-%m-%dT%H:%M:%S")
    if parsed.microsecond:
        text += "." + f"{parsed.microsecond:06d}".rstrip("0")
    offset = parsed.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _compile(entry: dict[str, Any] | None) -> Node | None:
    if not entry:
        return None
    for dialect, build in (("exact", _exact), ("prefix", _prefix), ("suffix", _suffix)):
        if entry.get(dialect):
            ((name, value),) = entry[dialect].items()
            return build(name, value)
    if entry.get("all"):
        return _all([node for node in map(_compile, entry["all"]) if node is not None])
    if entry.get("any"):
        return _any([node for node in map(_compile, entry["any"]) if node is not None])
    if entry.get("not") is not None:
        return _not(_compile(entry["not"]))
    return None


def _no_filter(lookup: Lookup) -> Result:
    return NO_FILTER


def _exact(name: str, expected: str) -> Node:
    def node(lookup: Lookup) -> Result:
        return PASS if lookup(name) == expected else FAIL

    return node


def _prefix(name: str, prefix: str) -> Node:
    def node(lookup: Lookup) -> Result:
        value = lookup(name)
        return PASS if value is not None and value.startswith(prefix) else FAIL

    return node


def _suffix(name: str, suffix: str) -> Node:
    def node(lookup: Lookup) -> Result:
        value = lookup(name)
        return PASS if value is not None and value.endswith(suffix) else FAIL

    return node


def _attributes(attributes: dict[str, str]) -> Node:
    def node(lookup: Lookup) -> Result:
        for name, expected in attributes.items():
            value = lookup(name)
            if value is None or value == "" or expected not in ("", value):
                return FAIL
        return PASS

    return node


def _all(nodes: list[Node]) -> Node:
    if len(nodes) == 1:
        return nodes[0]

    def node(lookup: Lookup) -> Result:
        result = NO_FILTER
        for child in nodes:
            result = child(lookup)
            if result == FAIL:
                return FAIL
        return result

    return node


def _any(nodes: list[Node]) -> Node:
    def node(lookup: Lookup) -> Result:
        result = NO_FILTER
        for child in nodes:
            result = _or(result, child(lookup))
            if result == PASS:
                return PASS
        return result

    return node


def _or(left: Result, right: Result) -> Result:
    if left == NO_FILTER:
        return right
    if right == NO_FILTER:
        return left
    return PASS if PASS in (left, right) else FAIL


def _not(inner: Node | None) -> Node:
    def node(lookup: Lookup) -> Result:
        if inner is None:
            return NO_FILTER
        result = inner(lookup)
        if result == NO_FILTER:
            return NO_FILTER
        return PASS if result == FAIL else FAIL

    return node
