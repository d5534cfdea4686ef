"""ingest-api's authorizer settings: insecure ones stop the function, turning authentication off
needs an explicit switch, and a crafted path never reaches the challenge."""

from __future__ import annotations

from collections.abc import Callable

import domain_testing as dt
import pytest
from ingest_auth_testing import REALM, RSA, SCOPE, Api

from eventfn import ConfigurationError


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
