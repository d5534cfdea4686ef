"""The small WSGI and HTTP-server pieces the mesh's loopback servers share (broker ingress,
activator): status lines, request headers and bodies from a WSGI environ, a quiet server."""

from __future__ import annotations

import threading
from http import HTTPStatus
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from eventfn.mesh._supervisor import LOOPBACK

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def status_line(status: int) -> str:
    """`202 Accepted` for 202; the bare number for a code HTTPStatus does not know."""
    return _STATUS_LINES.get(status, str(status))


def environ_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's HTTP headers, lower-cased names, content-type included."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def read_body(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes."""
    stream = environ["wsgi.input"]
    raw_length = str(environ.get("CONTENT_LENGTH") or "")
    if raw_length.isdigit():
        length = int(raw_length)
        return None if length > limit else bytes(stream.read(length))
    if not environ.get("wsgi.input_terminated"):
        return b""
    body = bytes(stream.read(limit + 1))
    return None if len(body) > limit else body


class QuietHandler(WSGIRequestHandler):
    """No access-log lines: `eventfn dev` prints what happens itself."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def serve(app: WSGIApplication, port: int, name: str) -> BaseWSGIServer:
    """A threaded loopback server for `app` on `port` (0: any free one), serving in a daemon
    thread. OSError/SystemExit when the port cannot be bound."""
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
