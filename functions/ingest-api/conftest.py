"""Fixtures shared by the tests of ingest-api's authorizer: ingest-api served with a given
environment, and served with RS256, ES256 and HS256 allowed.

This folder is appended to sys.path (its modules shadow nothing there): `ingest_auth_testing`,
which puts the helpers under tests/ on it in turn, is imported by name from the root or here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent))
from ingest_auth_testing import EC, RSA, SECRET, Api, dt


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
