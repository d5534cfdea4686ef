"""ingest-api's authorizer with valid tokens and the keys it trusts: a JWKS file, a JWKS URL served
on loopback (cached, reloaded once for a rotated key, unreachable or unusable), weak keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import domain_testing as dt
import jwt
import pytest
from ingest_auth_testing import EC, RSA, SCOPE, SECRET, Api, invalid
from jwt.warnings import InsecureKeyLengthWarning
from loopback_testing import free_port


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
