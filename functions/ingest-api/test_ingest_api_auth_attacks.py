"""ingest-api's authorizer against forged tokens: RSA and EC keys generated here, PyJWT-signed and
hand-forged tokens. Every attack must be refused with the right status, problem type and
WWW-Authenticate challenge — and publish nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import domain_testing as dt
import pytest
from ingest_auth_testing import EC, REALM, RSA, SCOPE, Api, invalid

ATTACKER = dt.SigningKey.rsa("rsa-1")  # same kid as the trusted key, different key pair


def _hs256(claims: dict[str, Any], key: bytes, kid: str | None = None) -> str:
    """HS256 by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = (
        f"{dt.b64url(json.dumps(header).encode())}.{dt.b64url(json.dumps(claims).encode())}"
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{dt.b64url(signature)}"


def _tampered() -> str:
    head, _, signature = RSA.sign(dt.claims("events:write:other")).split(".")
    forged = dt.b64url(json.dumps(dt.claims(SCOPE)).encode())
    return f"{head}.{forged}.{signature}"


def _embedded_jwk() -> str:
    attacker = dt.SigningKey.rsa("attacker")
    return attacker.sign(dt.claims(SCOPE), jwk=attacker.jwk())


def _without(claim: str) -> dict[str, Any]:
    return dt.claims(SCOPE, **{claim: None})


ATTACKS: list[tuple[str, Callable[[], dict[str, str]], int, str, str]] = [
    ("no credentials", lambda: {}, 401, "missing-token", REALM),
    (
        "basic auth instead of bearer",
        lambda: {"Authorization": "Basic dXNlcjpwYXNz"},
        401,
        "invalid-token",
        invalid("the Authorization header is not a Bearer token"),
    ),
    (
        "not a JWT",
        lambda: dt.bearer("not.a.jwt"),
        401,
        "invalid-token",
        invalid("the token is malformed"),
    ),
    (
        "alg none",
        lambda: dt.bearer(dt.unsigned_token(dt.claims(SCOPE), {"alg": "none", "typ": "JWT"})),
        401,
        "invalid-token",
        invalid("the token algorithm is not allowed"),
    ),
    (
        "alg NoNe",
        lambda: dt.bearer(dt.unsigned_token(dt.claims(SCOPE), {"alg": "NoNe", "kid": "rsa-1"})),
        401,
        "invalid-token",
        invalid("the token algorithm is not allowed"),
    ),
    (
        "HS256 signed with the RSA public key PEM (key confusion)",
        lambda: dt.bearer(_hs256(dt.claims(SCOPE), RSA.public_pem(), kid="rsa-1")),
        401,
        "invalid-token",
        invalid("the token signature is invalid"),
    ),
    (
        "HS256 with a guessed secret",
        lambda: dt.bearer(_hs256(dt.claims(SCOPE), b"x" * 48)),
        401,
        "invalid-token",
        invalid("the token signature is invalid"),
    ),
    (
        "ES256 header naming the RSA key",
        lambda: dt.bearer(dt.SigningKey("rsa-1", "ES256", EC.private).sign(dt.claims(SCOPE))),
        401,
        "invalid-token",
        invalid("no trusted key matches the token"),
    ),
    (
        "expired",
        lambda: dt.bearer(RSA.sign(dt.claims(SCOPE, exp=int(time.time()) - 3600))),
        401,
        "invalid-token",
        invalid("the token has expired"),
    ),
    (
        "not yet valid",
        lambda: dt.bearer(RSA.sign(dt.claims(SCOPE, nbf=int(time.time()) + 3600))),
        401,
        "invalid-token",
        invalid("the token is not valid yet"),
    ),
    (
        "wrong audience",
        lambda: dt.bearer(RSA.sign(dt.claims(SCOPE, aud="another-api"))),
        401,
        "invalid-token",
        invalid("the token is not meant for this audience"),
    ),
    (
        "wrong issuer",
        lambda: dt.bearer(RSA.sign(dt.claims(SCOPE, iss="https://evil.example/"))),
        401,
        "invalid-token",
        invalid("the token was not issued by the trusted issuer"),
    ),
    (
        "unknown kid",
        lambda: dt.bearer(dt.SigningKey("rsa-9", "RS256", RSA.private).sign(dt.claims(SCOPE))),
        401,
        "invalid-token",
        invalid("no trusted key matches the token"),
    ),
    (
        "attacker key under a trusted kid",
        lambda: dt.bearer(ATTACKER.sign(dt.claims(SCOPE))),
        401,
        "invalid-token",
        invalid("the token signature is invalid"),
    ),
    (
        "payload tampered after signing",
        lambda: dt.bearer(_tampered()),
        401,
        "invalid-token",
        invalid("the token signature is invalid"),
    ),
    (
        "own key embedded in the jwk header",
        lambda: dt.bearer(_embedded_jwk()),
        401,
        "invalid-token",
        invalid("no trusted key matches the token"),
    ),
    (
        "no exp",
        lambda: dt.bearer(RSA.sign(_without("exp"))),
        401,
        "invalid-token",
        invalid("the token has no exp claim"),
    ),
    (
        "no sub",
        lambda: dt.bearer(RSA.sign(_without("sub"))),
        401,
        "invalid-token",
        invalid("the token has no sub claim"),
    ),
    (
        "oversized token",
        lambda: dt.bearer(RSA.sign(dt.claims(SCOPE, padding="x" * 9000))),
        401,
        "invalid-token",
        invalid("the token is too long"),
    ),
    (
        "valid token without the type's scope",
        lambda: dt.bearer(RSA.sign(dt.claims("events:write:eventfn.echo.requested.v1"))),
        403,
        "insufficient-scope",
        f'{REALM}, error="insufficient_scope", scope="{SCOPE}"',
    ),
]


@pytest.mark.parametrize(
    ("headers", "status", "code", "challenge"),
    [case[1:] for case in ATTACKS],
    ids=[case[0] for case in ATTACKS],
)
def test_attacks_are_refused_with_a_problem_and_a_challenge(
    api: Api, headers: Callable[[], dict[str, str]], status: int, code: str, challenge: str
) -> None:
    response = api.post(headers())
    assert response.status_code == status
    body = dt.problem(response)
    assert body["type"] == f"urn:eventfn:problem:{code}"
    assert body["status"] == status and body["retryable"] is False
    assert response.headers["www-authenticate"] == challenge
    assert api.sink.received == []


def test_without_hs256_on_the_allow_list_the_confused_token_is_refused_by_algorithm(
    serve_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = serve_api(INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "jwks.json", RSA, EC)))
    response = api.post(dt.bearer(_hs256(dt.claims(SCOPE), RSA.public_pem(), kid="rsa-1")))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == invalid("the token algorithm is not allowed")
    assert api.post(dt.bearer(RSA.sign(dt.claims(SCOPE)))).status_code == 202
