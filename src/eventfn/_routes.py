"""HTTP routes a function serves beside its CloudEvents endpoint (webhooks, small APIs).

A route is registered on the `App` (``@app.route("/webhook")``) and called with a framework-free
`HttpRequest` and a `RouteContext`; it returns the pipeline's `Response`. Flask only adapts
(`install_routes`). Like the event path, a route runs inside a span that continues the request's
``traceparent``, and every failure becomes one problem response here: `EventfnError` subclasses
map to their status, anything else to a 500 that only names the trace id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventfn._errors import (
    EventfnError,
    InternalError,
    PayloadTooLarge,
    PermanentError,
    RegistrationError,
    SchemaViolation,
)
from eventfn._logging import log_context

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask
    from flask import Response as FlaskResponse

    from eventfn._emitter import Emitter
    from eventfn._event import Event
    from eventfn._pipeline import Response, Services
    from eventfn._settings import Settings
    from eventfn._tracing import TraceContext

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
RESERVED_PATHS = ("/health/", "/metrics")
"""Served by eventfn itself; `/` is the CloudEvents endpoint and is reserved too."""


class MalformedRequest(PermanentError, ValueError):
    """A route's request body cannot be parsed (bad JSON, missing fields)."""

    code = "malformed-request"
    title = "Malformed request"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request to a route; header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str]
    path_params: Mapping[str, str]

    def json(self) -> Any:
        """The body parsed as JSON; `MalformedRequest` (400) when it is not JSON."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedRequest("the request body is not valid JSON") from None


@dataclass
class RouteContext:
    """What a route receives besides the request: settings, trace, logger and the emitter."""

    function: str
    settings: Settings
    trace: TraceContext
    logger: logging.Logger
    emitter: Emitter

    @property
    def source(self) -> str:
        """The `source` of events this function produces."""
        return self.settings.event_source

    def emit_all(self, events: Iterable[Event]) -> None:
        """Validate every event first, then send them in order with this request's trace.

        An event violating its schema is the function's bug (500, nothing sent); a broker that
        does not accept an event raises the emitter's error (`DependencyUnavailable`, ...).
        """
        prepared = []
        for event in events:
            try:
                prepared.append(self.emitter.prepare(event))
            except SchemaViolation as violation:
                self.logger.error("event %s violates its schema at %s", event.type, violation.field)
                raise InternalError(
                    "the function produced an event that violates its schema"
                ) from None
        trace_headers = self.trace.headers()
        for headers, body in prepared:
            self.emitter.send(headers, body, trace_headers)


RouteFunc = Callable[[HttpRequest, RouteContext], "Response"]


@dataclass(frozen=True, slots=True)
class Route:
    """One registration: a Flask-style path (``/items/<id>``), its methods and the function."""

    path: str
    methods: tuple[str, ...]
    func: RouteFunc


def check_route(route: Route, existing: Iterable[Route]) -> None:
    """Refuse reserved or malformed paths, unknown methods and duplicate (path, method) pairs."""
    path = route.path
    if not path.startswith("/") or path == "/":
        raise RegistrationError(f"route path {path!r} must start with '/' and not be '/'")
    if any(path.startswith(reserved) for reserved in RESERVED_PATHS):
        raise RegistrationError(f"route path {path!r} is served by eventfn itself")
    unknown = set(route.methods) - HTTP_METHODS
    if not route.methods or unknown:
        raise RegistrationError(f"route {path!r} has invalid methods {sorted(unknown) or '[]'}")
    for other in existing:
        if other.path == path and set(other.methods) & set(route.methods):
            raise RegistrationError(f"a route for {path!r} is already registered")


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer for a route."""
    from eventfn._pipeline import Response

    all_headers = {"content-type": "application/json", **(headers or {})}
    return Response(status, all_headers, json.dumps(body).encode())


def run_route(route: Route, request: HttpRequest, function: str, services: Services) -> Response:
    """Call `route` inside a span continuing the request's trace; never raises."""
    from eventfn._pipeline import problem_response

    with services.tracer.event_span({}, request.headers) as span:
        trace = span.context
        ctx = RouteContext(function, services.settings, trace, services.logger, services.emitter)
        with log_context(trace_id=trace.trace_id, span_id=trace.span_id, function=function):
            try:
                response = route.func(request, ctx)
                outcome = "ok"
            except EventfnError as error:
                outcome = "retryable" if error.retryable else "permanent"
                services.logger.log(
                    logging.WARNING if error.retryable else logging.INFO,
                    "request to %s failed: %s",
                    route.path,
                    error.code,
                )
                span.record_error(type(error).__name__)
                response = problem_response(error, trace.trace_id)
            except Exception as error:
                outcome = "error"
                services.logger.exception("route %s raised an unexpected exception", route.path)
                span.record_error(type(error).__name__)
                internal = InternalError("the function failed unexpectedly; quote the trace id")
                response = problem_response(internal, trace.trace_id)
        span.set_outcome(response.status, outcome)
    return response


BodyReader = Callable[["WSGIEnvironment"], "bytes | None"]


def install_routes(
    flask: Flask, routes: Iterable[Route], function: str, services: Services, read_body: BodyReader
) -> None:
    """Register each route on `flask` as a thin adapter around `run_route`."""
    for index, route in enumerate(routes):
        flask.add_url_rule(
            route.path,
            endpoint=f"eventfn_route_{index}",
            view_func=_view(route, function, services, read_body),
            methods=list(route.methods),
        )


def _view(
    route: Route, function: str, services: Services, read_body: BodyReader
) -> Callable[..., FlaskResponse]:
    from flask import Response as FlaskResponse
    from flask import request as flask_request

    def view(**path_params: Any) -> FlaskResponse:
        from eventfn._pipeline import problem_response

        body = read_body(flask_request.environ)
        if body is None:
            limit = services.settings.max_body_bytes
            response = problem_response(PayloadTooLarge(f"request body exceeds {limit} bytes"))
        else:
            request = HttpRequest(
                method=flask_request.method,
                path=flask_request.path,
                headers={key.lower(): value for key, value in flask_request.headers.items()},
                body=body,
                query=dict(flask_request.args.items()),
                path_params={key: str(value) for key, value in path_params.items()},
            )
            response = run_route(route, request, function, services)
        return FlaskResponse(response.body, response.status, headers=response.headers)

    return view
