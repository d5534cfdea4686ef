"""The WSGI application of one function: a Flask app plus a lean adapter for the event path.

`POST /` (the CloudEvents endpoint) goes straight from the WSGI environ to the sans-io
`EventProcessor`; everything else (health, metrics, routes a function adds) is served by Flask.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from eventfn._errors import PROBLEM_CONTENT_TYPE, PayloadTooLarge
from eventfn._pipeline import EventProcessor, problem_response
from eventfn._routes import install_routes

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from werkzeug.test import Client

    from eventfn._app import App
    from eventfn._pipeline import Services

EVENT_PATH = "/"
_REASONS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class FunctionWSGI:
    """The WSGI callable gunicorn serves for one function."""

    def __init__(self, app: App, services: Services) -> None:
        self.app = app
        self.services = services
        self.processor = EventProcessor(app, services)
        self.flask = _build_flask(app, services)
        self.max_body = services.settings.max_body_bytes
        self._closed = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == EVENT_PATH and environ.get("REQUEST_METHOD") == "POST":
            return self._event(environ, start_response)
        return self.flask.wsgi_app(environ, start_response)

    def _event(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = _read_body(environ, self.max_body)
        if body is None:
            too_large = PayloadTooLarge(f"request body exceeds {self.max_body} bytes")
            response = problem_response(too_large)
        else:
            response = self.processor.process(_headers(environ), body)
        headers = list(response.headers.items())
        headers.append(("content-length", str(len(response.body))))
        start_response(_REASONS.get(response.status, str(response.status)), headers)
        return [response.body]

    def test_client(self) -> Client:
        """A werkzeug test client over this WSGI app."""
        from werkzeug.test import Client

        return Client(self)

    def close(self) -> None:
        """Run stop hooks and release resources (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.app.run_stop_hooks()
        self.services.tracer.shutdown()
        if self.services.engine is not None:
            self.services.engine.dispose()


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        headers["content-type"] = content_type
    return headers


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes | None:
    stream = environ["wsgi.input"]
    raw_length = environ.get("CONTENT_LENGTH") or ""
    if raw_length.isdigit():
        length = int(raw_length)
        if length > limit:
            return None
        return bytes(stream.read(length)) if length else b""
    body = bytes(stream.read(limit + 1))
    return None if len(body) > limit else body


def _build_flask(app: App, services: Services) -> Flask:
    flask = Flask(f"eventfn.{app.name}")

    @flask.get("/health/liveness")
    def liveness() -> Response:
        return _json({"status": "alive"}, 200)

    @flask.get("/health/readiness")
    def readiness() -> Response:
        checks = {"database": _database_ready(services), "function": app.is_ready()}
        status = 200 if all(checks.values()) else 503
        return _json(
            {"status": "ready" if status == 200 else "not ready", "checks": checks}, status
        )

    @flask.get("/metrics")
    def metrics() -> Response:
        body, content_type = services.metrics.render()
        return Response(body, 200, content_type=content_type)

    max_body = services.settings.max_body_bytes
    install_routes(flask, app.routes, app.name, services, lambda env: _read_body(env, max_body))

    @flask.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        return _json(
            {"type": "about:blank", "title": error.name, "status": status},
            status,
            PROBLEM_CONTENT_TYPE,
        )

    return flask


def _database_ready(services: Services) -> bool:
    if services.engine is None:
        return True
    from eventfn._store import ping

    return ping(services.engine)


def _json(body: Any, status: int, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status, content_type=content_type)


WSGIApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]
