"""What every log format parser produces, and the helpers they share (times, levels).

A parser takes one line (without its newline) and returns a `ParsedLine` or None when the
line is not in its format. A parsed line has a time (None when the format allows lines without
one), the value of the format's dimension (a level name, or a status class such as `5xx`) and,
where the format has it, a latency in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

LEVEL = "level"
STATUS_CLASS = "status_class"
UNKNOWN_LEVEL = "UNKNOWN"
MAX_VALUE_CHARS = 32  # log_metrics.value

# Syslog severities (RFC 5424 section 6.2.1) by number, and the names used for all levels.
SEVERITIES = ("EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")
_LEVEL_ALIASES = {
    "EMERG": "EMERGENCY",
    "PANIC": "EMERGENCY",
    "CRIT": "CRITICAL",
    "ERR": "ERROR",
    "WARN": "WARNING",
    "INFORMATION": "INFO",
    "INFORMATIONAL": "INFO",
    "DBG": "DEBUG",
    "TRC": "TRACE",
}
# Numeric levels as pino and bunyan (the JSON loggers that write numbers) define them.
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARNING", 50: "ERROR", 60: "FATAL"}


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One understood line."""

    at: datetime | None
    value: str
    latency_ms: float | None = None

    @property
    def minute(self) -> str | None:
        """`YYYY-MM-DDTHH:MM` in UTC, None for a line without a time."""
        return None if self.at is None else minute_of(self.at)


Parser = Callable[[str], "ParsedLine | None"]


@dataclass(frozen=True)
class LogFormat:
    """A named format: its parser and the dimension its lines are counted by."""

    name: str
    dimension: str
    parse: Parser


@lru_cache(maxsize=4096)
def minute_of(at: datetime) -> str:
    """`YYYY-MM-DDTHH:MM` of `at` in UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def level_name(raw: object) -> str:
    """A level as written by a logger -> its canonical upper-case name (`warn` -> `WARNING`)."""
    if isinstance(raw, bool) or raw is None:
        return UNKNOWN_LEVEL
    if isinstance(raw, int | float):
        number = int(raw)
        return _NUMERIC_LEVELS.get(number, str(number))
    name = "_".join(str(raw).upper().split())
    if not name:
        return UNKNOWN_LEVEL
    return _LEVEL_ALIASES.get(name, name)[:MAX_VALUE_CHARS]


def severity_name(priority: int) -> str:
    """The level of a syslog PRI value (facility * 8 + severity)."""
    return SEVERITIES[priority % 8]


def iso_time(text: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 time (`Z`, offsets, `,` fractions); naive times are UTC."""
    candidate = text.strip()
    if len(candidate) < 10 or not candidate[:4].isdigit():
        return None
    if len(candidate) > 19 and candidate[19] == ",":  # Python logging's default asctime
        candidate = candidate[:19] + "." + candidate[20:]
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def epoch_time(value: float) -> datetime | None:
    """Seconds (or milliseconds / microseconds, told apart by magnitude) since the epoch."""
    seconds = float(value)
    if seconds > 1e14:
        seconds /= 1e6
    elif seconds > 1e11:
        seconds /= 1e3
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
