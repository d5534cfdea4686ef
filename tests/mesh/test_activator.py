"""The activator: each Service's stable loopback address forwards to its function, whole.

A real upstream (a tiny threaded http.server) stands in for the function process; the activator
and the client talk real HTTP over loopback.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import urllib3

from eventfn.mesh import _activator
from eventfn.mesh._activator import Activator, DirectCall, local_env
from eventfn.mesh._supervisor import ServiceUnavailable
from eventfn.mesh._topology import ServiceSpec, Topology

WAIT = 10.0  # bound for anything a test waits on
PROBLEM = "application/problem+json"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EVERY_BYTE = bytes(range(256)) * 4


def service(name: str, namespace: str = "shop", timeout_seconds: int = 300) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        namespace=namespace,
        env={},
        secret_env={},
        min_scale=0,
        max_scale=0,
        container_concurrency=0,
        timeout_seconds=timeout_seconds,
        function=name,
    )


def topology(*services: ServiceSpec) -> Topology:
    return Topology(services={s.name: s for s in services}, triggers=[], brokers=[])


@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A function stand-in: records each request and answers as its `x-answer-*` headers say.

    `x-answer-status`: the status (default 200); the body echoes the request's.
    `x-answer-stall`: wait for `release` before answering. `x-answer-cut`: close without one.
    `x-answer-gzip`: answer the body gzipped, with `content-encoding: gzip`.
    """

    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.release = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                upstream.requests.append(Received(self.command, self.path, headers, body))
                if "x-answer-stall" in headers:
                    upstream.release.wait(WAIT)
                if "x-answer-cut" in headers:
                    self.close_connection = True
                    return
                if "x-answer-gzip" in headers:
                    body = gzip.compress(body)
                try:
                    self.send_response(int(headers.get("x-answer-status", "200")))
                    self.send_header("content-type", headers.get("content-type", "text/plain"))
                    self.send_header("x-upstream", "echo")
                    self.send_header("x-multi", "a")
                    self.send_header("x-multi", "b")
                    self.send_header("keep-alive", "timeout=5")
                    self.send_header("proxy-authenticate", "Basic")
                    self.send_header("connection", "x-secret")
                    self.send_header("x-secret", "hop only")
                    if "x-answer-gzip" in headers:
                        self.send_header("content-encoding", "gzip")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the activator gave up on it

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def dead_address() -> str:
    """A loopback address nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Resolver:
    """The supervisor's `resolve` stand-in: service name -> address, or ServiceUnavailable."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    def __call__(self, name: str) -> str:
        self.asked.append(name)
        address = self.addresses.get(name)
        if address is None:
            raise ServiceUnavailable(f"{name} failed to start")
        return address


@dataclass
class Mesh:
    upstream: Upstream
    resolver: Resolver
    activator: Activator
    urls: dict[str, str]
    calls: list[DirectCall]
    client: urllib3.PoolManager

    def request(self, service: str, method: str, target: str, **kwargs: Any) -> Any:
        return self.client.request(
            method, self.urls[service] + target, timeout=WAIT, decode_content=False, **kwargs
        )


@pytest.fixture(scope="module")
def running() -> Iterator[Mesh]:
    """One activator and upstream for the module (stopping a server takes up to its 0.5 s poll)."""
    upstream = Upstream()
    resolver = Resolver({})
    calls: list[DirectCall] = []
    activator = Activator(
        topology(service("echo"), service("sleepy", timeout_seconds=1)), resolver, calls.append
    )
    urls = activator.start()
    client = urllib3.PoolManager(retries=False)
    yield Mesh(upstream, resolver, activator, urls, calls, client)
    client.clear()
    activator.stop()
    upstream.close()


@pytest.fixture
def mesh(running: Mesh) -> Mesh:
    """The running mesh with nothing recorded and both Services resolving to the upstream."""
    running.resolver.addresses = {"echo": running.upstream.url, "sleepy": running.upstream.url}
    running.resolver.asked.clear()
    running.upstream.requests.clear()
    running.upstream.release.clear()
    running.calls.clear()
    return running


def problem(answer: Any) -> dict[str, Any]:
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = json.loads(answer.data)
    return body


def test_every_service_gets_its_own_loopback_address(mesh: Mesh) -> None:
    assert sorted(mesh.urls) == ["echo", "sleepy"]
    assert all(url.startswith("http://127.0.0.1:") for url in mesh.urls.values())
    assert len(set(mesh.urls.values())) == 2
    assert mesh.activator.urls() == mesh.urls


