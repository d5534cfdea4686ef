"""`create_app`: assemble one function's WSGI app from its `App` and the settings."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from eventfn._app import App
from eventfn._catalog import NO_SCHEMAS, SchemaCatalog
from eventfn._database import Database
from eventfn._emitter import Emitter
from eventfn._loader import load_function
from eventfn._logging import configure_logging, get_logger
from eventfn._metrics import Metrics
from eventfn._pipeline import Services
from eventfn._settings import Settings
from eventfn._tracing import Tracer, tracer_from_env
from eventfn._wsgi import FunctionWSGI


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
    schemas = _schemas(settings)
    if emitter is None:
        emitter = Emitter.from_settings(settings, schemas)
    elif emitter.registry is None:
        emitter.registry = schemas
    services = Services(
        settings=settings,
        schemas=schemas,
        emitter=emitter,
        tracer=tracer or tracer_from_env(app.name, env),
        metrics=metrics or Metrics(app.name, env=env),
        logger=get_logger(f"function.{app.name}"),
        database=Database(settings, app.name),
        idempotency=settings.idempotency,
    )
    app.freeze()
    if settings.idempotency and services.database is not None:
        services.database.open_early()
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


def _schemas(settings: Settings) -> SchemaCatalog:
    """The event catalog; the schema stack is only imported when there are schemas."""
    directory = settings.schemas_dir
    if directory.is_dir() and any(directory.iterdir()):
        from eventfn._schemas import SchemaRegistry

        return SchemaRegistry.from_directory(directory)
    return NO_SCHEMAS
