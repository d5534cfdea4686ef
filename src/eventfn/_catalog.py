"""What the event path needs from the schema registry, and the catalog of a function without one.

`SchemaRegistry` (in `_schemas.py`) satisfies `SchemaCatalog`; `NO_SCHEMAS` lets a function with
no `schemas/` directory run without importing jsonschema and fastavro at all.
"""

from __future__ import annotations

from typing import Protocol


class SchemaCatalog(Protocol):
    """Validation and serialisation of event data by event type."""

    def has(self, event_type: str) -> bool:
        """True when a schema is registered for the type."""
        ...

    def dataschema(self, event_type: str) -> str | None:
        """The `dataschema` URI events of this type carry."""
        ...

    def decode(self, event_type: str, data: object, content_type: str | None) -> object:
        """Validate (and decode) incoming data."""
        ...

    def encode(self, event_type: str, data: object, content_type: str | None) -> tuple[bytes, str]:
        """Validate and serialise outgoing data: (body, content type)."""
        ...


class _NoSchemas:
    """A catalog with no schema: data passes through unvalidated."""

    def has(self, event_type: str) -> bool:
        return False

    def dataschema(self, event_type: str) -> str | None:
        return None

    def decode(self, event_type: str, data: object, content_type: str | None) -> object:
        return data

    def encode(self, event_type: str, data: object, content_type: str | None) -> tuple[bytes, str]:
        from eventfn._binary import encode_data
        from eventfn._event import Event

        event = Event(type=event_type, source="/", id="-", data=data, datacontenttype=content_type)
        return encode_data(event), content_type or "application/json"


NO_SCHEMAS: SchemaCatalog = _NoSchemas()
