"""Stable local addresses of Knative Services in `eventfn dev`, as Knative's activator gives them.

In a cluster a Service answers at `http://<name>.<namespace>.svc.cluster.local` whether it has
pods or not: at zero, the activator holds the request, has a pod started and forwards it.
Locally every Service gets one loopback address for the whole run (`dev.json` "services"); a
request there resolves the function through the supervisor (a cold start when it is scaled to
zero), is forwarded whole, and the function's answer goes back unchanged.

The activator answers itself only when the function cannot: 503 (retryable) when it cannot be
started or the mesh is stopping, 502 when the connection to it fails, 504 after the Service's
`timeoutSeconds`, 413 for a body over the limit — each an `application/problem+json` body.

`local_env` rewrites a function's env: every literal value that is an in-cluster URL of a
Service of the topology (`<name>.<namespace>.svc.cluster.local`, `.svc`, `<name>.<namespace>`,
or `<name>` in the caller's own namespace) points at that Service's local address instead,
path and query kept — so `WORKFLOW_FUNCTION_URL_WORKFLOW_TASKS` works unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit, urlunsplit

import urllib3
from werkzeug.serving import BaseWSGIServer

from eventfn._errors import DependencyUnavailable, PayloadTooLarge, RetryableError
from eventfn._pipeline import Response, problem_response
from eventfn._tracing import parse_traceparent
from eventfn.mesh._http import environ_headers, read_body, serve, status_line
from eventfn.mesh._supervisor import LOOPBACK
from eventfn.mesh._topology import ServiceSpec, Topology

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MAX_BODY_BYTES = 64 * 1024 * 1024
CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc", "")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip


class BadGateway(RetryableError):
    """The function's process did not answer (connection refused or cut)."""

    status = 502
    code = "bad-gateway"
    title = "The function did not answer"


class GatewayTimeout(RetryableError):
    """The function did not answer within its Service's `timeoutSeconds`."""

    status = 504
    code = "gateway-timeout"
    title = "The function timed out"


@dataclass(frozen=True)
class DirectCall:
    """One request through the activator, for the mesh's output."""

    time: float  # when the answer came back (epoch seconds)
    service: str
    method: str
    path: str
    status: int
    latency_ms: float
    trace_id: str | None


Resolve = Callable[[str], str]  # service name -> base URL of a running process (may cold-start)


