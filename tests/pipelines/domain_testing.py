"""Test helpers of the domain family (ingest-api, inventory-updater): a loopback broker stand-in
recording what it receives, real signing keys (RSA, EC) with their JWKS, a loopback JWKS server,
tokens, and the function apps served through the WSGI test client.

Imported by name (tests/conftest.py puts this directory on sys.path), like documents_testing.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from loopback_testing import Sink, serving, sink_server
from sqlalchemy import select

from eventfn import Event, Settings, create_app
from eventfn._codec import encode_binary
from eventfn._inventory import StockItem, seed
from eventfn._store import create_engine_from_url, upgrade
from eventfn._tables_domain import inventory_items, inventory_orders
from eventfn._tracing import Tracer
from eventfn._wsgi import FunctionWSGI

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://auth.eventfn.test/"
AUDIENCE = "eventfn-ingest"
ORDER = "eventfn.order.confirmed.v1"
UPDATED = "eventfn.inventory.updated.v1"
REJECTED = "eventfn.inventory.rejected.v1"
USER_UPDATED = "eventfn.user.updated.v1"


# -- keys, JWKS and tokens -------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key, its key id and its algorithm."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str = "rsa-1") -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str = "ec-1") -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        """The public JWK, with kid, alg and use."""
        algorithm = RSAAlgorithm if self.algorithm.startswith("RS") else ECAlgorithm
        document: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**document, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, claims: Mapping[str, Any], **headers: Any) -> str:
        return jwt.encode(
            dict(claims),
            self.private,
            algorithm=self.algorithm,
            headers={"kid": self.kid, **headers},
        )


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims(scope: str = "", **overrides: Any) -> dict[str, Any]:
    """Valid claims for ingest-api: issuer, audience, subject, one hour of validity."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "monolith",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scope": scope,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_token(claims_: Mapping[str, Any], header: Mapping[str, Any]) -> str:
    """A token with any header and an empty signature (e.g. `alg: none`)."""
    head = b64url(json.dumps(dict(header)).encode())
    body = b64url(json.dumps(dict(claims_)).encode())
    return f"{head}.{body}."


@dataclass
class JwksServer:
    """A loopback HTTP server answering the JWKS it holds; counts the requests."""

    url: str = ""
    document: dict[str, Any] = field(default_factory=dict)
    requests: int = 0


@contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[JwksServer]:
    state = JwksServer(document=document)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    with serving(Handler) as port:
        state.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        yield state


# -- serving functions -----------------------------------------------------------------------


def settings(tmp_path: Path, sink: Sink | None, **overrides: Any) -> Settings:
    base = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=tmp_path / "state",
        sink=sink.url if sink is not None else None,
        emit_retries=0,
    )
    return base.with_overrides(**overrides)


@contextmanager
def serve(function: str, settings_: Settings) -> Iterator[FunctionWSGI]:
    wsgi = create_app(function, settings=settings_, tracer=Tracer(function, enabled=False), env={})
    try:
        yield wsgi
    finally:
        wsgi.close()


def order_event(order_id: str, items: list[tuple[str, int]], **data: Any) -> Event:
    payload = {"order_id": order_id, "items": [{"sku": s, "quantity": q} for s, q in items]}
    payload.update(data)
    return Event.new(ORDER, "/eventfn/ingest-api", payload, subject=order_id)


def deliver(client: Any, event: Event) -> Any:
    headers, body = encode_binary(event)
    return client.post("/", data=body, headers=headers)


# -- inventory-updater -------------------------------------------------------------------------


@dataclass
class Shop:
    """inventory-updater instances on one database, its engine and the broker stand-in."""

    clients: list[Any]
    engine: Any
    sink: Sink

    @property
    def client(self) -> Any:
        return self.clients[0]

    def stock(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(inventory_items.c.sku, inventory_items.c.quantity))
            return {row.sku: int(row.quantity) for row in rows}

    def orders(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(inventory_orders))
            return {row.order_id: dict(row._mapping) for row in rows}

    def seed(self, *items: StockItem) -> None:
        with self.engine.begin() as connection:
            seed(connection, items)


STOCK = (StockItem("MUG-1", "Mug", 5), StockItem("TEE-M", "T-shirt M", 2))


def open_shop(
    stack: ExitStack, tmp_path: Path, database_url: str, instances: int = 1, **overrides: Any
) -> Shop:
    """`instances` inventory-updater apps (each with its own engine) on `database_url`, seeded
    with STOCK, emitting to one broker stand-in; closed with `stack`."""
    sink = stack.enter_context(sink_server())
    settings_ = settings(tmp_path, sink, database_url=database_url, **overrides)
    clients = [
        stack.enter_context(serve("inventory-updater", settings_)).test_client()
        for _ in range(instances)
    ]
    engine = create_engine_from_url(database_url)
    stack.callback(engine.dispose)
    upgrade(engine)
    shop = Shop(clients, engine, sink)
    shop.seed(*STOCK)
    return shop


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run `calls` in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait(timeout=30)
        results[index] = call()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


# -- ingest-api ----------------------------------------------------------------------------------

INGEST_ENV = (
    "INGEST_AUTH",
    "INGEST_VALIDATE",
    "EVENTFN_ALLOW_INSECURE",
    "INGEST_JWT_ALGORITHMS",
    "INGEST_JWT_SECRET",
    "INGEST_JWT_ISSUER",
    "INGEST_JWT_AUDIENCE",
    "INGEST_JWT_LEEWAY_SECONDS",
    "INGEST_JWKS_FILE",
    "INGEST_JWKS_URL",
    "INGEST_JWKS_TTL_SECONDS",
    "INGEST_MAX_BODY_BYTES",
    "INGEST_UPLOAD_PREFIXES",
)


def ingest_env(monkeypatch: Any, **values: str) -> None:
    """Exactly `values` as ingest-api's environment (read by its start hook)."""
    for name in INGEST_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps(jwks(*keys)), encoding="utf-8")
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_json(client: Any, event_type: str, data: Any, **headers: str) -> Any:
    return client.post(
        f"/v1/events/{event_type}",
        data=json.dumps(data),
        headers={"content-type": "application/json", **headers},
    )


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.get_data()
    body: dict[str, Any] = json.loads(response.get_data())
    return body


ORDER_DATA = {"order_id": "o-100", "items": [{"sku": "MUG-1", "quantity": 2}]}
