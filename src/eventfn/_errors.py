"""The one error hierarchy of eventfn and its mapping to HTTP problem bodies (RFC 9457).

Permanent errors (the event itself is bad) map to 4xx, which Knative does not retry and sends to
the dead-letter sink. Retryable errors (something around the event is temporarily wrong) map to
5xx/409/429, which Knative retries. Details are written by eventfn, never copied from exception
text, so nothing internal leaks to a caller.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"
_PROBLEM_URN = "urn:eventfn:problem:"


class EventfnError(Exception):
    """Base of every error eventfn turns into an HTTP answer."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    retryable: ClassVar[bool] = True

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.retry_after = retry_after

    def problem(self) -> dict[str, Any]:
        """The `application/problem+json` body for this error."""
        body: dict[str, Any] = {
            "type": _PROBLEM_URN + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "retryable": self.retryable,
        }
        if self.field is not None:
            body["field"] = self.field
        return body


# --- permanent: 4xx, not retried, dead-lettered --------------------------------------------------


class PermanentError(EventfnError):
    """The event can never succeed as sent; retrying is pointless."""

    status = 400
    code = "permanent-error"
    title = "Permanent error"
    retryable = False


class MalformedEvent(PermanentError, ValueError):
    """The request is not a valid CloudEvent (missing or bad attribute, bad JSON)."""

    code = "malformed-event"
    title = "Malformed CloudEvent"


class UnsupportedContentType(PermanentError, ValueError):
    """The request's content type is not one eventfn accepts (e.g. batch mode)."""

    status = 415
    code = "unsupported-content-type"
    title = "Unsupported content type"


class PayloadTooLarge(PermanentError, ValueError):
    """The request body exceeds the configured limit."""

    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class UnknownEventType(PermanentError, LookupError):
    """No handler of this function accepts the event's type (and subject)."""

    status = 422
    code = "unknown-event-type"
    title = "No handler for this event"


class SchemaViolation(PermanentError, ValueError):
    """The event's data does not satisfy the registered schema; `field` is its JSON path."""

    status = 422
    code = "schema-violation"
    title = "Event data violates its schema"


class UndecodableData(PermanentError, ValueError):
    """The event's data cannot be decoded for its content type (bad JSON, bad Avro)."""

    status = 422
    code = "undecodable-data"
    title = "Event data cannot be decoded"


class Rejected(PermanentError):
    """A handler refuses the event for a business reason that retrying cannot change."""

    status = 422
    code = "rejected"
    title = "Event rejected"


class Unauthorized(PermanentError):
    """Missing or invalid credentials."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(PermanentError):
    """Valid credentials without the needed permission."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


# --- retryable: 5xx / 409 / 429 ------------------------------------------------------------------


class RetryableError(EventfnError):
    """The event may succeed later; the sender should retry."""

    status = 503
    code = "retryable-error"
    title = "Temporarily unavailable"
    retryable = True


class DependencyUnavailable(RetryableError):
    """A database, bucket or downstream service cannot be reached right now."""

    code = "dependency-unavailable"
    title = "Dependency unavailable"


class DuplicateInProgress(RetryableError):
    """Another delivery of the same event is being processed right now."""

    status = 409
    code = "duplicate-in-progress"
    title = "Duplicate delivery in progress"


class RateLimited(RetryableError):
    """Too many requests; `retry_after` says when to come back."""

    status = 429
    code = "rate-limited"
    title = "Too many requests"


class InternalError(EventfnError):
    """An unexpected failure; the caller only learns the trace id to quote."""

    status = 500
    code = "internal-error"
    title = "Internal error"
    retryable = True


# --- configuration errors: raised at startup, never sent over HTTP ---------------------------


class ConfigurationError(Exception):
    """A function, schema or setting is wrong; raised before any event is served."""


class RegistrationError(ConfigurationError):
    """A handler registration is invalid (duplicate, reply loop, registration after start)."""


class HandlerNotFound(ConfigurationError, LookupError):
    """The requested function or handler does not exist; the message names those that do."""
