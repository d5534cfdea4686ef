"""What a handler receives besides the event: its transaction, emitter buffer and telemetry."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventfn._event import Event, utc_now_rfc3339

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from eventfn._objects import ObjectStore
    from eventfn._settings import Settings
    from eventfn._tracing import TraceContext

_ID_NAMESPACE = uuid.UUID("6f1c2f5e-8d0b-4a53-9a8e-3f1b2c4d5e6f")


def derived_id(*parts: str) -> str:
    """A deterministic event id: redelivery of the same input yields the same output ids."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class Reply:
    """A handler's answer: `data` sent back as a CloudEvent of `type` (default: declared)."""

    data: Any = None
    type: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    extensions: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """Per-event context.

    `tx` is the event's transaction: with idempotency on, the one the idempotency record commits
    in; otherwise a transaction opened on first use and committed after the handler returns.
    """

    function: str
    event: Event
    settings: Settings
    trace: TraceContext
    logger: logging.Logger
    transaction: Callable[[], Connection] | None = None
    idempotency_key: str = ""
    objects_factory: Callable[[], ObjectStore] | None = None
    emitted: list[Event] = field(default_factory=list)

    @property
    def tx(self) -> Connection | None:
        """The open transaction of this event (None when the function has no database)."""
        return None if self.transaction is None else self.transaction()

    @property
    def source(self) -> str:
        """The `source` of events this function produces."""
        return self.settings.event_source

    @property
    def objects(self) -> ObjectStore:
        """The object store client (one per process and configuration, see ObjectStore.shared)."""
        if self.objects_factory is None:
            from eventfn._objects import ObjectStore

            return ObjectStore.shared(self.settings)
        return self.objects_factory()

    def emit(
        self,
        type: str,
        data: Any = None,
        *,
        subject: str | None = None,
        datacontenttype: str | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> Event:
        """Queue an event for the broker; it is sent after this event's work has committed."""
        if type == self.event.type:
            from eventfn._errors import RegistrationError

            raise RegistrationError(f"a handler of {type!r} must not emit the same type (loop)")
        event = Event(
            type=type,
            source=self.source,
            id=derived_id(self.function, self.idempotency_key, "emit", str(len(self.emitted))),
            data=data,
            subject=subject,
            time=utc_now_rfc3339(),
            datacontenttype=datacontenttype or ("application/json" if data is not None else None),
            extensions=dict(extensions or {}),
        )
        self.emitted.append(event)
        return event
