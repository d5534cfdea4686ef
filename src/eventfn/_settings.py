"""Settings: parsed once from the environment at the edge into a frozen dataclass.

Explicit arguments beat environment variables; nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from eventfn._errors import ConfigurationError

# Environment variable names (documented in the README's settings table).
ENV_FUNCTION = "EVENTFN_FUNCTION"
ENV_FUNCTIONS_DIR = "EVENTFN_FUNCTIONS_DIR"
ENV_SCHEMAS_DIR = "EVENTFN_SCHEMAS_DIR"
ENV_STATE_DIR = "EVENTFN_STATE_DIR"
ENV_DATABASE_URL = "EVENTFN_DATABASE_URL"
ENV_AUTO_MIGRATE = "EVENTFN_AUTO_MIGRATE"
ENV_IDEMPOTENCY = "EVENTFN_IDEMPOTENCY"
ENV_IDEMPOTENCY_EXPIRY = "EVENTFN_IDEMPOTENCY_EXPIRY_SECONDS"
ENV_MAX_BODY_BYTES = "EVENTFN_MAX_BODY_BYTES"
ENV_SOURCE = "EVENTFN_SOURCE"
ENV_SINK = "K_SINK"
ENV_EMIT_RETRIES = "EVENTFN_EMIT_RETRIES"
ENV_EMIT_TIMEOUT = "EVENTFN_EMIT_TIMEOUT_SECONDS"
ENV_LOG_LEVEL = "EVENTFN_LOG_LEVEL"
ENV_PORT = "PORT"
ENV_WORKERS = "EVENTFN_WORKERS"
ENV_THREADS = "EVENTFN_THREADS"
ENV_TIMEOUT = "EVENTFN_TIMEOUT_SECONDS"
ENV_GRACEFUL_TIMEOUT = "EVENTFN_GRACEFUL_TIMEOUT_SECONDS"
ENV_S3_ENDPOINT = "EVENTFN_S3_ENDPOINT_URL"
ENV_S3_REGION = "AWS_REGION"
ENV_BUCKET = "EVENTFN_BUCKET"

DEFAULT_STATE_DIR = ".eventfn"
DEFAULT_PORT = 8080
DEFAULT_WORKERS = 1
DEFAULT_THREADS = 1
DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_GRACEFUL_TIMEOUT_SECONDS = 30
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_IDEMPOTENCY_EXPIRY_SECONDS = 300.0
DEFAULT_EMIT_RETRIES = 3
DEFAULT_EMIT_TIMEOUT_SECONDS = 5.0
DEFAULT_BUCKET = "eventfn-data"
DEFAULT_REGION = "us-east-1"

Number = TypeVar("Number", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything a function process needs, read once at startup."""

    function: str | None = None
    functions_dir: Path = Path("functions")
    schemas_dir: Path = Path("schemas")
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    database_url: str | None = None
    auto_migrate: bool = True
    idempotency: bool = True
    idempotency_expiry_seconds: float = DEFAULT_IDEMPOTENCY_EXPIRY_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    source: str | None = None
    sink: str | None = None
    emit_retries: int = DEFAULT_EMIT_RETRIES
    emit_timeout_seconds: float = DEFAULT_EMIT_TIMEOUT_SECONDS
    log_level: str = "INFO"
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    graceful_timeout_seconds: int = DEFAULT_GRACEFUL_TIMEOUT_SECONDS
    s3_endpoint_url: str | None = None
    s3_region: str = DEFAULT_REGION
    bucket: str = DEFAULT_BUCKET

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or a SQLite file in the state directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'eventfn.db').resolve()}"

    @property
    def event_source(self) -> str:
        """The `source` attribute of events this function emits."""
        return self.source or f"/eventfn/{self.function or 'app'}"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with explicit values replacing environment-derived ones."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        return cls(
            function=env.get(ENV_FUNCTION) or None,
            functions_dir=Path(env.get(ENV_FUNCTIONS_DIR, "functions")),
            schemas_dir=Path(env.get(ENV_SCHEMAS_DIR, "schemas")),
            state_dir=Path(env.get(ENV_STATE_DIR, DEFAULT_STATE_DIR)),
            database_url=env.get(ENV_DATABASE_URL) or None,
            auto_migrate=_bool(env, ENV_AUTO_MIGRATE, True),
            idempotency=_bool(env, ENV_IDEMPOTENCY, True),
            idempotency_expiry_seconds=_float(
                env, ENV_IDEMPOTENCY_EXPIRY, DEFAULT_IDEMPOTENCY_EXPIRY_SECONDS
            ),
            max_body_bytes=_int(env, ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
            source=env.get(ENV_SOURCE) or None,
            sink=env.get(ENV_SINK) or None,
            emit_retries=_int(env, ENV_EMIT_RETRIES, DEFAULT_EMIT_RETRIES),
            emit_timeout_seconds=_float(env, ENV_EMIT_TIMEOUT, DEFAULT_EMIT_TIMEOUT_SECONDS),
            log_level=env.get(ENV_LOG_LEVEL, "INFO").upper(),
            port=_int(env, ENV_PORT, DEFAULT_PORT),
            workers=_int(env, ENV_WORKERS, DEFAULT_WORKERS),
            threads=_int(env, ENV_THREADS, DEFAULT_THREADS),
            timeout_seconds=_int(env, ENV_TIMEOUT, DEFAULT_TIMEOUT_SECONDS),
            graceful_timeout_seconds=_int(
                env, ENV_GRACEFUL_TIMEOUT, DEFAULT_GRACEFUL_TIMEOUT_SECONDS
            ),
            s3_endpoint_url=env.get(ENV_S3_ENDPOINT) or None,
            s3_region=env.get(ENV_S3_REGION, DEFAULT_REGION),
            bucket=env.get(ENV_BUCKET, DEFAULT_BUCKET),
        )


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def env_number(
    env: Mapping[str, str],
    name: str,
    default: Number,
    kind: type[Number],
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Number:
    """The number in env variable `name` (`kind`: int or float), `default` when unset or blank;
    ConfigurationError naming the variable when it is not a number or out of bounds
    (`positive`: > 0; `minimum`/`maximum`: inclusive)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigurationError(f"{name} must be {noun}, got {raw!r}") from None
    if positive and value <= 0:
        raise ConfigurationError(f"{name} must be greater than zero, got {raw!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f"{minimum:g}"
        high = "" if maximum is None else f"{maximum:g}"
        raise ConfigurationError(f"{name} must be within [{low}, {high}], got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return env_number(env, name, default, int)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return env_number(env, name, default, float)
