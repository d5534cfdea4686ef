"""Message templates: text with `{data.field}` placeholders, filled from an event — no eval.

A placeholder names a path: `data` followed by dotted keys or list indices
(`{data.items.0.sku}`), or one of the event attributes `id`, `source`, `type`, `subject`,
`time`. An optional format spec follows a colon (`{data.compound:+.2f}`), restricted to
alignment, sign, width (two digits), precision and type, and applied only where `format()`
accepts it. `{{` and `}}` are literal braces. Values render safely:
- a missing path or null is "—"; booleans are "yes"/"no"; numbers use `g` unless a spec is given;
- a list joins its items with ", " (objects with "; "), an object is "key=value, ...";
- every value is cut at `MAX_VALUE` characters with "…".
Templates are compiled when the configuration is loaded, so a typo stops the function at start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventfn import ConfigurationError, Event

MISSING = "—"
MAX_VALUE = 300
ATTRIBUTES = ("id", "source", "type", "subject", "time")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|[0-9]+")
_SPEC = re.compile(r"[<>^]?[+\- ]?#?0?[0-9]{0,2}[,_]?(?:\.[0-9]{1,2})?[sdfgeEn%xXob]?")


@dataclass(frozen=True)
class Placeholder:
    """One `{path:spec}`."""

    path: tuple[str, ...]
    spec: str

    def render(self, event: Event) -> str:
        return render_value(lookup(event, self.path), self.spec)


@dataclass(frozen=True)
class Template:
    """A compiled template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    def render(self, event: Event) -> str:
        """The text for `event`."""
        return "".join(p if isinstance(p, str) else p.render(event) for p in self.parts)

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))


def compile_template(text: str, where: str) -> Template:
    """Parse `text`; ConfigurationError naming `where` for a malformed placeholder."""
    if not isinstance(text, str):
        raise ConfigurationError(f"{where}: a template must be a string")
    parts: list[str | Placeholder] = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif match.group(1) is None:
            raise ConfigurationError(f"{where}: unmatched {token!r} (write {token * 2} for one)")
        else:
            parts.append(_placeholder(match.group(1), where))
    parts.append(text[position:])
    return Template(text, tuple(part for part in parts if part != ""))


def _placeholder(inner: str, where: str) -> Placeholder:
    path_text, _, spec = inner.partition(":")
    segments = tuple(path_text.strip().split("."))
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise ConfigurationError(f"{where}: {{{inner}}} is not a field path like data.key")
    root = segments[0]
    if root != "data" and (root not in ATTRIBUTES or len(segments) > 1):
        names = ", ".join(ATTRIBUTES)
        raise ConfigurationError(f"{where}: {{{inner}}} must start with data. or be one of {names}")
    if spec and not _SPEC.fullmatch(spec):
        raise ConfigurationError(f"{where}: {{{inner}}} has an unsupported format spec")
    return Placeholder(segments, spec)


def lookup(event: Event, path: tuple[str, ...]) -> Any:
    """The value at `path` in the event (None when any step is missing)."""
    if path[0] != "data":
        return event.attribute(path[0])
    value: Any = event.data
    for segment in path[1:]:
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
        if value is None:
            return None
    return value


def render_value(value: Any, spec: str = "") -> str:
    """A value as message text (see the module docstring)."""
    return _cut(_text(value, spec))


def _text(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, list | Mapping) and not value):
        return MISSING
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_text(item, '')}" for key, item in value.items())
    if isinstance(value, list):
        separator = "; " if any(isinstance(item, Mapping) for item in value) else ", "
        return separator.join(_text(item, "") for item in value)
    return _scalar(value, spec)


def _scalar(value: Any, spec: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float | str):
        return MISSING
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            pass
    return format(value, "g") if isinstance(value, float) else str(value)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
