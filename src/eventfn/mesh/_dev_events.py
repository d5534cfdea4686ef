"""The broker's event log as `eventfn events` shows it, read from the state directory.

The log is the broker's SQLite file (`<state dir>/broker.db`), read through `_queue.Queue`, the
broker's own API; a running `eventfn dev` keeps writing it meanwhile (SQLite WAL). Event
bodies, which that API does not return, are read with a read-only connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from eventfn._codec import decode_http
from eventfn._errors import ConfigurationError, EventfnError
from eventfn.mesh._queue import Queue

BROKER_DB = "broker.db"
FOLLOW_BATCH = 1000
FOLLOW_INTERVAL = 0.5


def broker_db(state_dir: Path) -> Path:
    """Where `eventfn dev` keeps the broker's queue and event log."""
    return state_dir / BROKER_DB


def open_log(state_dir: Path) -> Queue:
    """The event log of the mesh using `state_dir`; ConfigurationError when there is none."""
    path = broker_db(state_dir)
    if not path.is_file():
        raise ConfigurationError(f"no event log at {path}: start `eventfn dev` first")
    return Queue(path)


def event_data(db_path: Path, event_id: str) -> Any:
    """The decoded data of the newest event with `event_id` (None when absent or undecodable)."""
    uri = f"{db_path.resolve().as_uri()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        row = db.execute(
            "SELECT headers, body FROM events WHERE id = ? ORDER BY seq DESC LIMIT 1", (event_id,)
        ).fetchone()
    if row is None:
        return None
    try:
        return decode_http(json.loads(row[0]), bytes(row[1])).data
    except (EventfnError, ValueError):
        return None


def format_event(event: dict[str, Any]) -> str:
    """One line: time, type, subject, source, delivery status per Trigger."""
    at = datetime.fromtimestamp(float(event["received_at"])).strftime("%H:%M:%S.%f")[:-3]
    deliveries = ", ".join(
        f"{d['trigger']} {d['state']}"
        + (f" ({_attempts(d['attempts'])}, last {d['last_status']})" if d["attempts"] else "")
        for d in event["deliveries"]
    )
    subject = f"  [{event['subject']}]" if event.get("subject") else ""
    reply = f"  reply to {event['reply_to']}" if event.get("reply_to") else ""
    return (
        f"{at}  {event['type']:<34}{subject}  {event['source']}  "
        f"{event['status']}{': ' + deliveries if deliveries else ''}{reply}  id {event['id']}"
    )


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("" if count == 1 else "s")


def print_events(
    state_dir: Path,
    out: TextIO,
    *,
    type_prefix: str | None,
    limit: int,
    as_json: bool,
    follow: bool,
    stop: threading.Event | None = None,
) -> int:
    """Print the newest `limit` events oldest first; with `follow`, then every new one."""
    log = open_log(state_dir)
    show: Callable[[dict[str, Any]], str] = (
        (lambda event: json.dumps(event, ensure_ascii=False)) if as_json else format_event
    )
    try:
        events = list(reversed(log.events(limit, type_prefix)))
        for event in events:
            out.write(show(event) + "\n")
        out.flush()
        last = max((int(event["seq"]) for event in events), default=0)
        stop = stop or threading.Event()
        while follow and not stop.wait(FOLLOW_INTERVAL):
            fresh = [e for e in reversed(log.events(FOLLOW_BATCH, type_prefix)) if e["seq"] > last]
            for event in fresh:
                out.write(show(event) + "\n")
                last = int(event["seq"])
            out.flush()
    finally:
        log.close()
    return 0
