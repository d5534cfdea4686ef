"""Shared by the tests of ingest-api's authorizer: the trusted keys and secret, the scope an order
needs, the challenges it answers, and ingest-api served through the WSGI test client.

Importable by name: conftest.py puts this folder on sys.path.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import domain_testing as dt  # noqa: E402

ORDER = dt.ORDER
SCOPE = f"events:write:{ORDER}"
RSA = dt.SigningKey.rsa("rsa-1")
EC = dt.SigningKey.ec("ec-1")
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
