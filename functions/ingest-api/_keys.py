"""Verification keys: the RS256/ES256 public keys of a JWKS (file or URL) and the HS256 secret.

Every key is bound to exactly one algorithm when it is loaded (an RSA key to RS256, a P-256 key
to ES256, the secret to HS256) and PyJWT refuses a token whose `alg` differs from its key's, so
a key can never be used with an algorithm family it was not meant for (HS/RS key confusion).
Keys the token header brings along (`jwk`, `jku`, `x5u`, `x5c`) are never looked at.

The JWKS is cached for a TTL. A token with an unknown `kid` triggers one early reload (key
rotation), at most once per `MIN_FORCED_REFRESH_SECONDS`, so unknown kids cannot make us hammer
the identity provider. When a reload fails the previous keys stay in use; when there never were
any, the request is answered 503 (retryable): an unreachable IdP is not the client's fault.
After a failed load the next attempt waits `RETRY_AFTER_FAILURE_SECONDS`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from jwt import PyJWK
from jwt.exceptions import PyJWKError

from eventfn import DependencyUnavailable

MIN_FORCED_REFRESH_SECONDS = 10.0
RETRY_AFTER_FAILURE_SECONDS = 2.0
MAX_JWKS_BYTES = 512 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
_KTY_ALGORITHM = {"RSA": "RS256", "EC": "ES256"}
_log = logging.getLogger("eventfn.function.ingest-api")


class JwksUnavailable(Exception):
    """The JWKS could not be read (unreachable, not JSON, too big); the message is for logs."""


class JwksSource(Protocol):
    """Where a JWKS document comes from."""

    name: str

    def load(self) -> Any:
        """The parsed JWKS document; JwksUnavailable when it cannot be read."""
        ...


class FileSource:
    """A JWKS file (e.g. a mounted Secret; re-read after the TTL, so rotation needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file {path}"

    def load(self) -> Any:
        try:
            return json.loads(self.path.read_bytes()[: MAX_JWKS_BYTES + 1])
        except (OSError, ValueError) as error:
            raise JwksUnavailable(type(error).__name__) from None


class UrlSource:
    """A JWKS URL (the identity provider's `jwks_uri`), fetched with urllib3."""

    def __init__(self, url: str) -> None:
        import urllib3

        self.url = url
        self.name = f"URL {url}"
        self._pool = urllib3.PoolManager(maxsize=2, retries=False)

    def load(self) -> Any:
        import urllib3

        try:
            response = self._pool.request(
                "GET",
                self.url,
                headers={"accept": "application/jwk-set+json, application/json"},
                timeout=urllib3.Timeout(total=FETCH_TIMEOUT_SECONDS),
                redirect=False,
                preload_content=False,
            )
            try:
                body = response.read(MAX_JWKS_BYTES + 1)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise JwksUnavailable(type(error).__name__) from None
        if response.status != 200:
            raise JwksUnavailable(f"status {response.status}")
        if len(body) > MAX_JWKS_BYTES:
            raise JwksUnavailable("larger than 512 KiB")
        try:
            return json.loads(body)
        except ValueError:
            raise JwksUnavailable("not JSON") from None


KeyIndex = dict[tuple[str, str | None], PyJWK]


def index_jwks(document: Any, algorithms: tuple[str, ...]) -> KeyIndex:
    """Signing keys of a JWKS by (algorithm, kid), each bound to its one algorithm."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksUnavailable("no 'keys' list")
    index: KeyIndex = {}
    for entry in keys:
        algorithm = _algorithm_of(entry)
        if algorithm is None or algorithm not in algorithms:
            continue
        try:
            key = PyJWK(entry, algorithm=algorithm)
        except (PyJWKError, ValueError, TypeError):
            _log.warning("JWKS key %r is not a valid %s key: skipped", entry.get("kid"), algorithm)
            continue
        kid = entry.get("kid")
        index[(algorithm, kid if isinstance(kid, str) else None)] = key
    return index


def _algorithm_of(entry: Any) -> str | None:
    """RS256 for RSA, ES256 for P-256 keys; None for anything else (encryption keys included)."""
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    algorithm = _KTY_ALGORITHM.get(str(entry.get("kty")))
    if algorithm == "ES256" and entry.get("crv") != "P-256":
        return None
    declared = entry.get("alg")
    if declared is not None and declared != algorithm:
        return None
    return algorithm


def secret_key(secret: bytes) -> PyJWK:
    """The HS256 secret as a key bound to HS256."""
    encoded = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
    return PyJWK({"kty": "oct", "k": encoded}, algorithm="HS256")


class KeyRing:
    """The JWKS keys, loaded lazily and cached for `ttl` seconds; thread-safe."""

    def __init__(
        self,
        source: JwksSource,
        algorithms: tuple[str, ...],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.algorithms = algorithms
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: KeyIndex | None = None
        self._loaded_at = 0.0
        self._forced_at: float | None = None
        self._retry_at = 0.0

    def find(self, algorithm: str, kid: str | None) -> PyJWK | None:
        """The key for a token's `alg` and `kid` (reloading once for an unknown kid)."""
        keys = self._current(force=False)
        key = _select(keys, algorithm, kid)
        if key is None:
            key = _select(self._current(force=True), algorithm, kid)
        return key

    def preload(self) -> None:
        """Load now (start hook); a failure is logged, requests retry the load."""
        with contextlib.suppress(DependencyUnavailable):
            self._current(force=False)

    def _current(self, *, force: bool) -> KeyIndex:
        now = self._clock()
        with self._lock:
            due = self._keys is None or now - self._loaded_at >= self.ttl
            if force and (
                self._forced_at is None or now - self._forced_at >= MIN_FORCED_REFRESH_SECONDS
            ):
                self._forced_at = now
                due = True
            if due and now >= self._retry_at:
                self._reload(now)
            if self._keys is None:
                raise DependencyUnavailable("the token keys cannot be loaded", retry_after=5)
            return self._keys

    def _reload(self, now: float) -> None:
        try:
            self._keys = index_jwks(self.source.load(), self.algorithms)
            self._loaded_at = now
        except JwksUnavailable as error:
            self._retry_at = now + RETRY_AFTER_FAILURE_SECONDS
            stale = self._keys is not None
            _log.log(
                logging.WARNING if stale else logging.ERROR,
                "JWKS %s cannot be loaded (%s)%s",
                self.source.name,
                error,
                ": keeping the previous keys" if stale else "",
            )


def _select(keys: KeyIndex, algorithm: str, kid: str | None) -> PyJWK | None:
    if kid is not None:
        return keys.get((algorithm, kid))
    candidates = [key for (alg, _), key in keys.items() if alg == algorithm]
    return candidates[0] if len(candidates) == 1 else None
