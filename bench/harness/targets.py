"""The servers under test: eventfn (and its variants), the two peers and a raw WSGI callable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness import report
from harness.servers import Target
from harness.workspace import BENCH_DIR, FUNCTION_NAME, PEERS_DIR, write_function

VENVS = BENCH_DIR / ".venvs"
FF_VENV = VENVS / "ff"
FUNC_VENV = VENVS / "func"
MAIN_BIN = Path(sys.executable).parent
_SCRUBBED_PREFIXES = ("EVENTFN_", "OTEL_", "FUNCTION_", "GUNICORN_")
_SCRUBBED = frozenset(
    {"K_SINK", "PORT", "HOST", "LISTEN_ADDRESS", "WORKERS", "THREADS", "PROMETHEUS_MULTIPROC_DIR"}
)


def base_env() -> dict[str, str]:
    """The bench process environment without any setting a server under test reads."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED
    }


def _fresh_dir(path: Path) -> Callable[[], None]:
    def prepare() -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)

    return prepare


def _eventfn(
    name: str, description: str, root: Path, extra_env: dict[str, str], notes: tuple[str, ...]
) -> Target:
    functions = write_function(root)
    state = root / f"state-{name}"
    env = {
        **base_env(),
        "EVENTFN_FUNCTIONS_DIR": str(functions),
        "EVENTFN_SCHEMAS_DIR": str(root / "no-schemas"),
        "EVENTFN_STATE_DIR": str(state),
        "EVENTFN_WORKERS": "1",
        "EVENTFN_THREADS": "1",
        "EVENTFN_IDEMPOTENCY": "off",
        "EVENTFN_TRACING": "off",
        **extra_env,
    }
    argv = (str(MAIN_BIN / "eventfn"), "serve", FUNCTION_NAME, "--bind", "127.0.0.1:{port}")
    return Target(name, description, argv, env, root, notes, prepare=_fresh_dir(state))


def eventfn_targets(root: Path, sink_url: str, pg_url: str | None) -> list[Target]:
    """Plain eventfn plus tracing and idempotency variants (PostgreSQL only with a URL)."""
    sync = ("gunicorn, 1 worker, sync worker class (EVENTFN_THREADS=1)",)
    targets = [
        _eventfn(report.EVENTFN, "eventfn serve, idempotency off, tracing off", root, {}, sync),
        _eventfn(
            report.TRACING,
            "eventfn serve, tracing on (OTLP/HTTP to a loopback sink)",
            root,
            {"EVENTFN_TRACING": "on", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink_url},
            sync,
        ),
        _eventfn(
            report.IDEM_SQLITE,
            "eventfn serve, idempotency on, SQLite file",
            root,
            {"EVENTFN_IDEMPOTENCY": "on"},
            sync,
        ),
    ]
    if pg_url is not None:
        targets.append(
            _eventfn(
                report.IDEM_PG,
                "eventfn serve, idempotency on, PostgreSQL",
                root,
                {"EVENTFN_IDEMPOTENCY": "on", "EVENTFN_DATABASE_URL": pg_url},
                sync,
            )
        )
    return targets


def _ff_argv(function: str, signature: str) -> tuple[str, ...]:
    source = str(PEERS_DIR / "ff_main.py")
    ff_bin = str(FF_VENV / "bin" / "functions-framework")
    target = ("--target", function, "--signature-type", signature, "--source", source)
    return (ff_bin, *target, "--host", "127.0.0.1", "--port", "{port}")


def peer_targets() -> list[Target]:
    """functions-framework (both signatures), func-python and the raw WSGI callable."""
    ff_env = {**base_env(), "WORKERS": "1"}
    threads = (os.cpu_count() or 1) * 4
    ff_notes = (
        f"gunicorn, 1 worker (WORKERS=1), gthread worker with THREADS default cpu_count*4"
        f" = {threads} threads",
    )
    gunicorn = (str(MAIN_BIN / "gunicorn"), "--workers", "1", "--worker-class", "sync")
    return [
        Target(
            report.FF,
            "functions-framework --signature-type cloudevent (answers 200 'OK', no reply event)",
            _ff_argv("echo", "cloudevent"),
            ff_env,
            PEERS_DIR,
            (*ff_notes, "a cloudevent function's return value is ignored: no reply event"),
        ),
        Target(
            "ff-http",
            "functions-framework --signature-type http, from_http + binary reply event",
            _ff_argv("echo_http", "http"),
            ff_env,
            PEERS_DIR,
            ff_notes,
        ),
        Target(
            report.FUNC,
            "func-python cloudevents template shape, hypercorn (asyncio, 1 process)",
            (str(FUNC_VENV / "bin" / "python"), str(PEERS_DIR / "func_app.py")),
            {**base_env(), "LISTEN_ADDRESS": "127.0.0.1:{port}"},
            PEERS_DIR,
            ("hypercorn asyncio server, single process, HTTP/1.1 keep-alive",),
        ),
        Target(
            report.RAW,
            "raw WSGI callable, gunicorn 1 sync worker",
            (*gunicorn, "--bind", "127.0.0.1:{port}", "--log-level", "warning", "raw_wsgi:app"),
            base_env(),
            PEERS_DIR,
            ("gunicorn sync worker: one connection per request (no keep-alive)",),
        ),
    ]


def missing_executable(target: Target) -> str | None:
    """Why `target` cannot start (its venv is missing), or None."""
    if not Path(target.argv[0]).exists():
        return f"{target.argv[0]} not found: run bash bench/setup_peers.sh"
    return None


def versions() -> dict[str, str]:
    """Versions of the servers under test (read from each venv)."""
    probes = {
        "eventfn": (sys.executable, "eventfn"),
        "gunicorn": (sys.executable, "gunicorn"),
        "cloudevents (eventfn)": (sys.executable, "cloudevents"),
        "functions-framework": (str(FF_VENV / "bin" / "python"), "functions-framework"),
        "cloudevents (ff)": (str(FF_VENV / "bin" / "python"), "cloudevents"),
        "func-python": (str(FUNC_VENV / "bin" / "python"), "func-python"),
        "hypercorn": (str(FUNC_VENV / "bin" / "python"), "hypercorn"),
    }
    found = {}
    for label, (python, package) in probes.items():
        if not Path(python).exists():
            found[label] = "missing"
            continue
        code = f"import importlib.metadata as m; print(m.version({package!r}))"
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        found[label] = done.stdout.strip() or "missing"
    return found
