"""The settings of ingest-api, read once from the environment when the function starts.

Policy mistakes stop the function (ConfigurationError): an unknown or `none` algorithm, HS256
allowed without a strong secret, or auth/validation switched off without the explicit
`EVENTFN_ALLOW_INSECURE=1`. A missing or unusable JWKS source does not: the function starts and
refuses every RS256/ES256 token (fail closed), logging why at ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from eventfn import ConfigurationError
from eventfn._settings import env_number

ENV_AUTH = "INGEST_AUTH"
ENV_VALIDATE = "INGEST_VALIDATE"
ENV_ALLOW_INSECURE = "EVENTFN_ALLOW_INSECURE"
ENV_ALGORITHMS = "INGEST_JWT_ALGORITHMS"
ENV_SECRET = "INGEST_JWT_SECRET"  # noqa: S105 - the variable name
ENV_ISSUER = "INGEST_JWT_ISSUER"
ENV_AUDIENCE = "INGEST_JWT_AUDIENCE"
ENV_LEEWAY = "INGEST_JWT_LEEWAY_SECONDS"
ENV_JWKS_FILE = "INGEST_JWKS_FILE"
ENV_JWKS_URL = "INGEST_JWKS_URL"
ENV_JWKS_TTL = "INGEST_JWKS_TTL_SECONDS"
ENV_MAX_BODY = "INGEST_MAX_BODY_BYTES"
ENV_UPLOAD_PREFIXES = "INGEST_UPLOAD_PREFIXES"

ASYMMETRIC = frozenset({"RS256", "ES256"})
SYMMETRIC = frozenset({"HS256"})
SUPPORTED_ALGORITHMS = ASYMMETRIC | SYMMETRIC
DEFAULT_ALGORITHMS = ("RS256", "ES256")
DEFAULT_AUDIENCE = "eventfn-ingest"
DEFAULT_LEEWAY_SECONDS = 10.0
DEFAULT_JWKS_TTL_SECONDS = 300.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_UPLOAD_PREFIXES = ("documents", "raw", "backup-logs", "logs")
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key is at least as long as the hash output
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_ON, _OFF = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})

_log = logging.getLogger("eventfn.function.ingest-api")


@dataclass(frozen=True)
class IngestConfig:
    """Authentication policy, key sources and limits."""

    auth: bool = True
    validate: bool = True
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    secret: bytes | None = None
    issuer: str | None = None
    audience: str = DEFAULT_AUDIENCE
    leeway: float = DEFAULT_LEEWAY_SECONDS
    jwks_file: Path | None = None
    jwks_url: str | None = None
    jwks_ttl: float = DEFAULT_JWKS_TTL_SECONDS
    max_body: int = DEFAULT_MAX_BODY_BYTES
    upload_prefixes: tuple[str, ...] = DEFAULT_UPLOAD_PREFIXES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestConfig:
        """Parse and check the settings; ConfigurationError for a policy mistake."""
        insecure_ok = _switch(env, ENV_ALLOW_INSECURE, default=False)
        auth = _switch(env, ENV_AUTH, default=True)
        validate = _switch(env, ENV_VALIDATE, default=True)
        for name, on in ((ENV_AUTH, auth), (ENV_VALIDATE, validate)):
            if not on and not insecure_ok:
                raise ConfigurationError(f"{name}=off needs {ENV_ALLOW_INSECURE}=1 as well")
        algorithms = _algorithms(env.get(ENV_ALGORITHMS, ""))
        return cls(
            auth=auth,
            validate=validate,
            algorithms=algorithms,
            secret=_secret(env.get(ENV_SECRET, ""), algorithms, auth),
            issuer=env.get(ENV_ISSUER) or None,
            audience=env.get(ENV_AUDIENCE) or DEFAULT_AUDIENCE,
            leeway=env_number(
                env, ENV_LEEWAY, float(DEFAULT_LEEWAY_SECONDS), float, minimum=0, maximum=300
            ),
            jwks_file=Path(env[ENV_JWKS_FILE]) if env.get(ENV_JWKS_FILE) else None,
            jwks_url=_jwks_url(env.get(ENV_JWKS_URL, ""), insecure_ok),
            jwks_ttl=env_number(
                env, ENV_JWKS_TTL, float(DEFAULT_JWKS_TTL_SECONDS), float, minimum=0, maximum=86400
            ),
            max_body=int(
                env_number(
                    env,
                    ENV_MAX_BODY,
                    float(DEFAULT_MAX_BODY_BYTES),
                    float,
                    minimum=0,
                    maximum=2**31,
                )
            ),
            upload_prefixes=_prefixes(env.get(ENV_UPLOAD_PREFIXES, "")),
        )

    @property
    def asymmetric(self) -> tuple[str, ...]:
        """The allowed algorithms whose keys come from the JWKS."""
        return tuple(alg for alg in self.algorithms if alg in ASYMMETRIC)


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ConfigurationError(f"{name} must be on or off, got {raw!r}")


def _algorithms(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip().upper() for p in raw.split(",") if p.strip()))
    if not names:
        return DEFAULT_ALGORITHMS
    unknown = [name for name in names if name not in SUPPORTED_ALGORITHMS]
    if unknown:
        allowed = ", ".join(sorted(SUPPORTED_ALGORITHMS))
        raise ConfigurationError(
            f"{ENV_ALGORITHMS}: {', '.join(unknown)} not supported (choose from {allowed}; "
            "'none' is never accepted)"
        )
    return names


def _secret(raw: str, algorithms: tuple[str, ...], auth: bool) -> bytes | None:
    if not auth or not SYMMETRIC & set(algorithms):
        return None  # a secret that HS256 may not use is never loaded
    secret = raw.encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"HS256 is allowed but {ENV_SECRET} is unset or shorter than {MIN_SECRET_BYTES} bytes"
        )
    return secret


def _jwks_url(raw: str, insecure_ok: bool) -> str | None:
    url = raw.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _log.error(
            "%s is not an http(s) URL: ignored, RS256/ES256 tokens are refused", ENV_JWKS_URL
        )
        return None
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS and not insecure_ok:
        _log.error(
            "%s uses plain http to a remote host (keys could be forged in transit): ignored, "
            "RS256/ES256 tokens are refused; use https (or %s=1 to allow it)",
            ENV_JWKS_URL,
            ENV_ALLOW_INSECURE,
        )
        return None
    return url


def _prefixes(raw: str) -> tuple[str, ...]:
    names = tuple(p.strip().strip("/") for p in raw.split(",") if p.strip().strip("/"))
    for name in names:
        if "/" in name or name in (".", ".."):
            raise ConfigurationError(
                f"{ENV_UPLOAD_PREFIXES}: {name!r} is not a single path segment"
            )
    return names or DEFAULT_UPLOAD_PREFIXES
