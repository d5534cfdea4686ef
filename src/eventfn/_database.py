"""A function's SQL store, created (and migrated) on first use.

A function that never touches the database — no idempotency, no `ctx.tx` — never imports
SQLAlchemy or Alembic, which keeps its cold start short. Functions with idempotency on open it at
start, so readiness reflects the database from the first probe.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from eventfn._errors import DependencyUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from eventfn._idempotency import IdempotencyStore
    from eventfn._settings import Settings

_log = logging.getLogger("eventfn.database")


class Database:
    """The engine of `settings.effective_database_url`, built once, on demand."""

    def __init__(self, settings: Settings, function: str) -> None:
        self._settings = settings
        self._function = function
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._idempotency: IdempotencyStore | None = None

    @property
    def started(self) -> bool:
        """True once the engine exists."""
        return self._engine is not None

    def engine(self) -> Engine:
        """The engine; the first call creates it and applies migrations when configured."""
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._engine is None:
                self._engine = self._create()
            return self._engine

    def _create(self) -> Engine:
        from eventfn._store import create_engine_from_url, upgrade

        settings = self._settings
        url = settings.effective_database_url
        if url.startswith("sqlite:///") and settings.database_url is None:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine_from_url(url)
        if settings.auto_migrate:
            try:
                upgrade(engine)
            except BaseException:
                engine.dispose()
                raise
        return engine

    def idempotency(self) -> IdempotencyStore:
        """The idempotency store of this function (on the same engine)."""
        store = self._idempotency
        if store is None:
            from eventfn._idempotency import IdempotencyStore

            store = IdempotencyStore(
                self.engine(),
                self._function,
                in_progress_expiry=self._settings.idempotency_expiry_seconds,
            )
            self._idempotency = store
        return store

    def open_early(self) -> None:
        """Create the engine now; a database that is down is reported by readiness, not here."""
        try:
            self.engine()
        except DependencyUnavailable:
            _log.warning("database unavailable at start; readiness reports it until it answers")

    def ready(self) -> bool:
        """Readiness: the database answers (a store nobody has used yet is not checked)."""
        if self._engine is None and self._settings.database_url is None:
            return True
        try:
            engine = self.engine()
        except DependencyUnavailable:
            return False
        from eventfn._store import ping

        return ping(engine)

    def dispose(self) -> None:
        """Close the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
