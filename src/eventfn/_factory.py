"""`create_app`: assemble one function's WSGI app from its `App` and the settings."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from eventfn._app import App
from eventfn._emitter import Emitter
from eventfn._idempotency import IdempotencyStore
from eventfn._loader import load_function
from eventfn._logging import configure_logging, get_logger
from eventfn._metrics import Metrics
from eventfn._pipeline import Services
from eventfn._schemas import SchemaRegistry
from eventfn._settings import Settings
from eventfn._tracing import Tracer, tracer_from_env
from eventfn._wsgi import FunctionWSGI

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def create_app(
    function: App | str | None = None,
    *,
    settings: Settings | None = None,
    tracer: Tracer | None = None,
    metrics: Metrics | None = None,
    emitter: Emitter | None = None,
    env: Mapping[str, str] | None = None,
    started_at: float | None = None,
) -> FunctionWSGI:
    """The WSGI app serving one function.

    `function` is an `App`, a function folder name under `settings.functions_dir`, or None to
    use `EVENTFN_FUNCTION`. Registration closes here and the start hooks run. `started_at`
    (a `time.time()` value, default: now) is when the process started, for the start metric.
    """
    started_at = time.time() if started_at is None else started_at
    env = os.environ if env is None else env
    settings = settings or Settings.from_env(env)
    app = _resolve(function, settings)
    settings = settings.with_overrides(function=app.name, source=settings.source or app.source)
    configure_logging(app.name, settings.log_level)
    schemas = (
        SchemaRegistry.from_directory(settings.schemas_dir)
        if settings.schemas_dir.is_dir()
        else SchemaRegistry.empty()
    )
    engine = _engine(settings)
    services = Services(
        settings=settings,
        schemas=schemas,
        emitter=emitter or Emitter.from_settings(settings, schemas),
        tracer=tracer or tracer_from_env(app.name, env),
        metrics=metrics or Metrics(app.name, env=env),
        logger=get_logger(f"function.{app.name}"),
        engine=engine,
        idempotency=_idempotency(engine, app, settings),
    )
    if services.emitter.registry is None:
        services.emitter.registry = schemas
    app.freeze()
    app.run_start_hooks()
    services.metrics.count_cold_start(time.time() - started_at)
    return FunctionWSGI(app, services)


def _resolve(function: App | str | None, settings: Settings) -> App:
    if isinstance(function, App):
        return function
    name = function or settings.function
    if not name:
        from eventfn._errors import ConfigurationError

        raise ConfigurationError("no function given: pass a name or set EVENTFN_FUNCTION")
    return load_function(name, settings.functions_dir)


def _engine(settings: Settings) -> Engine:
    from eventfn._store import create_engine_from_url, upgrade

    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_from_url(url)
    if settings.auto_migrate:
        upgrade(engine)
    return engine


def _idempotency(engine: Engine, app: App, settings: Settings) -> IdempotencyStore | None:
    if not settings.idempotency:
        return None
    return IdempotencyStore(
        engine, app.name, in_progress_expiry=settings.idempotency_expiry_seconds
    )
