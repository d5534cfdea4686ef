"""`eventfn serve`: run one function under gunicorn.

With EVENTFN_WORKERS > 1 set PROMETHEUS_MULTIPROC_DIR (an empty, writable directory) so
/metrics aggregates every worker.

Defaults (env): PORT=8080, EVENTFN_WORKERS=1, EVENTFN_THREADS=1 (sync worker; >1 selects the
gthread worker), EVENTFN_TIMEOUT_SECONDS=300 (Knative's default timeoutSeconds),
EVENTFN_GRACEFUL_TIMEOUT_SECONDS=30 (SIGTERM lets in-flight events finish for this long).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from eventfn._settings import Settings


class _FunctionServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, loader: Callable[[], Any], options: dict[str, Any]) -> None:
        self._loader = loader
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._loader()


def gunicorn_options(settings: Settings, bind: str | None = None) -> dict[str, Any]:
    """The gunicorn configuration derived from settings."""
    threads = max(1, settings.threads)
    return {
        "bind": bind or f"0.0.0.0:{settings.port}",
        "workers": max(1, settings.workers),
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": settings.timeout_seconds,
        "graceful_timeout": settings.graceful_timeout_seconds,
        "keepalive": 75,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "worker_exit": _worker_exit,
        "post_worker_init": _post_worker_init,
        "child_exit": _child_exit,
    }


_WSGI: dict[str, Any] = {}


def _post_worker_init(worker: Any) -> None:
    _WSGI["app"] = worker.wsgi


def _worker_exit(server: Any, worker: Any) -> None:
    app = _WSGI.pop("app", None)
    close = getattr(app, "close", None)
    if close is not None:
        close()


def _child_exit(server: Any, worker: Any) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set (needed for EVENTFN_WORKERS > 1), drop dead workers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def serve(function: str, settings: Settings | None = None, bind: str | None = None) -> None:
    """Serve `function` until SIGTERM/SIGINT."""
    started_at = time.time()
    settings = (settings or Settings.from_env()).with_overrides(function=function)

    def load() -> Any:
        from eventfn._factory import create_app

        return create_app(function, settings=settings, started_at=started_at)

    _FunctionServer(load, gunicorn_options(settings, bind)).run()
