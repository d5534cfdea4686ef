"""ingest-api: the API Gateway and its Lambda authorizer of the article, as one HTTP service.

- `POST /v1/events/<type>` — a JSON (or Avro) body, checked against the schema registry, becomes
  one CloudEvent in the broker (`K_SINK`); answers `202 {"id", "type"}`.
- `POST /v1/uploads/<prefix>` — one multipart file stored in the bucket as `<prefix>/<name>`,
  which starts the storage pipeline; answers `201 {"bucket", "key", "size"}`.
- `GET /openapi.json` — the OpenAPI 3.1 document, generated from the schema registry.

Every write needs `Authorization: Bearer <JWT>` with the operation's scope (see `_auth.py`);
failures answer RFC 9457 problems, 401/403 with an RFC 6750 `WWW-Authenticate` challenge.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping

from eventfn import App
from eventfn._logging import get_logger
from eventfn._pipeline import Response, problem_response
from eventfn._routes import HttpRequest, Route, RouteContext

from ._auth import Authenticator
from ._config import ENV_ALLOW_INSECURE, IngestConfig
from ._errors import InsufficientScope, InvalidToken, MissingToken
from ._openapi import OPENAPI_PATH, build_document
from ._publish import EVENTS_PATH, publish_event
from ._uploads import UPLOADS_PATH, Uploader

app = App("ingest-api")


class IngestApi:
    """The configured service: settings, authenticator and uploader, set by the start hook."""

    def __init__(self) -> None:
        self.config = IngestConfig()
        self.auth = Authenticator(self.config)
        self.uploader = Uploader()
        self._openapi: bytes | None = None
        self._lock = threading.Lock()

    def configure(self, env: Mapping[str, str] | None = None) -> None:
        """Start hook: read the settings once (ConfigurationError stops the function)."""
        self.config = IngestConfig.from_env(os.environ if env is None else env)
        self.auth = Authenticator(self.config)
        self.uploader = Uploader()
        self._openapi = None
        _announce(self.config, self.auth)
        if self.auth.keyring is not None:
            self.auth.keyring.preload()

    def events(self, request: HttpRequest, ctx: RouteContext) -> Response:
        return _challenged(lambda: publish_event(request, ctx, self.config, self.auth), ctx)

    def uploads(self, request: HttpRequest, ctx: RouteContext) -> Response:
        return _challenged(lambda: self.uploader(request, ctx, self.config, self.auth), ctx)

    def openapi(self, request: HttpRequest, ctx: RouteContext) -> Response:
        with self._lock:
            if self._openapi is None:
                document = build_document(ctx.settings.schemas_dir, self.config)
                self._openapi = json.dumps(document, ensure_ascii=False).encode()
            body = self._openapi
        return Response(
            200, {"content-type": "application/json", "cache-control": "max-age=60"}, body
        )


def _challenged(call: Callable[[], Response], ctx: RouteContext) -> Response:
    """Run a route; a 401/403 becomes its problem response plus the WWW-Authenticate challenge."""
    try:
        return call()
    except (MissingToken, InvalidToken, InsufficientScope) as error:
        ctx.logger.info("refused: %s (%s)", error.code, error.detail)
        refused = problem_response(error, ctx.trace.trace_id)
        headers = {**refused.headers, "www-authenticate": error.challenge()}
        return Response(refused.status, headers, refused.body)


def _announce(config: IngestConfig, auth: Authenticator) -> None:
    log = get_logger(f"function.{app.name}")
    if not config.auth:
        log.error(
            "AUTHENTICATION IS OFF (INGEST_AUTH=off, %s=1): anyone can publish any event. "
            "Never run this outside a benchmark.",
            ENV_ALLOW_INSECURE,
        )
    if not config.validate:
        log.error("SCHEMA VALIDATION IS OFF (INGEST_VALIDATE=off): bodies are not checked")
    if config.auth and config.asymmetric and auth.keyring is None:
        log.error(
            "%s allowed but neither INGEST_JWKS_FILE nor a usable INGEST_JWKS_URL is set: "
            "such tokens are refused",
            "/".join(config.asymmetric),
        )
    if config.auth and not config.issuer:
        log.warning("INGEST_JWT_ISSUER is not set: tokens of any issuer are accepted")
    log.info(
        "ingest-api: algorithms %s, audience %s, max body %d bytes",
        ",".join(config.algorithms),
        config.audience,
        config.max_body,
    )


api = IngestApi()
app.on_start(api.configure)
app.add_route(Route(EVENTS_PATH, ("POST",), api.events))
app.add_route(Route(UPLOADS_PATH, ("POST",), api.uploads))
app.add_route(Route(OPENAPI_PATH, ("GET",), api.openapi))
