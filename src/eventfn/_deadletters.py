"""The dead-letter store: dead-lettered events with Knative's error extensions, decoded.

Written by the dlq-handler function (inside its event transaction) and read, replayed and purged
by `eventfn dlq`. One row per (original source, original id, failed destination): a dead letter
delivered twice to the sink is one row, while the same event failing at two subscribers is two.

Knative sets `knativeerrordest` (the URL that failed), `knativeerrorcode` (its final HTTP
status) and `knativeerrordata` (the response body, truncated to 1024 bytes, base64; the core
dispatcher may also cut the base64 text itself, so decoding is lenient). The row keeps the
original event as a structured-mode CloudEvent (`data_base64` for non-JSON data) without those
three extensions; replay strips the broker's own extensions as well.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, select, update
from sqlalchemy.sql import Select

from eventfn._codec import STRUCTURED_JSON, decode_http, encode_structured
from eventfn._errors import ConfigurationError
from eventfn._event import Event
from eventfn._tables_domain import dead_letters

ERROR_DEST = "knativeerrordest"
ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
ERROR_EXTENSIONS = (ERROR_DEST, ERROR_CODE, ERROR_DATA)
BROKER_EXTENSIONS = ("knativearrivaltime", "knativebrokerttl")
"""Set by a broker on arrival; a replayed event gets fresh ones from the broker it enters."""
ATTEMPT_EXTENSIONS = ("deliveryattempt", "attempts", "retrycount")
"""Knative's dispatchers send no attempt count; a channel or broker that adds one under one of
these names gets it stored in `attempts`."""
ERROR_DATA_MAX = 1024
EXCERPT_LENGTH = 200
MIN_PREFIX = 4
OK_PREFIX = "ok:"
AGAIN_PREFIX = "dead-lettered again"


class DeadLetterNotFound(ConfigurationError, LookupError):
    """No dead letter (or more than one) has the given id or id prefix."""


@dataclass(frozen=True)
class DeadLetter:
    """One row of `dead_letters`."""

    id: str
    event: Event
    error_dest: str | None
    error_code: int | None
    error_data: str | None
    attempts: int | None
    trace_id: str | None
    received_at: str
    replay_count: int = 0
    last_replayed_at: str | None = None
    last_replay_result: str | None = None

    @property
    def pending(self) -> bool:
        """Never replayed, or its last replay did not succeed (or it was dead-lettered again)."""
        return self.replay_count == 0 or not (self.last_replay_result or "").startswith(OK_PREFIX)

    def summary(self) -> dict[str, Any]:
        """What `eventfn.deadletter.recorded.v1` and `eventfn dlq list --json` show."""
        return {
            "id": self.id,
            "event_id": self.event.id,
            "event_type": self.event.type,
            "event_source": self.event.source,
            "subject": self.event.subject,
            "error_code": self.error_code,
            "error_dest": self.error_dest,
            "error_excerpt": error_excerpt(self.error_data),
            "attempts": self.attempts,
            "trace_id": self.trace_id,
            "received_at": self.received_at,
            "replay_count": self.replay_count,
            "last_replayed_at": self.last_replayed_at,
            "last_replay_result": self.last_replay_result,
        }


def dead_letter_id(source: str, event_id: str, error_dest: str | None) -> str:
    """The row id: a digest of the original event's source and id and the failed destination."""
    text = "\x1f".join((source, event_id, error_dest or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def decode_error_data(value: str | None) -> str | None:
    """`knativeerrordata` as text: base64 decoded leniently (a cut text loses its tail only),
    then UTF-8 with replacement characters; a value that is not base64 is kept as it is."""
    if value is None or value == "":
        return None
    text = "".join(value.split())
    if len(text) % 4 == 1:
        text = text[:-1]
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw[:ERROR_DATA_MAX].decode("utf-8", errors="replace")


def error_excerpt(error_data: str | None) -> str | None:
    """A one-line excerpt: `title: detail` of a problem body, else the text, whitespace folded."""
    if not error_data:
        return None
    text = error_data
    try:
        body = json.loads(error_data)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("title"), str):
        detail = body.get("detail")
        text = f"{body['title']}: {detail}" if isinstance(detail, str) else body["title"]
    folded = " ".join(text.split())
    if len(folded) > EXCERPT_LENGTH:
        return folded[: EXCERPT_LENGTH - 1] + "…"
    return folded


def from_event(event: Event, *, trace_id: str | None, received_at: str) -> DeadLetter:
    """The dead letter of an event received by the dead-letter sink."""
    extensions = event.extensions
    dest = extensions.get(ERROR_DEST) or None
    original = event.with_changes(
        extensions={k: v for k, v in extensions.items() if k not in ERROR_EXTENSIONS}
    )
    return DeadLetter(
        id=dead_letter_id(event.source, event.id, dest),
        event=original,
        error_dest=dest,
        error_code=_integer(extensions.get(ERROR_CODE)),
        error_data=decode_error_data(extensions.get(ERROR_DATA)),
        attempts=next(
            (n for n in (_integer(extensions.get(name)) for name in ATTEMPT_EXTENSIONS) if n),
            None,
        ),
        trace_id=trace_id,
        received_at=received_at,
    )


def replay_event(letter: DeadLetter) -> Event:
    """The original event as it is re-published: same id, without broker/error extensions."""
    extensions = letter.event.extensions
    kept = {k: v for k, v in extensions.items() if k not in BROKER_EXTENSIONS}
    return letter.event.with_changes(extensions=kept)


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


# --- statements --------------------------------------------------------------------------------


def upsert(connection: Connection, letter: DeadLetter) -> bool:
    """Insert the dead letter, or refresh its row (latest error, time and event); True if new.

    A row that was replayed before and is dead-lettered again keeps its replay count, and its
    `last_replay_result` says that the replay ended in the dead-letter sink again.
    """
    existing = connection.execute(
        select(dead_letters.c.replay_count).where(dead_letters.c.id == letter.id)
    ).one_or_none()
    values = _row(letter)
    if existing is not None and existing.replay_count:
        code = "" if letter.error_code is None else f" ({letter.error_code})"
        values["last_replay_result"] = f"{AGAIN_PREFIX}{code} at {letter.received_at}"
    insert = _insert(connection)
    statement = insert(dead_letters).values(**values, replay_count=0)
    refreshed = {name: statement.excluded[name] for name in values if name != "id"}
    connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=refreshed))
    return existing is None


