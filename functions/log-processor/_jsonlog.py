"""JSON lines: one JSON object per line, as structured loggers write them.

- time: the first of `timestamp`, `@timestamp`, `time`, `ts`, `datetime`, `date` holding an
  ISO 8601 string or a number of seconds / milliseconds since the epoch; a line without one is
  parsed but has no minute.
- level: the first of `level`, `severity`, `levelname`, `lvl`, `loglevel`, `log_level`,
  `log.level` (flat or nested), names or pino/bunyan numbers; absent -> `UNKNOWN`.
- latency: `*_ms` fields (`duration_ms`, `latency_ms`, `response_time_ms`, `elapsed_ms`,
  `took_ms`, `request_time_ms`) are milliseconds; `*_s`/`*_seconds` fields and `request_time`
  (nginx's JSON log) are seconds; the bare `response_time`, `responseTime`, `duration`,
  `latency`, `elapsed`, `took` are milliseconds unless the value is a string with a unit
  (`"12ms"`, `"1.5s"`, `"250us"`).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from ._formats import UNKNOWN_LEVEL, ParsedLine, epoch_time, iso_time, level_name

TIME_FIELDS = ("timestamp", "@timestamp", "time", "ts", "datetime", "date")
LEVEL_FIELDS = ("level", "severity", "levelname", "lvl", "loglevel", "log_level", "log.level")
LATENCY_FIELDS: tuple[tuple[str, float], ...] = (
    ("duration_ms", 1.0),
    ("latency_ms", 1.0),
    ("response_time_ms", 1.0),
    ("elapsed_ms", 1.0),
    ("took_ms", 1.0),
    ("request_time_ms", 1.0),
    ("duration_s", 1000.0),
    ("duration_seconds", 1000.0),
    ("latency_s", 1000.0),
    ("latency_seconds", 1000.0),
    ("response_time_s", 1000.0),
    ("request_time", 1000.0),
    ("response_time", 1.0),
    ("responseTime", 1.0),
    ("duration", 1.0),
    ("latency", 1.0),
    ("elapsed", 1.0),
    ("took", 1.0),
)
_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_WITH_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m)?\s*$")


def parse_json(line: str) -> ParsedLine | None:
    """A JSON object line, or None."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    level = _first(document, LEVEL_FIELDS)
    return ParsedLine(
        at=_time(document),
        value=UNKNOWN_LEVEL if level is None else level_name(level),
        latency_ms=_latency(document),
    )


def _lookup(document: dict[str, Any], name: str) -> Any:
    """`document[name]`, or for a dotted name also the nested `document[a][b]`."""
    if name in document:
        return document[name]
    node: Any = document
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _first(document: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = _lookup(document, name)
        if value is not None and value != "":
            return value
    return None


def _time(document: dict[str, Any]) -> datetime | None:
    for name in TIME_FIELDS:
        value = _lookup(document, name)
        if isinstance(value, str):
            parsed = iso_time(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = epoch_time(value)
        else:
            continue
        if parsed is not None:
            return parsed
    return None


def _latency(document: dict[str, Any]) -> float | None:
    for name, scale in LATENCY_FIELDS:
        value = _lookup(document, name)
        if value is None or isinstance(value, bool):
            continue
        milliseconds = _milliseconds(value, scale)
        if milliseconds is not None:
            return milliseconds
    return None


def _milliseconds(value: Any, scale: float) -> float | None:
    if isinstance(value, int | float):
        number = float(value) * scale
    elif isinstance(value, str) and (match := _WITH_UNIT.match(value)):
        unit = match.group(2)
        number = float(match.group(1)) * (_UNITS[unit] if unit else scale)
    else:
        return None
    return round(number, 6) if math.isfinite(number) and number >= 0 else None
