"""eventfn: event-driven serverless functions in Python, run as Knative Services.

The public API. Everything else lives in private modules and may change. Names are imported on
first use (PEP 562), so `from eventfn import App` in a function module does not pull in the
database, schema and telemetry stacks before they are needed: that keeps cold starts short.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventfn._app import App, Handler
    from eventfn._context import Context, Reply
    from eventfn._emitter import Emitter
    from eventfn._errors import (
        ConfigurationError,
        DependencyUnavailable,
        DuplicateInProgress,
        EventfnError,
        Forbidden,
        HandlerNotFound,
        InternalError,
        MalformedEvent,
        PayloadTooLarge,
        PermanentError,
        RateLimited,
        RegistrationError,
        Rejected,
        RetryableError,
        SchemaViolation,
        Unauthorized,
        UndecodableData,
        UnknownEventType,
        UnsupportedContentType,
    )
    from eventfn._event import Event
    from eventfn._factory import create_app
    from eventfn._settings import Settings

_ERRORS = (
    "ConfigurationError",
    "DependencyUnavailable",
    "DuplicateInProgress",
    "EventfnError",
    "Forbidden",
    "HandlerNotFound",
    "InternalError",
    "MalformedEvent",
    "PayloadTooLarge",
    "PermanentError",
    "RateLimited",
    "RegistrationError",
    "Rejected",
    "RetryableError",
    "SchemaViolation",
    "Unauthorized",
    "UndecodableData",
    "UnknownEventType",
    "UnsupportedContentType",
)
_MODULES: dict[str, str] = {
    "App": "eventfn._app",
    "Handler": "eventfn._app",
    "Context": "eventfn._context",
    "Reply": "eventfn._context",
    "Emitter": "eventfn._emitter",
    "Event": "eventfn._event",
    "Settings": "eventfn._settings",
    "create_app": "eventfn._factory",
    **dict.fromkeys(_ERRORS, "eventfn._errors"),
}

__all__ = [
    "App",
    "ConfigurationError",
    "Context",
    "DependencyUnavailable",
    "DuplicateInProgress",
    "Emitter",
    "Event",
    "EventfnError",
    "Forbidden",
    "Handler",
    "HandlerNotFound",
    "InternalError",
    "MalformedEvent",
    "PayloadTooLarge",
    "PermanentError",
    "RateLimited",
    "RegistrationError",
    "Rejected",
    "Reply",
    "RetryableError",
    "SchemaViolation",
    "Settings",
    "Unauthorized",
    "UndecodableData",
    "UnknownEventType",
    "UnsupportedContentType",
    "create_app",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'eventfn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