def _insert(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _row(letter: DeadLetter) -> dict[str, Any]:
    event = letter.event
    return {
        "id": letter.id,
        "event_id": event.id[:200],
        "event_type": event.type[:200],
        "event_source": event.source[:512],
        "subject": None if event.subject is None else event.subject[:1024],
        "error_dest": None if letter.error_dest is None else letter.error_dest[:1024],
        "error_code": letter.error_code,
        "error_data": letter.error_data,
        "attempts": letter.attempts,
        "trace_id": letter.trace_id,
        "received_at": letter.received_at,
        "event_json": encode_structured(event)[1].decode(),
    }


def _letter(row: RowMapping) -> DeadLetter:
    event = decode_http({"content-type": STRUCTURED_JSON}, str(row["event_json"]).encode())
    return DeadLetter(
        id=row["id"],
        event=event,
        error_dest=row["error_dest"],
        error_code=row["error_code"],
        error_data=row["error_data"],
        attempts=row["attempts"],
        trace_id=row["trace_id"],
        received_at=row["received_at"],
        replay_count=int(row["replay_count"] or 0),
        last_replayed_at=row["last_replayed_at"],
        last_replay_result=row["last_replay_result"],
    )


def _filtered(
    statement: Select[Any], event_type: str | None, since: str | None, before: str | None
) -> Select[Any]:
    if event_type:
        statement = statement.where(dead_letters.c.event_type == event_type)
    if since:
        statement = statement.where(dead_letters.c.received_at >= since)
    if before:
        statement = statement.where(dead_letters.c.received_at < before)
    return statement


def find(
    connection: Connection,
    *,
    event_type: str | None = None,
    since: str | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """Dead letters, oldest first, optionally of one type and received at or after `since`."""
    statement = _filtered(select(dead_letters), event_type, since, None)
    statement = statement.order_by(dead_letters.c.received_at, dead_letters.c.id)
    if limit is not None:
        statement = statement.limit(limit)
    return [_letter(row._mapping) for row in connection.execute(statement)]


def get(connection: Connection, id_or_prefix: str) -> DeadLetter:
    """The dead letter with this id, or the only one whose id starts with it."""
    wanted = id_or_prefix.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise DeadLetterNotFound(f"give at least {MIN_PREFIX} characters of a dead-letter id")
    escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    statement = (
        select(dead_letters)
        .where(dead_letters.c.id.like(escaped + "%", escape="\\"))
        .order_by(dead_letters.c.id)
        .limit(2)
    )
    rows = connection.execute(statement).all()
    if not rows:
        raise DeadLetterNotFound(f"no dead letter has the id {id_or_prefix!r}")
    if len(rows) > 1 and rows[0].id != wanted:
        raise DeadLetterNotFound(f"more than one dead letter id starts with {id_or_prefix!r}")
    return _letter(rows[0]._mapping)


def record_replay(connection: Connection, letter_id: str, result: str, at: str) -> None:
    """Count one replay and remember when it happened and how it went."""
    connection.execute(
        update(dead_letters)
        .where(dead_letters.c.id == letter_id)
        .values(
            replay_count=dead_letters.c.replay_count + 1,
            last_replayed_at=at,
            last_replay_result=result[:1000],
        )
    )


def count(
    connection: Connection,
    *,
    event_type: str | None = None,
    before: str | None = None,
) -> int:
    """How many dead letters `purge` with the same filters would delete."""
    statement = _filtered(select(func.count()).select_from(dead_letters), event_type, None, before)
    return int(connection.execute(statement).scalar_one())


def purge(
    connection: Connection,
    *,
    event_type: str | None = None,
    before: str | None = None,
) -> int:
    """Delete dead letters (of a type, received before a time); the number deleted."""
    statement = delete(dead_letters)
    if event_type:
        statement = statement.where(dead_letters.c.event_type == event_type)
    if before:
        statement = statement.where(dead_letters.c.received_at < before)
    return int(connection.execute(statement).rowcount)


def normalise_time(value: str) -> str:
    """An ISO 8601 date or date-time as stored (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC); a time
    without an offset is UTC. ConfigurationError when it is not a date."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"{value!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    stamp = parsed.astimezone(UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")
