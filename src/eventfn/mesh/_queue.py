"""The broker's durable store: accepted events, their pending deliveries and the hop log, in SQLite.

Durability: WAL journal with `synchronous=NORMAL`. A committed transaction is in the WAL file
before `accept()` returns and the ingress answers 202, so it survives the mesh process dying in
any way (kill -9, a crash: what tests/mesh/test_queue_crash.py proves). The WAL is fsynced only
at checkpoints, so an OS crash or a power loss may lose the last transactions (SQLite's database
file stays consistent). That is the trade-off of a local development mesh (Knative's own
InMemoryChannel keeps nothing at all): with `synchronous=FULL` every commit waits for an fsync
(about 1 ms on an idle SSD, far more under load) behind the one connection's lock, which capped
the broker at a few hundred events/s.

An event row and the delivery rows of every Trigger it matched are written in ONE transaction,
and a delivery is marked done in the same transaction that stores its reply (so a reply that
cannot be stored leaves the delivery pending and it is retried). Deliveries being attempted are
not marked in the database: after a crash every non-final delivery is simply pending again and
is redelivered (at-least-once; duplicates are expected).

One connection is shared by all threads behind a lock; SQLite serialises writers anyway. Writes
of threads that wait for that lock are committed together, each still returning only once its
own work is committed, and WAL checkpoints run in a thread of their own (see `_commit`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from eventfn.mesh._commit import RESTART_BYTES, Checkpointer, GroupCommit
from eventfn.mesh._records import (
    DEAD_LETTERED,
    DELIVERED,
    FAILED,
    PENDING,
    SUBSCRIBER,
    Hop,
    Job,
    StoredEvent,
)

HOPS_WITHOUT_EVENT_LIMIT = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    subject TEXT,
    namespace TEXT NOT NULL,
    broker TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    trace TEXT NOT NULL,
    ttl INTEGER NOT NULL,
    parent_seq INTEGER,
    received_at REAL NOT NULL,
    matched INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_id ON events(id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL REFERENCES events(seq),
    trigger TEXT NOT NULL,
    phase TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    state TEXT NOT NULL,
    last_status INTEGER,
    error_dest TEXT,
    error_code INTEGER,
    error_data BLOB,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_seq);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(state) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS hops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_source TEXT NOT NULL,
    subject TEXT,
    trace_id TEXT,
    trigger TEXT,
    destination TEXT NOT NULL,
    status INTEGER,
    latency_ms REAL NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hops_event ON hops(event_id);
"""


class Queue:
    """SQLite-backed events, deliveries and hops."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")  # `eventfn events` may read concurrently
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # see the module docstring
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does them
        self._db.execute(f"PRAGMA journal_size_limit={RESTART_BYTES}")
        self._db.executescript(_SCHEMA)
        self._commits = GroupCommit(self._db, self._lock)  # writes of concurrent threads
        self._checkpoints = Checkpointer(path)
        self._checkpoints.start()

    def accept(
        self, event: StoredEvent, triggers: Sequence[str], hops: Sequence[Hop]
    ) -> tuple[StoredEvent, list[Job]]:
        """Store an event and one pending delivery per matched Trigger, atomically."""
        return self._commits.run(lambda db: _insert_event(db, event, triggers, hops))

    def finish(
        self,
        job: Job,
        state: str,
        status: int | None,
        hops: Sequence[Hop],
        *,
        reply: tuple[StoredEvent, Sequence[str]] | None = None,
        now: float,
    ) -> tuple[StoredEvent, list[Job]] | None:
        """Mark a delivery final, storing its reply (and the reply's deliveries) atomically."""

        def work(db: sqlite3.Connection) -> tuple[StoredEvent, list[Job]] | None:
            db.execute(
                "UPDATE deliveries SET state = ?, last_status = ?, attempt = ?, updated_at = ? "
                "WHERE id = ?",
                (state, status, job.attempt + 1, now, job.id),
            )
            stored = None
            if reply is not None:
                stored = _insert_event(db, reply[0], reply[1], (), parent_seq=job.event.seq)
            _insert_hops(db, hops)
            return stored

        return self._commits.run(work)

    def reschedule(self, job: Job, status: int | None, hops: Sequence[Hop], now: float) -> None:
        """Persist the next attempt of a delivery (`job` carries the new attempt and time)."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE deliveries SET phase = ?, attempt = ?, next_attempt_at = ?, "
                "last_status = ?, error_dest = ?, error_code = ?, error_data = ?, updated_at = ? "
                "WHERE id = ?",
                (
                    job.phase,
                    job.attempt,
                    job.next_at,
                    status,
                    job.error_dest,
                    job.error_code,
                    job.error_data,
                    now,
                    job.id,
                ),
            )
            _insert_hops(db, hops)

        self._commits.run(work)

    def record(self, hops: Sequence[Hop]) -> None:
        """Store hops that change no delivery."""
        self._commits.run(lambda db: _insert_hops(db, hops))

    def pending(self) -> list[Job]:
        """Every non-final delivery, oldest first (what a restarted broker redelivers)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.id, d.trigger, d.phase, d.attempt, d.next_attempt_at, d.error_dest, "
                "d.error_code, d.error_data, e.seq, e.id, e.type, e.source, e.subject, "
                "e.namespace, e.broker, e.headers, e.body, e.trace, e.ttl, e.received_at, "
                "e.parent_seq FROM deliveries d JOIN events e ON e.seq = d.event_seq "
                "WHERE d.state = 'pending' ORDER BY d.id"
            ).fetchall()
        return [_job_from_row(row) for row in rows]

    def events(self, limit: int, type_prefix: str | None) -> list[dict[str, Any]]:
        """The newest events with their delivery states."""
        query = (
            "SELECT e.seq, e.id, e.type, e.source, e.subject, e.namespace, e.broker, e.headers, "
            "length(e.body), e.received_at, e.ttl, p.id FROM events e "
            "LEFT JOIN events p ON p.seq = e.parent_seq"
        )
        args: list[Any] = []
        if type_prefix:
            query += " WHERE substr(e.type, 1, ?) = ?"
            args += [len(type_prefix), type_prefix]
        query += " ORDER BY e.seq DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
            seqs = [row[0] for row in rows]
            deliveries = self._db.execute(
                "SELECT event_seq, trigger, phase, state, attempt, last_status FROM deliveries "
                "WHERE event_seq IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(seqs),),
            ).fetchall()
        by_event: dict[int, list[dict[str, Any]]] = {seq: [] for seq in seqs}
        keys = ("trigger", "phase", "state", "attempts", "last_status")
        for seq, *values in deliveries:
            by_event[seq].append(dict(zip(keys, values, strict=True)))
        return [_event_dict(row, by_event[row[0]]) for row in rows]

    def hops(self, event_id: str | None) -> list[Hop]:
        """The hops of one event, or the most recent hops of all events, oldest first."""
        with self._lock:
            if event_id is not None:
                rows = self._db.execute(
                    "SELECT time, event_id, event_type, event_source, subject, trace_id, trigger, "
                    "destination, status, latency_ms, attempt, outcome FROM hops "
                    "WHERE event_id = ? ORDER BY seq",
                    (event_id,),
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT time, event_id, event_type, event_source, subject, trace_id, trigger, "
                    "destination, status, latency_ms, attempt, outcome FROM hops "
                    "ORDER BY seq DESC LIMIT ?",
                    (HOPS_WITHOUT_EVENT_LIMIT,),
                ).fetchall()
                rows.reverse()
        return [Hop(*row) for row in rows]

    def close(self) -> None:
        """Close the connection (which checkpoints what is left)."""
        self._checkpoints.stop()
        with self._lock:
            self._db.close()


