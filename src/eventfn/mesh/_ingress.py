"""The Broker ingress: what happens to an event on arrival, and the thin WSGI adapter.

On arrival (like MTChannelBasedBroker's ingress, knative/eventing pkg/broker/ingress):
- the event is kept in binary mode (a structured request is re-encoded), since that is how
  it is delivered;
- its hop budget, the `knativebrokerttl` extension (default 255), is decremented and the event
  refused when it reaches zero — the only loop guard Knative has (pkg/broker/ttl.go); the
  extension is then removed so neither filters nor subscribers see it;
- `knativearrivaltime` is set to the arrival time;
- the `traceparent`/`tracestate` HTTP headers are kept, to be sent with every delivery.

`POST /<namespace>/<broker>` answers 202 once the event is durably stored; bad input gets a
400/413/415 `application/problem+json` body, an unknown broker path 404, other methods 405.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eventfn._codec import encode_binary
from eventfn._errors import DependencyUnavailable, EventfnError, PayloadTooLarge, PermanentError
from eventfn._event import Event
from eventfn._pipeline import Response, problem_response
from eventfn.mesh._http import environ_headers, read_body, status_line

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from eventfn.mesh._broker import Broker

DEFAULT_TTL = 255
TTL_EXTENSION = "knativebrokerttl"
ARRIVAL_EXTENSION = "knativearrivaltime"
TRACE_HEADERS = ("traceparent", "tracestate")
MAX_BODY_BYTES = 10 * 1024 * 1024


class UnknownBroker(PermanentError, LookupError):
    """No Broker is defined at this namespace/name."""

    status = 404
    code = "unknown-broker"
    title = "No such broker"


class TTLExceeded(PermanentError):
    """The event's `knativebrokerttl` hop budget is used up (a reply loop)."""

    code = "ttl-exceeded"
    title = "Broker TTL exhausted"


def remaining_ttl(event: Event, inherited: int | None = None) -> int:
    """The hop budget left after this ingress: the event's (or `inherited`) minus one."""
    if inherited is not None:
        return inherited - 1
    raw = event.extensions.get(TTL_EXTENSION)
    try:
        return (int(raw) if raw is not None else DEFAULT_TTL) - 1
    except ValueError:
        return DEFAULT_TTL - 1


def trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The W3C trace-context headers among lower-cased HTTP headers."""
    return {name: headers[name] for name in TRACE_HEADERS if name in headers}


def arrival_form(
    event: Event, headers: Mapping[str, str], body: bytes, now: float
) -> tuple[dict[str, str], bytes, dict[str, str]]:
    """Binary-mode headers and body as delivered, and the extensions as filters see them."""
    if any(name.startswith("ce-") for name in headers):
        wire = {k: v for k, v in headers.items() if k.startswith("ce-") or k == "content-type"}
    else:
        encoded, body = encode_binary(event)
        wire = {name.lower(): value for name, value in encoded.items()}
    wire.pop("ce-" + TTL_EXTENSION, None)
    arrival = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")
    wire["ce-" + ARRIVAL_EXTENSION] = arrival.replace("+00:00", "Z")
    extensions = {k: v for k, v in event.extensions.items() if k != TTL_EXTENSION}
    extensions[ARRIVAL_EXTENSION] = wire["ce-" + ARRIVAL_EXTENSION]
    return wire, body, extensions


class IngressApp:
    """The WSGI callable a threaded HTTP server runs for the broker."""

    def __init__(self, broker: Broker, max_body: int = MAX_BODY_BYTES) -> None:
        self.broker = broker
        self.max_body = max_body

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self._handle(environ)
        headers = [*response.headers.items(), ("content-length", str(len(response.body)))]
        start_response(status_line(response.status), headers)
        return [response.body]

    def _handle(self, environ: WSGIEnvironment) -> Response:
        parts = str(environ.get("PATH_INFO", "")).strip("/").split("/")
        if len(parts) != 2 or self.broker.topology.broker(parts[0], parts[1]) is None:
            return problem_response(UnknownBroker("no broker is served at this path"))
        if environ.get("REQUEST_METHOD") != "POST":
            return Response(405, {"allow": "POST"})
        body = read_body(environ, self.max_body)
        if body is None:
            return problem_response(PayloadTooLarge(f"request body exceeds {self.max_body} bytes"))
        try:
            self.broker.publish(environ_headers(environ), body, parts[0], parts[1])
        except EventfnError as error:
            return problem_response(error)
        except sqlite3.Error:
            return problem_response(DependencyUnavailable("the event store is unavailable"))
        return Response(202, {})