class ServiceProxy:
    """The WSGI callable of one Service's local address."""

    def __init__(
        self,
        service: ServiceSpec,
        resolve: Resolve,
        pool: urllib3.PoolManager,
        on_call: Callable[[DirectCall], None] | None = None,
    ) -> None:
        self.service = service
        self._resolve = resolve
        self._pool = pool
        self._on_call = on_call

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        response = self._forward(environ)
        headers = [*response.headers.items(), ("content-length", str(len(response.body)))]
        start_response(status_line(response.status), headers)
        if self._on_call is not None:
            self._on_call(
                DirectCall(
                    time=time.time(), service=self.service.name,
                    method=str(environ.get("REQUEST_METHOD", "")), path=_target(environ),
                    status=response.status, latency_ms=(time.monotonic() - started) * 1000,
                    trace_id=_trace_id(environ.get("HTTP_TRACEPARENT")),
                )
            )  # fmt: skip
        return [response.body]

    def _forward(self, environ: WSGIEnvironment) -> Response:
        body = read_body(environ, MAX_BODY_BYTES)
        if body is None:
            return problem_response(PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes"))
        try:
            base = self._resolve(self.service.name)
        except ConnectionError as error:  # the supervisor's ServiceUnavailable
            return problem_response(DependencyUnavailable(f"{self.service.name}: {error}"))
        try:
            answer = self._pool.request(
                str(environ.get("REQUEST_METHOD", "GET")), base.rstrip("/") + _target(environ),
                body=body, headers=_request_headers(environ), redirect=False,
                decode_content=False,  # a gzip answer goes back as sent, header and bytes
                timeout=urllib3.Timeout(total=float(self.service.timeout_seconds)),
            )  # fmt: skip
        except urllib3.exceptions.NewConnectionError:  # a ConnectTimeoutError too, in urllib3 2
            return problem_response(BadGateway(f"{self.service.name} did not answer"))
        except urllib3.exceptions.TimeoutError:
            return problem_response(GatewayTimeout(f"{self.service.name} did not answer in time"))
        except urllib3.exceptions.HTTPError:
            return problem_response(BadGateway(f"{self.service.name} did not answer"))
        headers = _end_to_end({name.lower(): answer.headers[name] for name in answer.headers})
        return Response(int(answer.status), headers, bytes(answer.data))


class Activator:
    """One loopback server per Service, each forwarding to that Service's function process."""

    def __init__(
        self,
        topology: Topology,
        resolve: Resolve,
        on_call: Callable[[DirectCall], None] | None = None,
    ) -> None:
        self._pool = urllib3.PoolManager(num_pools=32, maxsize=8, retries=False)
        self._proxies = [
            ServiceProxy(service, resolve, self._pool, on_call)
            for _, service in sorted(topology.services.items())
        ]
        self._servers: dict[str, BaseWSGIServer] = {}

    def start(self) -> dict[str, str]:
        """Serve every Service's address; returns them (see `urls`)."""
        for proxy in self._proxies:
            name = proxy.service.name
            self._servers[name] = serve(proxy, 0, f"activator-{name}")
        return self.urls()

    def urls(self) -> dict[str, str]:
        """Service name -> its local address (`http://127.0.0.1:PORT`, no path)."""
        return {name: f"http://{LOOPBACK}:{s.server_port}" for name, s in self._servers.items()}

    def stop(self) -> None:
        """Stop serving and close the listening sockets (all at once: each server notices the
        request only at its next poll)."""
        stoppers = [
            threading.Thread(target=server.shutdown, name="activator-stop", daemon=True)
            for server in self._servers.values()
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers.values():
            server.server_close()
        self._pool.clear()


def cluster_hosts(service: ServiceSpec, caller_namespace: str) -> set[str]:
    """The host names that reach `service` from a pod in `caller_namespace`."""
    hosts = {f"{service.name}.{service.namespace}{suffix}" for suffix in CLUSTER_SUFFIXES}
    if service.namespace == caller_namespace:
        hosts.add(service.name)
    return hosts


def local_env(
    env: Mapping[str, str], caller: ServiceSpec, topology: Topology, urls: Mapping[str, str]
) -> dict[str, str]:
    """`env` with every in-cluster Service URL replaced by that Service's local address."""
    local: dict[str, str] = {}
    for service in topology.services.values():
        if service.name in urls:
            for host in cluster_hosts(service, caller.namespace):
                local[host] = urls[service.name]
    return {name: _localised(value, local) for name, value in env.items()}


def _localised(value: str, local: Mapping[str, str]) -> str:
    if not value.startswith(("http://", "https://")):
        return value
    parts = urlsplit(value)
    address = local.get((parts.hostname or "").lower())
    if address is None or _port(parts) not in (None, 80, 443):
        return value
    target = urlsplit(address)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def _port(parts: SplitResult) -> int | str | None:
    """The URL's explicit port; the text after `:` when it is not a valid one."""
    try:
        return parts.port
    except ValueError:
        return parts.netloc.rpartition(":")[2]


def _target(environ: WSGIEnvironment) -> str:
    """The request target as the client sent it: path and query."""
    if environ.get("RAW_URI"):
        return str(environ["RAW_URI"])
    query = str(environ.get("QUERY_STRING", ""))
    return str(environ.get("PATH_INFO") or "/") + ("?" + query if query else "")


def _trace_id(traceparent: str | None) -> str | None:
    parsed = parse_traceparent(traceparent)
    return None if parsed is None else parsed[0]


def _request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    return _end_to_end(environ_headers(environ))


def _end_to_end(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` (lower-case names) without the hop-by-hop ones, those its `connection` names
    included (RFC 9110 7.6.1)."""
    listed = {name.strip().lower() for name in headers.get("connection", "").split(",")}
    return {k: v for k, v in headers.items() if k not in HOP_BY_HOP and k not in listed}
