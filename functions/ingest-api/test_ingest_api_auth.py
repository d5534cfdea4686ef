"""ingest-api's authorizer against real tokens: RSA and EC keys generated here, a JWKS file and a
JWKS URL served on loopback, PyJWT-signed and hand-forged tokens. Every attack must be refused
with the right status, problem type and WWW-Authenticate challenge — and publish nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from eventfn import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import domain_testing as dt  # noqa: E402
from loopback_testing import free_port  # noqa: E402

ORDER = dt.ORDER
SCOPE = f"events:write:{ORDER}"
RSA = dt.SigningKey.rsa("rsa-1")
EC = dt.SigningKey.ec("ec-1")
ATTACKER = dt.SigningKey.rsa("rsa-1")  # same kid as the trusted key, different key pair
SECRET = secrets.token_urlsafe(48)
REALM = 'Bearer realm="eventfn-ingest"'


def invalid(description: str) -> str:
    return f'{REALM}, error="invalid_token", error_description="{description}"'


@dataclass
class Api:
    client: Any
    sink: Any

    def post(self, headers: dict[str, str], data: Any = dt.ORDER_DATA) -> Any:
        return dt.post_json(self.client, ORDER, data, **headers)


@pytest.fixture
def serve_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Api]]:
    """ingest-api with the given environment (default: RS256, ES256 and HS256 allowed)."""
    with ExitStack() as stack:

        def start(**env: str) -> Api:
            dt.ingest_env(monkeypatch, **env)
            sink = stack.enter_context(dt.sink_server())
            wsgi = stack.enter_context(dt.serve("ingest-api", dt.settings(tmp_path, sink)))
            return Api(wsgi.test_client(), sink)

        yield start


@pytest.fixture
def api(serve_api: Callable[..., Api], tmp_path: Path) -> Api:
    return serve_api(
        INGEST_JWT_ALGORITHMS="RS256,ES256,HS256",
        INGEST_JWT_SECRET=SECRET,
        INGEST_JWT_ISSUER=dt.ISSUER,
        INGEST_JWT_AUDIENCE=dt.AUDIENCE,
        INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "jwks.json", RSA, EC)),
    )


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


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: RSA.sign(dt.claims(SCOPE)), id="RS256"),
        pytest.param(lambda: EC.sign(dt.claims(SCOPE)), id="ES256"),
        pytest.param(
            lambda: jwt.encode(dt.claims(SCOPE), SECRET, algorithm="HS256"), id="HS256-secret"
        ),
        pytest.param(lambda: RSA.sign(dt.claims(scp=[SCOPE], scope=None)), id="scp-list"),
        pytest.param(
            lambda: RSA.sign(dt.claims(SCOPE, exp=int(time.time()) - 5)), id="expired-in-leeway"
        ),
    ],
)
def test_valid_tokens_are_accepted(api: Api, token: Callable[[], str]) -> None:
    response = api.post(dt.bearer(token()))
    assert response.status_code == 202, response.get_data(as_text=True)
    assert len(api.sink.received) == 1


def test_a_single_key_jwks_accepts_a_token_without_kid(
    serve_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = serve_api(
        INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "one.json", RSA)),
        INGEST_JWT_AUDIENCE=dt.AUDIENCE,
    )
    token = jwt.encode(dt.claims(SCOPE), RSA.private, algorithm="RS256")
    assert api.post(dt.bearer(token)).status_code == 202


def test_without_hs256_on_the_allow_list_the_confused_token_is_refused_by_algorithm(
    serve_api: Callable[..., Api], tmp_path: Path
) -> None:
    api = serve_api(INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "jwks.json", RSA, EC)))
    response = api.post(dt.bearer(_hs256(dt.claims(SCOPE), RSA.public_pem(), kid="rsa-1")))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == invalid("the token algorithm is not allowed")
    assert api.post(dt.bearer(RSA.sign(dt.claims(SCOPE)))).status_code == 202


def test_a_1024_bit_rsa_key_in_the_jwks_is_not_acceptable(
    serve_api: Callable[..., Api], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = dt.SigningKey(
        "weak", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024)
    )
    api = serve_api(INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "jwks.json", weak)))
    with pytest.warns(InsecureKeyLengthWarning):
        token = weak.sign(dt.claims(SCOPE))
    response = api.post(dt.bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == invalid("the token key is not acceptable")


# -- a JWKS URL on loopback ------------------------------------------------------------------------


def test_jwks_url_keys_are_fetched_once_and_cached(serve_api: Callable[..., Api]) -> None:
    with dt.jwks_server(dt.jwks(RSA)) as server:
        api = serve_api(INGEST_JWKS_URL=server.url)
        for _ in range(3):
            assert api.post(dt.bearer(RSA.sign(dt.claims(SCOPE)))).status_code == 202
        assert server.requests == 1


def test_jwks_url_with_ttl_zero_is_fetched_for_every_token(serve_api: Callable[..., Api]) -> None:
    with dt.jwks_server(dt.jwks(RSA)) as server:
        api = serve_api(INGEST_JWKS_URL=server.url, INGEST_JWKS_TTL_SECONDS="0")
        for _ in range(3):
            assert api.post(dt.bearer(RSA.sign(dt.claims(SCOPE)))).status_code == 202
        assert server.requests == 4  # the start hook's preload, then one per token


def test_a_rotated_key_is_found_by_one_early_reload_and_unknown_kids_cannot_force_more(
    serve_api: Callable[..., Api],
) -> None:
    rotated = dt.SigningKey.ec("ec-2026")
    with dt.jwks_server(dt.jwks(RSA)) as server:
        api = serve_api(INGEST_JWKS_URL=server.url)
        assert api.post(dt.bearer(RSA.sign(dt.claims(SCOPE)))).status_code == 202
        server.document = dt.jwks(RSA, rotated)
        assert api.post(dt.bearer(rotated.sign(dt.claims(SCOPE)))).status_code == 202
        assert server.requests == 2
        ghost = dt.SigningKey("ghost", "RS256", RSA.private)
        for _ in range(3):
            assert api.post(dt.bearer(ghost.sign(dt.claims(SCOPE)))).status_code == 401
        assert server.requests == 2  # the forced reload happened < 10 s ago


def test_an_unreachable_jwks_url_answers_503_not_401(serve_api: Callable[..., Api]) -> None:
    api = serve_api(INGEST_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json")
    response = api.post(dt.bearer(RSA.sign(dt.claims(SCOPE))))
    assert response.status_code == 503
    assert dt.problem(response)["type"] == "urn:eventfn:problem:dependency-unavailable"
    assert api.sink.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.com/jwks.json",  # plain http to a remote host: keys could be forged
        "Kq3vX9-not-a-url",  # what `eventfn dev` puts in an unset secretKeyRef
    ],
)
def test_an_unusable_jwks_url_starts_but_refuses_rs256_tokens(
    serve_api: Callable[..., Api], url: str
) -> None:
    api = serve_api(INGEST_JWKS_URL=url)
    response = api.post(dt.bearer(RSA.sign(dt.claims(SCOPE))))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == invalid("no trusted key matches the token")


# -- configuration guards ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"INGEST_AUTH": "off"}, id="auth-off-without-allow-insecure"),
        pytest.param({"INGEST_VALIDATE": "off"}, id="validate-off-without-allow-insecure"),
        pytest.param({"INGEST_JWT_ALGORITHMS": "RS256,none"}, id="none-on-the-allow-list"),
        pytest.param({"INGEST_JWT_ALGORITHMS": "HS256"}, id="hs256-without-secret"),
        pytest.param(
            {"INGEST_JWT_ALGORITHMS": "HS256", "INGEST_JWT_SECRET": "short"}, id="hs256-weak-secret"
        ),
    ],
)
def test_insecure_settings_stop_the_function(
    serve_api: Callable[..., Api], env: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError):
        serve_api(**env)


def test_auth_off_needs_the_explicit_switch_and_says_so_loudly(
    serve_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    api = serve_api(INGEST_AUTH="off", EVENTFN_ALLOW_INSECURE="1")
    assert "AUTHENTICATION IS OFF" in caplog.text
    assert api.post({}).status_code == 202


def test_a_crafted_type_in_the_path_is_not_echoed_into_the_challenge(api: Api) -> None:
    token = dt.bearer(RSA.sign(dt.claims(SCOPE)))
    response = api.client.post(
        "/v1/events/x%22%0D%0AX-Injected:%201",
        data=b"{}",
        headers={**token, "content-type": "application/json"},
    )
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == f'{REALM}, error="insufficient_scope"'
    assert "X-Injected" not in response.headers