def _insert_event(
    db: sqlite3.Connection,
    event: StoredEvent,
    triggers: Sequence[str],
    hops: Sequence[Hop],
    *,
    parent_seq: int | None = None,
) -> tuple[StoredEvent, list[Job]]:
    """Insert the event (as a reply of `parent_seq`) with one delivery per Trigger.

    The event is returned with its `seq` (and parent) when it has deliveries, as their jobs
    carry it; an event nothing subscribes to is returned as given (copying it costs time)."""
    if parent_seq is None:
        parent_seq = event.parent_seq
    cursor = db.execute(
        "INSERT INTO events (id, type, source, subject, namespace, broker, headers, body, trace, "
        "ttl, parent_seq, received_at, matched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.type,
            event.source,
            event.subject,
            event.namespace,
            event.broker,
            json.dumps(event.headers),
            event.body,
            json.dumps(event.trace),
            event.ttl,
            parent_seq,
            event.received_at,
            len(triggers),
        ),
    )
    _insert_hops(db, hops)
    if not triggers:
        return event, []
    stored = replace(event, seq=int(cursor.lastrowid or 0), parent_seq=parent_seq)
    jobs = []
    for trigger in triggers:
        cursor = db.execute(
            "INSERT INTO deliveries (event_seq, trigger, phase, attempt, next_attempt_at, state, "
            "updated_at) VALUES (?, ?, ?, 0, ?, 'pending', ?)",
            (stored.seq, trigger, SUBSCRIBER, event.received_at, event.received_at),
        )
        jobs.append(
            Job(int(cursor.lastrowid or 0), stored, trigger, SUBSCRIBER, 0, event.received_at)
        )
    return stored, jobs


def _insert_hops(db: sqlite3.Connection, hops: Sequence[Hop]) -> None:
    if hops:
        db.executemany(
            "INSERT INTO hops (time, event_id, event_type, event_source, subject, trace_id, "
            "trigger, destination, status, latency_ms, attempt, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [tuple(vars(hop).values()) for hop in hops],
        )


def _job_from_row(row: tuple[Any, ...]) -> Job:
    (job_id, trigger, phase, attempt, next_at, error_dest, error_code, error_data) = row[:8]
    (seq, event_id, type_, source, subject, namespace, broker) = row[8:15]
    (headers, body, trace, ttl, received_at, parent_seq) = row[15:]
    event = StoredEvent(
        id=event_id,
        type=type_,
        source=source,
        subject=subject,
        namespace=namespace,
        broker=broker,
        headers=json.loads(headers),
        body=bytes(body),
        trace=json.loads(trace),
        ttl=ttl,
        received_at=received_at,
        parent_seq=parent_seq,
        seq=seq,
    )
    data = None if error_data is None else bytes(error_data)
    return Job(job_id, event, trigger, phase, attempt, next_at, error_dest, error_code, data)


def _event_dict(row: tuple[Any, ...], deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    (seq, event_id, type_, source, subject, namespace, broker, headers, size) = row[:9]
    (received_at, ttl, reply_to) = row[9:]
    attributes = {
        name[3:]: value for name, value in json.loads(headers).items() if name.startswith("ce-")
    }
    return {
        "seq": seq,
        "id": event_id,
        "type": type_,
        "source": source,
        "subject": subject,
        "namespace": namespace,
        "broker": broker,
        "received_at": received_at,
        "reply_to": reply_to,
        "ttl": ttl,
        "size": size,
        "attributes": attributes,
        "status": _summary(deliveries),
        "deliveries": deliveries,
    }


def _summary(deliveries: list[dict[str, Any]]) -> str:
    states = {delivery["state"] for delivery in deliveries}
    if not states:
        return "no-match"
    for state in (PENDING, FAILED, DEAD_LETTERED):
        if state in states:
            return state
    return DELIVERED
