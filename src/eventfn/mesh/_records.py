"""The broker's records: an accepted event, a pending delivery and a hop, as plain data.

They mirror rows of the broker's store (`_queue`): `StoredEvent` an `events` row, `Job` a
`deliveries` row that is not final yet, `Hop` a `hops` row (one delivery attempt's outcome or an
ingress record), which `eventfn dev` prints and `eventfn events` shows.
"""

from __future__ import annotations

from dataclasses import dataclass

PENDING, DELIVERED, DEAD_LETTERED, FAILED = "pending", "delivered", "dead-lettered", "failed"
SUBSCRIBER, DEAD_LETTER = "subscriber", "dead-letter"


@dataclass(frozen=True)
class Hop:
    """One delivery attempt outcome (or ingress record), for printing and the event log."""

    time: float
    event_id: str
    event_type: str
    event_source: str
    subject: str | None
    trace_id: str | None
    trigger: str | None
    destination: str
    status: int | None
    latency_ms: float
    attempt: int
    outcome: str


@dataclass(frozen=True)
class StoredEvent:
    """An accepted event in binary mode, as it is delivered."""

    id: str
    type: str
    source: str
    subject: str | None
    namespace: str
    broker: str
    headers: dict[str, str]
    body: bytes
    trace: dict[str, str]
    ttl: int
    received_at: float
    parent_seq: int | None = None
    seq: int = 0


@dataclass(frozen=True)
class Job:
    """A pending delivery: the in-memory mirror of a `deliveries` row."""

    id: int
    event: StoredEvent
    trigger: str
    phase: str
    attempt: int
    next_at: float
    error_dest: str | None = None
    error_code: int | None = None
    error_data: bytes | None = None


def hop_of(
    event: StoredEvent,
    outcome: str,
    trigger: str | None,
    destination: str,
    status: int | None,
    *,
    at: float,
    latency: float = 0.0,
    attempt: int = 0,
) -> Hop:
    """The hop of `event` at time `at`, on the trace its `traceparent` header names (if any)."""
    traceparent = event.trace.get("traceparent", "").split("-")
    trace_id = traceparent[1] if len(traceparent) == 4 else None
    return Hop(
        time=at,
        event_id=event.id,
        event_type=event.type,
        event_source=event.source,
        subject=event.subject,
        trace_id=trace_id,
        trigger=trigger,
        destination=destination,
        status=status,
        latency_ms=latency,
        attempt=attempt,
        outcome=outcome,
    )
