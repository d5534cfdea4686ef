"""eventfn: event-driven serverless functions in Python, run as Knative Services.

The public API. Everything else lives in private modules and may change.
"""

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
