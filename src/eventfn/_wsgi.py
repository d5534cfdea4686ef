"""The WSGI application of one function: a lean adapter for the platform paths, Flask for routes.

`POST /` (the CloudEvents endpoint), `/health/liveness`, `/health/readiness` and `/metrics` go
straight from the WSGI environ to framework-free code: they are what Knative calls on every
delivery and probe. Every other path — HTTP routes a function declares with `app.route` (a
webhook, an API) and the 404/405 answers — is served by a Flask app, built on first use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from eventfn._errors import PROBLEM_CONTENT_TYPE, PayloadTooLarge
from eventfn._pipeline import EventProcessor, Response, problem_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from flask import Flask
    from werkzeug.test import Client

    from eventfn._app import App
    from eventfn._pipeline import Services

EVENT_PATH = "/"
LIVENESS_PATH = "/health/liveness"
READINESS_PATH = "/health/readiness"
METRICS_PATH = "/metrics"
_EVENT_HEADER_PREFIXES = ("HTTP_CE_", "HTTP_TRACEPARENT", "HTTP_TRACESTATE")
_REASONS = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class FunctionWSGI:
    """The WSGI callable gunicorn serves for one function."""

    def __init__(self, app: App, services: Services) -> None:
        self.app = app
        self.services = services
        self.processor = EventProcessor(app, services)
        self.max_body = services.settings.max_body_bytes
        self._flask: Flask | None = None
        self._flask_lock = threading.Lock()
        self._closed = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == EVENT_PATH and method == "POST":
            return _send(start_response, self._event(environ))
        if method in ("GET", "HEAD"):
            if path == LIVENESS_PATH:
                return _send(start_response, _json({"status": "alive"}, 200))
            if path == READINESS_PATH:
                return _send(start_response, self._readiness())
            if path == METRICS_PATH:
                body, content_type = self.services.metrics.render()
                return _send(start_response, Response(200, {"content-type": content_type}, body))
        return self.flask.wsgi_app(environ, start_response)

    def _event(self, environ: WSGIEnvironment) -> Response:
        body = _read_body(environ, self.max_body)
        if body is None:
            return problem_response(PayloadTooLarge(f"request body exceeds {self.max_body} bytes"))
        return self.processor.process(_headers(environ), body)

    def _readiness(self) -> Response:
        database = self.services.database
        checks = {
            "database": database.ready() if database is not None else True,
            "function": self.app.is_ready(),
        }
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return _json(body, 200 if ready else 503)

    @property
    def flask(self) -> Flask:
        """The Flask app serving the function's routes (built on first use)."""
        flask = self._flask
        if flask is None:
            with self._flask_lock:
                if self._flask is None:
                    self._flask = _build_flask(self.app, self.services, self.max_body)
                flask = self._flask
        return flask

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
        if self.services.database is not None:
            self.services.database.dispose()


def _send(start_response: StartResponse, response: Response) -> Iterable[bytes]:
    headers = list(response.headers.items())
    headers.append(("content-length", str(len(response.body))))
    start_response(_REASONS.get(response.status, str(response.status)), headers)
    return [response.body]


def _json(body: Any, status: int) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(body).encode())


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The headers the event path reads: `ce-*`, content type and W3C trace context."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith(_EVENT_HEADER_PREFIXES)
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


def _build_flask(app: App, services: Services, max_body: int) -> Flask:
    from flask import Flask
    from flask import Response as FlaskResponse
    from werkzeug.exceptions import HTTPException

    from eventfn._routes import install_routes

    flask = Flask(f"eventfn.{app.name}")
    install_routes(flask, app.routes, app.name, services, lambda env: _read_body(env, max_body))

    @flask.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> FlaskResponse:
        status = error.code or 500
        body = {"type": "about:blank", "title": error.name, "status": status}
        return FlaskResponse(json.dumps(body), status, content_type=PROBLEM_CONTENT_TYPE)

    return flask
