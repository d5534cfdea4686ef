"""The errors of ingest-api, each with its own problem type (`urn:eventfn:problem:<code>`).

401/403 carry an RFC 6750 challenge (`WWW-Authenticate: Bearer ...`), which the routes add to the
problem response. Details are fixed texts written here, never an exception's message.
"""

from __future__ import annotations

import re

from eventfn import Forbidden, PermanentError, Unauthorized

REALM = "eventfn-ingest"
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6750 §3 scope-token


class MissingToken(Unauthorized):
    """No credentials at all: the challenge names the scheme and realm only (RFC 6750 §3.1)."""

    code = "missing-token"
    title = "Authentication required"

    def challenge(self) -> str:
        """The `WWW-Authenticate` value."""
        return f'Bearer realm="{REALM}"'


class InvalidToken(Unauthorized):
    """A bearer token that is malformed, unsigned, badly signed, expired, not yet valid, for
    another audience or issuer, or signed with an algorithm or key that is not trusted."""

    code = "invalid-token"
    title = "Invalid token"

    def challenge(self) -> str:
        """The `WWW-Authenticate` value (`error_description` is one of our fixed texts)."""
        return f'Bearer realm="{REALM}", error="invalid_token", error_description="{self.detail}"'


class InsufficientScope(Forbidden):
    """A valid token without the scope the request needs."""

    code = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"the token lacks the scope {scope}", field="scope")
        self.scope = scope

    def challenge(self) -> str:
        """The `WWW-Authenticate` value, naming the scope that is needed when it is a valid
        scope-token (the path is client input: no quotes, spaces or line breaks are echoed)."""
        base = f'Bearer realm="{REALM}", error="insufficient_scope"'
        return f'{base}, scope="{self.scope}"' if _SCOPE_TOKEN.match(self.scope) else base


AuthError = MissingToken | InvalidToken | InsufficientScope


class UnknownEventType(PermanentError, LookupError):
    """The path names an event type the schema registry does not know."""

    status = 404
    code = "unknown-event-type"
    title = "Unknown event type"


class UnknownUploadPrefix(PermanentError, LookupError):
    """The path names an upload prefix that is not on the allow-list."""

    status = 404
    code = "unknown-upload-prefix"
    title = "Unknown upload prefix"


class InvalidIdempotencyKey(PermanentError, ValueError):
    """The `Idempotency-Key` header is empty, too long or not printable ASCII."""

    code = "invalid-idempotency-key"
    title = "Invalid Idempotency-Key"


class InvalidUpload(PermanentError, ValueError):
    """A multipart upload without exactly one usable `file` part."""

    code = "invalid-upload"
    title = "Invalid upload"
