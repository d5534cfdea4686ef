"""Publishing events to the broker (`K_SINK`) in binary mode, with bounded retries."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventfn._codec import encode_binary
from eventfn._errors import DependencyUnavailable, PermanentError
from eventfn._event import Event

if TYPE_CHECKING:
    import urllib3

    from eventfn._catalog import SchemaCatalog
    from eventfn._settings import Settings

RETRYABLE_STATUS = frozenset({404, 408, 409, 425, 429, 500, 502, 503, 504})


class EmitRefused(PermanentError):
    """The broker refused an emitted event permanently (a 4xx other than the retryable ones)."""

    code = "emit-refused"
    title = "Emitted event refused"


@dataclass
class Emitter:
    """Posts events to `sink`. Retries 5xx, 404/408/409/429 and connection errors."""

    sink: str | None
    registry: SchemaCatalog | None = None
    retries: int = 3
    timeout: float = 5.0
    backoff: float = 0.1
    sleep: Callable[[float], None] = time.sleep
    _pool: urllib3.PoolManager | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, registry: SchemaCatalog | None) -> Emitter:
        """An emitter for the configured `K_SINK`."""
        return cls(
            sink=settings.sink,
            registry=registry,
            retries=settings.emit_retries,
            timeout=settings.emit_timeout_seconds,
        )

    def prepare(self, event: Event) -> tuple[dict[str, str], bytes]:
        """Validate against the schema registry and encode in binary mode."""
        if self.registry is None or not self.registry.has(event.type):
            return encode_binary(event)
        body, content_type = self.registry.encode(event.type, event.data, event.datacontenttype)
        event = event.with_changes(
            datacontenttype=content_type, dataschema=self.registry.dataschema(event.type)
        )
        return encode_binary(event, body)

    def emit(self, event: Event, trace_headers: Mapping[str, str] | None = None) -> None:
        """Validate and send one event; raises DependencyUnavailable after the last retry."""
        headers, body = self.prepare(event)
        self.send(headers, body, trace_headers)

    def send(
        self, headers: Mapping[str, str], body: bytes, trace_headers: Mapping[str, str] | None
    ) -> None:
        """Send an already encoded event with retries."""
        if not self.sink:
            raise DependencyUnavailable("no broker configured (K_SINK is not set)")
        all_headers = {**headers, **(trace_headers or {})}
        for attempt in range(self.retries + 1):
            status = self._post(all_headers, body)
            if status is not None and 200 <= status < 300:
                return
            if status is not None and status not in RETRYABLE_STATUS:
                raise EmitRefused(f"the broker refused an emitted event with status {status}")
            if attempt < self.retries:
                self.sleep(self.backoff * (2**attempt) * (0.5 + random.random() / 2))
        raise DependencyUnavailable("the broker did not accept an emitted event", retry_after=1)

    @property
    def pool(self) -> urllib3.PoolManager:
        """The keep-alive connection pool (urllib3 is imported on the first emit)."""
        if self._pool is None:
            import urllib3

            self._pool = urllib3.PoolManager(maxsize=8, retries=False)
        return self._pool

    def _post(self, headers: Mapping[str, str], body: bytes) -> int | None:
        import urllib3

        assert self.sink is not None
        try:
            response = self.pool.request(
                "POST",
                self.sink,
                body=body,
                headers=dict(headers),
                timeout=urllib3.Timeout(total=self.timeout),
                redirect=False,
            )
        except urllib3.exceptions.HTTPError:
            return None
        return int(response.status)
