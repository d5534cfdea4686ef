"""A user event's data (an Avro `eventfn.user.User` record, decoded by the runtime) as a row.

The order of two versions of one user is (version, updated_at_ms, event_time, event_id),
compared lexicographically: a higher version wins; on equal versions the later write, then the
later event, then (only to make the outcome independent of delivery order) the greater id.
`event_time` is stored normalised to UTC with microseconds, so comparing the strings compares
the instants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventfn import Event, PermanentError
from eventfn._binary import parse_time

PARTITION_KEY = "partitionkey"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class InvalidUserEvent(PermanentError, ValueError):
    """The event cannot describe a user: its data or its partition key is wrong."""

    status = 422
    code = "invalid-user-event"
    title = "Invalid user event"


@dataclass(frozen=True)
class UserRow:
    """One row of `users`."""

    user_id: str
    email: str
    name: str
    tags: str  # JSON list of strings
    version: int
    updated_at_ms: int
    event_time: str
    event_id: str

    def values(self) -> dict[str, Any]:
        """The column values."""
        return asdict(self)


def user_row(event: Event) -> UserRow:
    """The row for `event`; InvalidUserEvent when the data or partition key do not fit."""
    data = event.data
    if not isinstance(data, Mapping):
        raise InvalidUserEvent("user event data must be a user record", field="data")
    user_id = _text(data, "user_id")
    if not user_id:
        raise InvalidUserEvent("user_id must not be empty", field="data.user_id")
    partition = event.extensions.get(PARTITION_KEY)
    if partition is not None and partition != user_id:
        raise InvalidUserEvent(
            "the partitionkey extension must be the user id (per-user ordering)",
            field=PARTITION_KEY,
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InvalidUserEvent("version must be a non-negative integer", field="data.version")
    return UserRow(
        user_id=user_id,
        email=_text(data, "email"),
        name=_text(data, "name"),
        tags=json.dumps([str(tag) for tag in data.get("tags") or []], ensure_ascii=False),
        version=version,
        updated_at_ms=_millis(data.get("updated_at")),
        event_time=normalised_time(event.time),
        event_id=event.id,
    )


def normalised_time(value: str | None) -> str:
    """An RFC 3339 time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC); "" when absent (oldest)."""
    if not value:
        return ""
    instant = parse_time(value).astimezone(UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidUserEvent(f"{name} must be a string", field=f"data.{name}")
    return value


def _millis(value: object) -> int:
    """`updated_at`: a datetime (Avro timestamp-millis, decoded) or epoch milliseconds."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // _MILLISECOND
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidUserEvent("updated_at must be a timestamp", field="data.updated_at")
