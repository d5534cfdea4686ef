"""The CloudEvent as handlers see it: a small frozen value, independent of any SDK."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

CORE_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
)


def utc_now_rfc3339() -> str:
    """The current time as an RFC 3339 string with a `Z` suffix."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvent (spec 1.0). `data` is parsed JSON for JSON content types, else bytes."""

    type: str
    source: str
    id: str
    data: Any = None
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    specversion: str = "1.0"
    extensions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        type: str,
        source: str,
        data: Any = None,
        **attributes: Any,
    ) -> Event:
        """A new event with a fresh UUID id and the current time."""
        attributes.setdefault("id", str(uuid.uuid4()))
        attributes.setdefault("time", utc_now_rfc3339())
        if data is not None and "datacontenttype" not in attributes:
            attributes["datacontenttype"] = "application/json"
        return cls(type=type, source=source, data=data, **attributes)

    def attribute(self, name: str) -> str | None:
        """A core or extension attribute by its CloudEvents name, or None when absent."""
        if name in CORE_ATTRIBUTES:
            value = getattr(self, name)
            return None if value is None else str(value)
        return self.extensions.get(name)

    def attributes(self) -> dict[str, str]:
        """Every present attribute (core and extensions) as strings."""
        attrs = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        if self.subject is not None:
            attrs["subject"] = self.subject
        if self.time is not None:
            attrs["time"] = self.time
        if self.datacontenttype is not None:
            attrs["datacontenttype"] = self.datacontenttype
        if self.dataschema is not None:
            attrs["dataschema"] = self.dataschema
        if self.extensions:
            attrs.update(self.extensions)
        return attrs

    def with_changes(self, **changes: Any) -> Event:
        """A copy with some attributes replaced."""
        return replace(self, **changes)
