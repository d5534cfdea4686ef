"""Demo inputs of the user events: an Avro `eventfn.user.created.v1` and the
`eventfn.user.updated.v1` that follows it, as structured-mode CloudEvents (`data_base64`) for
the broker ingress. user-indexer stores the newest version (whatever order the two arrive in)
and lake-archiver archives both. Deterministic: fixed times and ids, no clock, no downloads.

The lead registers them in make_inputs.py (`builder(user_created)`, `builder(user_updated)`).
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from make_inputs import DemoInput

CREATED = "eventfn.user.created.v1"
UPDATED = "eventfn.user.updated.v1"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
USER_ID = "u-1815"


def _avro(event_type: str, record: dict[str, Any]) -> bytes:
    document = json.loads((SCHEMAS / f"{event_type}.avsc").read_text(encoding="utf-8"))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(document), record)
    return buffer.getvalue()


def _event(event_type: str, record: dict[str, Any], time: str) -> bytes:
    event = {
        "specversion": "1.0",
        "type": event_type,
        "source": "/eventfn/demo",
        "id": f"demo-{event_type.split('.')[2]}-{record['user_id']}-v{record['version']}",
        "subject": f"users/{record['user_id']}",
        "time": time,
        "datacontenttype": "application/avro",
        "partitionkey": record["user_id"],
        "data_base64": base64.b64encode(_avro(event_type, record)).decode(),
    }
    return (json.dumps(event, indent=2) + "\n").encode()


def _user(version: int, name: str, tags: list[str], at: datetime) -> dict[str, Any]:
    return {
        "user_id": USER_ID,
        "email": "ada@analytical-engine.example",
        "name": name,
        "version": version,
        "updated_at": at,
        "tags": tags,
    }


def user_created() -> DemoInput:
    """Version 1 of a user, Avro-encoded."""
    at = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
    return DemoInput(
        name="user-created",
        kind="event",
        file="events/user-created.json",
        content=_event(CREATED, _user(1, "Ada Byron", ["analyst"], at), "2026-11-28T09:00:00Z"),
        description="an Avro user (version 1) published to the broker: indexed and archived",
        expect=(CREATED,),
        requires=("user-indexer",),
    )


def user_updated() -> DemoInput:
    """Version 2 of the same user: renamed and tagged; it wins whichever arrives first."""
    at = datetime(2026, 11, 28, 9, 5, 0, tzinfo=UTC)
    record = _user(2, "Ada Lovelace", ["analyst", "mathematician"], at)
    return DemoInput(
        name="user-updated",
        kind="event",
        file="events/user-updated.json",
        content=_event(UPDATED, record, "2026-11-28T09:05:00Z"),
        description="version 2 of that user: `eventfn users search lovelace` finds it",
        expect=(UPDATED,),
        requires=("user-indexer",),
    )
