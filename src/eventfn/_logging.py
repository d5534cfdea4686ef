"""Structured JSON logs that carry the trace id and the event being processed.

`configure_logging` installs one JSON handler on the ``eventfn`` logger (never on the root logger,
never at import time). Every record is one JSON object per line::

    {"time": "2026-05-09T07:35:25.123Z", "level": "INFO", "logger": "eventfn.pipeline",
     "message": "event processed", "service": "csv-ingest", "trace_id": "4bf9...", ...}

`log_context` binds fields such as ``trace_id``, ``event_id`` or ``event_type`` to the current
context (a `contextvars.ContextVar`, so threads and asyncio tasks stay apart); every record logged
inside the block carries them. Fields given with ``extra=`` are added as well. Exceptions become an
``exc_type`` field (the class name) and a ``stack`` field (the formatted traceback): logs are for
operators, and the HTTP layer never sends them to a caller.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TextIO

from eventfn._errors import ConfigurationError

ROOT_LOGGER = "eventfn"

_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar(
    "eventfn_log_context", default=MappingProxyType({})
)
_RECORD_CONTEXT = "eventfn_context"
_BASE_FIELDS = frozenset({"time", "level", "logger", "message", "service", "exc_type", "stack"})
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
        _RECORD_CONTEXT,
    }
)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add `fields` to every record logged inside the block; None values are left out.

    Blocks nest: inner fields are added to (and override) the outer ones, and leaving a block
    restores the outer fields.
    """
    current = _CONTEXT.get()
    merged = dict(current)
    merged.update((key, value) for key, value in fields.items() if value is not None)
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see the module docstring)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        context = getattr(record, _RECORD_CONTEXT, None)
        for key, value in (_CONTEXT.get() if context is None else context).items():
            if key not in _BASE_FIELDS:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in _BASE_FIELDS:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["stack"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)


def _rfc3339(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class _ContextFilter(logging.Filter):
    """Copies the current log context onto the record in the logging thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, _RECORD_CONTEXT, _CONTEXT.get())
        return True


class _JsonHandler(logging.StreamHandler[TextIO]):
    """The one handler `configure_logging` installs; its class marks it as ours."""


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send the ``eventfn`` logger's records to `stream` (default stderr) as JSON lines.

    Idempotent: a second call updates the existing handler (service, level, stream) instead of
    adding another. The logger stops propagating to the root logger, which stays untouched.
    Raises ConfigurationError for an unknown level name.
    """
    numeric = logging.getLevelName(level.strip().upper())
    if not isinstance(numeric, int):
        raise ConfigurationError(
            f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    logger = logging.getLogger(ROOT_LOGGER)
    target = sys.stderr if stream is None else stream
    handler = next((h for h in logger.handlers if isinstance(h, _JsonHandler)), None)
    if handler is None:
        handler = _JsonHandler(target)
        handler.addFilter(_ContextFilter())
        logger.addHandler(handler)
    elif handler.stream is not target:
        handler.setStream(target)
    handler.setFormatter(JsonFormatter(service))
    logger.setLevel(numeric)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    """A logger under ``eventfn`` (``get_logger("pipeline")`` -> ``eventfn.pipeline``)."""
    if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT_LOGGER}.{name}")
