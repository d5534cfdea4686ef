"""Where eventfn's per-event time goes: the WSGI app in-process, no server, under cProfile.

Builds the benchmark function (bench/peers/eventfn_handler.py) with `create_app`, feeds it N
minimal WSGI environs of a binary-mode CloudEvent (unique ce-id each), and prints microseconds
per request (without the profiler) plus cProfile's top entries by cumulative and by own time.

    .venv/bin/python bench/profile_runtime.py [--requests 20000] [--tracing] [--idempotency]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.events import BODY, event_headers
from harness.sink import OtlpSink
from harness.workspace import FUNCTION_NAME, write_function

WARMUP = 500
# what gunicorn's sync worker puts in every environ besides the request headers
_SERVER_KEYS = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "RAW_URI": "/",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "40000",
    "SERVER_SOFTWARE": "gunicorn",
    "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_USER_AGENT": "bench",
    "wsgi.url_scheme": "http",
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environs(count: int, prefix: str) -> list[dict[str, Any]]:
    """`count` environs of the benchmark event, each with its own ce-id and input stream."""
    made = []
    for number in range(count):
        environ: dict[str, Any] = dict(_SERVER_KEYS)
        for name, value in event_headers(f"{prefix}-{number}").items():
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
            else:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        environ["CONTENT_LENGTH"] = str(len(BODY))
        environ["wsgi.input"] = io.BytesIO(BODY)
        environ["wsgi.errors"] = sys.stderr
        made.append(environ)
    return made


def drive(app: WSGIApp, batch: list[dict[str, Any]]) -> int:
    """Call the app for every environ, consume the bodies; the number of non-200 answers."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        statuses.append(status)

    for environ in batch:
        for _chunk in app(environ, start_response):
            pass
    return sum(1 for status in statuses if not status.startswith("200"))


def build_app(root: Path, *, tracing_url: str | None, idempotency: bool) -> Any:
    """The benchmark function's WSGI app, configured like `eventfn serve` in bench/runtime.py."""
    from eventfn._factory import create_app
    from eventfn._settings import Settings

    settings = Settings(
        functions_dir=write_function(root),
        schemas_dir=root / "no-schemas",
        state_dir=root / "state",
        idempotency=idempotency,
        log_level="WARNING",
    )
    env = {}
    if tracing_url is not None:
        env = {"EVENTFN_TRACING": "on", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": tracing_url}
    return create_app(FUNCTION_NAME, settings=settings, env=env)


def _stats(profile: cProfile.Profile, order: str, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(order).print_stats(top)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--tracing", action="store_true", help="tracing on (loopback OTLP sink)")
    parser.add_argument("--idempotency", action="store_true", help="idempotency on (SQLite)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eventfn-prof-")))
        url = stack.enter_context(OtlpSink()).traces_url if args.tracing else None
        app = build_app(root, tracing_url=url, idempotency=args.idempotency)
        stack.callback(app.close)
        drive(app, environs(WARMUP, "warm"))
        timed = environs(args.requests, "timed")
        started = time.perf_counter()
        failures = drive(app, timed)
        per_request_us = (time.perf_counter() - started) / args.requests * 1e6
        profiled = environs(args.requests, "prof")
        profile = cProfile.Profile()
        profile.enable()
        failures += drive(app, profiled)
        profile.disable()
    print(
        f"eventfn in-process: {per_request_us:.1f} us/request over {args.requests} requests"
        f" (tracing {'on' if args.tracing else 'off'}, idempotency"
        f" {'on' if args.idempotency else 'off'}, non-200: {failures})\n"
    )
    print(f"--- top {args.top} by cumulative time ---")
    print(_stats(profile, "cumulative", args.top))
    print(f"--- top {args.top} by own time (tottime) ---")
    print(_stats(profile, "tottime", args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