def test_a_request_is_forwarded_byte_for_byte(mesh: Mesh) -> None:
    answer = mesh.request(
        "echo",
        "POST",
        "/a%20b/c?x=1&y=%2F&x=2",
        body=EVERY_BYTE,
        headers={"content-type": "application/octet-stream", "ce-id": "e-1", "x-custom": "1"},
    )
    assert answer.status == 200
    assert answer.data == EVERY_BYTE
    (received,) = mesh.upstream.requests
    assert (received.method, received.target) == ("POST", "/a%20b/c?x=1&y=%2F&x=2")
    assert received.body == EVERY_BYTE
    assert received.headers["content-type"] == "application/octet-stream"
    assert received.headers["content-length"] == str(len(EVERY_BYTE))
    assert (received.headers["ce-id"], received.headers["x-custom"]) == ("e-1", "1")
    assert received.headers["host"] == mesh.upstream.url.removeprefix("http://")
    assert mesh.resolver.asked == ["echo"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_forwarded(mesh: Mesh, method: str) -> None:
    answer = mesh.request("echo", method, "/items/7", body=b"x" if method != "GET" else None)
    assert answer.status == 200
    (received,) = mesh.upstream.requests
    assert (received.method, received.target) == (method, "/items/7")


def test_a_chunked_request_body_is_forwarded_whole(mesh: Mesh) -> None:
    answer = mesh.request("echo", "POST", "/", body=iter([b"abc", b"", b"def"]), chunked=True)
    assert answer.status == 200
    assert mesh.upstream.requests[0].body == b"abcdef"
    assert answer.data == b"abcdef"


@pytest.mark.parametrize("status", [201, 404, 500, 503])
def test_the_functions_status_headers_and_body_come_back_unchanged(mesh: Mesh, status: int) -> None:
    answer = mesh.request(
        "echo",
        "POST",
        "/",
        body=b'{"ok": false}',
        headers={"x-answer-status": str(status), "content-type": "application/json"},
    )
    assert answer.status == status
    assert answer.data == b'{"ok": false}'
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-upstream"] == "echo"
    assert answer.headers["content-length"] == str(len(b'{"ok": false}'))


def test_a_gzip_answer_goes_back_compressed(mesh: Mesh) -> None:
    answer = mesh.request("echo", "POST", "/", body=EVERY_BYTE, headers={"x-answer-gzip": "1"})
    assert answer.headers["content-encoding"] == "gzip"
    assert gzip.decompress(answer.data) == EVERY_BYTE


def test_repeated_answer_headers_are_all_kept(mesh: Mesh) -> None:
    answer = mesh.request("echo", "GET", "/")
    assert answer.headers["x-multi"] == "a, b"


def test_hop_by_hop_headers_are_dropped_both_ways(mesh: Mesh) -> None:
    answer = mesh.request(
        "echo",
        "POST",
        "/",
        body=b"x",
        headers={
            "connection": "keep-alive, x-private",
            "keep-alive": "timeout=30",
            "x-private": "for the activator only",
            "te": "trailers",
            "proxy-authorization": "Basic Zm9vOmJhcg==",
            "x-kept": "yes",
        },
    )
    received = mesh.upstream.requests[0].headers
    for name in ("connection", "keep-alive", "x-private", "te", "proxy-authorization"):
        assert name not in received
    assert received["x-kept"] == "yes"
    for name in ("keep-alive", "proxy-authenticate", "x-secret", "transfer-encoding"):
        assert name not in answer.headers
    assert answer.headers["x-upstream"] == "echo"


def test_a_body_over_the_limit_is_413(mesh: Mesh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_activator, "MAX_BODY_BYTES", 16)
    assert mesh.request("echo", "POST", "/", body=b"x" * 16).status == 200
    answer = mesh.request("echo", "POST", "/", body=b"x" * 17)
    assert answer.status == 413
    assert problem(answer)["type"] == "urn:eventfn:problem:payload-too-large"
    assert len(mesh.upstream.requests) == 1  # only the one within the limit


def test_a_service_that_cannot_start_is_503(mesh: Mesh) -> None:
    del mesh.resolver.addresses["sleepy"]
    answer = mesh.request("sleepy", "POST", "/", body=b"x")
    assert answer.status == 503
    body = problem(answer)
    assert body["type"] == "urn:eventfn:problem:dependency-unavailable"
    assert body["retryable"] is True
    assert "sleepy" in body["detail"]
    assert mesh.upstream.requests == []


def test_a_dead_function_is_502(mesh: Mesh) -> None:
    mesh.resolver.addresses["echo"] = dead_address()
    answer = mesh.request("echo", "POST", "/", body=b"x")
    assert answer.status == 502
    assert problem(answer)["type"] == "urn:eventfn:problem:bad-gateway"


def test_a_function_that_hangs_up_is_502(mesh: Mesh) -> None:
    answer = mesh.request("echo", "POST", "/", body=b"x", headers={"x-answer-cut": "1"})
    assert answer.status == 502
    assert problem(answer)["retryable"] is True


def test_a_function_slower_than_the_services_timeout_is_504(mesh: Mesh) -> None:
    answer = mesh.request("sleepy", "POST", "/", body=b"x", headers={"x-answer-stall": "1"})
    mesh.upstream.release.set()
    assert answer.status == 504  # timeoutSeconds 1 on "sleepy"
    assert problem(answer)["type"] == "urn:eventfn:problem:gateway-timeout"


def test_each_call_is_reported_with_its_trace_id(mesh: Mesh) -> None:
    mesh.request("echo", "POST", "/run?x=1", body=b"x", headers={"traceparent": TRACEPARENT})
    mesh.request("sleepy", "GET", "/", headers={"traceparent": "garbage"})
    first, second = mesh.calls
    assert (first.service, first.method, first.status) == ("echo", "POST", 200)
    assert first.path == "/run?x=1"
    assert first.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert first.latency_ms >= 0
    assert (second.service, second.method, second.trace_id) == ("sleepy", "GET", None)
    assert mesh.upstream.requests[0].headers["traceparent"] == TRACEPARENT  # forwarded as is


def test_refusals_are_reported_too(mesh: Mesh) -> None:
    mesh.resolver.addresses["echo"] = dead_address()
    mesh.request("echo", "POST", "/", body=b"x")
    (call,) = mesh.calls
    assert (call.service, call.status) == ("echo", 502)


# --- local_env --------------------------------------------------------------------------------

SERVICES = topology(
    service("notifier", "shop"), service("workflow", "ops"), service("idle", "shop")
)
URLS = {"notifier": "http://127.0.0.1:1111", "workflow": "http://127.0.0.1:2222"}  # idle: none
N, W = URLS["notifier"], URLS["workflow"]

LOCAL_ENV = [
    ("http://notifier.shop.svc.cluster.local/notify?x=1", N + "/notify?x=1"),
    ("http://notifier.shop.svc/notify", N + "/notify"),
    ("http://notifier.shop/notify", N + "/notify"),
    ("http://notifier.shop", N),
    ("http://notifier/notify", N + "/notify"),  # bare name: the caller's namespace
    ("http://Notifier.Shop.SVC.cluster.local/a#part", N + "/a#part"),
    ("https://notifier.shop.svc.cluster.local/x", N + "/x"),
    ("http://notifier.shop.svc.cluster.local:80/x", N + "/x"),
    ("http://workflow.ops.svc.cluster.local/tasks?id=3", W + "/tasks?id=3"),
    ("http://workflow.ops/tasks", W + "/tasks"),
    ("http://workflow/tasks", "http://workflow/tasks"),  # bare name of another namespace
    ("http://notifier.ops/x", "http://notifier.ops/x"),  # no notifier in ops
    ("http://notifier.shop.svc.cluster.local:8080/x", "http://notifier.shop.svc.cluster.local:8080/x"),
    ("http://notifier:bad/x", "http://notifier:bad/x"),
    ("http://idle.shop/x", "http://idle.shop/x"),  # no local address
    ("http://example.com/notifier", "http://example.com/notifier"),
    ("http://notifier.example.com/", "http://notifier.example.com/"),
    ("notifier.shop.svc.cluster.local", "notifier.shop.svc.cluster.local"),
    ("postgresql://notifier.shop/db", "postgresql://notifier.shop/db"),
    ("", ""),
    ("42", "42"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), LOCAL_ENV)
def test_local_env_rewrites_in_cluster_service_urls(value: str, expected: str) -> None:
    caller = SERVICES.services["notifier"]
    assert local_env({"TARGET": value}, caller, SERVICES, URLS) == {"TARGET": expected}


def test_local_env_bare_names_follow_the_callers_namespace() -> None:
    caller = SERVICES.services["workflow"]  # in ops
    env = {"A": "http://workflow/tasks", "B": "http://notifier/notify", "C": "plain"}
    assert local_env(env, caller, SERVICES, URLS) == {
        "A": W + "/tasks",
        "B": "http://notifier/notify",
        "C": "plain",
    }
