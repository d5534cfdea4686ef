"""The Lambda-authorizer half of ingest-api: `Authorization: Bearer <JWT>` -> a `Principal`.

Order of checks (RFC 8725): the header's `alg` must be on the allow-list (so `none` never is);
the key is chosen by (`alg`, `kid`) among keys bound to that algorithm; PyJWT then verifies the
signature with that key and only the allow-listed algorithms, and the claims: `exp` and `sub`
always required, `iss` and `aud` when configured (aud always is), `nbf`/`iat`/`exp` with a
small leeway, RSA keys >= 2048 bits and HMAC secrets >= 32 bytes. Scopes come from `scope`
(space separated) or `scp` (a list, or a string).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from ._config import IngestConfig
from ._errors import InsufficientScope, InvalidToken, MissingToken
from ._keys import FileSource, JwksSource, KeyRing, UrlSource, secret_key

MAX_TOKEN_BYTES = 8192
ANONYMOUS = "anonymous"
_FAILURES: tuple[tuple[type[PyJWTError], str], ...] = (
    (ExpiredSignatureError, "the token has expired"),
    (ImmatureSignatureError, "the token is not valid yet"),
    (InvalidAudienceError, "the token is not meant for this audience"),
    (InvalidIssuerError, "the token was not issued by the trusted issuer"),
    (InvalidSignatureError, "the token signature is invalid"),
    (InvalidAlgorithmError, "the token algorithm is not allowed"),
    (InvalidKeyError, "the token key is not acceptable"),
)


@dataclass(frozen=True)
class Principal:
    """Who sent the request: the token's subject and scopes."""

    subject: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        """InsufficientScope (403) unless the token grants `scope`."""
        if scope not in self.scopes:
            raise InsufficientScope(scope)


UNCHECKED = Principal(ANONYMOUS, frozenset())


class Authenticator:
    """Verifies bearer tokens against the configured algorithms and keys."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.keyring = _keyring(config)
        self._secret = secret_key(config.secret) if config.secret is not None else None
        required = ["exp", "sub", "aud"] + (["iss"] if config.issuer else [])
        self._options: Any = {
            "require": required,
            "verify_sub": True,
            "enforce_minimum_key_length": True,
        }

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of a request's Authorization header; MissingToken / InvalidToken."""
        if not self.config.auth:
            return UNCHECKED
        token = _bearer(authorization)
        header = _header(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.config.algorithms:
            raise InvalidToken("the token algorithm is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token kid is not a string")
        key = self._key(algorithm, kid)
        claims = self._verify(token, key)
        return Principal(claims["sub"], _scopes(claims))

    def require(self, principal: Principal, scope: str) -> None:
        """Check a scope (nothing to check with auth off)."""
        if self.config.auth:
            principal.require(scope)

    def _key(self, algorithm: str, kid: str | None) -> PyJWK:
        if algorithm == "HS256":
            key = self._secret
        elif self.keyring is None:
            key = None
        else:
            key = self.keyring.find(algorithm, kid)
        if key is None:
            raise InvalidToken("no trusted key matches the token")
        return key

    def _verify(self, token: str, key: PyJWK) -> dict[str, Any]:
        config = self.config
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway,
                options=self._options,
            )
        except MissingRequiredClaimError as error:
            raise InvalidToken(f"the token has no {_claim_name(error.claim)} claim") from None
        except PyJWTError as error:
            raise InvalidToken(_failure(error)) from None
        if not claims["sub"]:
            raise InvalidToken("the token has an empty sub claim")
        return claims


def _keyring(config: IngestConfig) -> KeyRing | None:
    if not config.auth or not config.asymmetric:
        return None
    source: JwksSource | None = None
    if config.jwks_file is not None:
        source = FileSource(config.jwks_file)
    elif config.jwks_url is not None:
        source = UrlSource(config.jwks_url)
    if source is None:
        return None
    return KeyRing(source, config.asymmetric, config.jwks_ttl)


def _bearer(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise MissingToken("send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("the Authorization header is not a Bearer token")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("the token is too long")
    return token


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to choose the key; PyJWT then parses the whole token strictly
    (and refuses it if its reading differs), so this saves a second full parse, nothing more."""
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken("the token is malformed")
    head = segments[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidToken("the token is malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("the token is malformed")
    return header


def _failure(error: PyJWTError) -> str:
    for kind, text in _FAILURES:
        if isinstance(error, kind):
            return text
    return "the token is invalid"


def _claim_name(claim: str) -> str:
    return claim if claim in ("exp", "sub", "aud", "iss") else "required"


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)
