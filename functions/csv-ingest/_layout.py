"""Where csv-ingest reads and writes: which keys it takes and the keys of its outputs.

    raw/sales/2026-11-28.csv  ->  processed/sales/year=2026/month=11/day=28/2026-11-28-<h>.parquet
    raw/orders.csv            ->  processed/orders/year=.../orders-<h>.parquet
    ragged rows               ->  quarantine/<same path as the Parquet>.csv

The date is the event time's (UTC). `<h>` is a short hash of the object key and its ETag: a
new version of the file gets a new name (it never overwrites the old output), a redelivery of
the same notification gets the same name (it overwrites its own output), and two identical
files under different keys never share an output.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

RAW_PREFIX = "raw/"
CSV_SUFFIX = ".csv"
PROCESSED_PREFIX = "processed/"
QUARANTINE_PREFIX = "quarantine/"
HASH_CHARS = 10


@dataclass(frozen=True)
class Layout:
    """The output keys of one input object."""

    dataset: str
    partition: str  # year=YYYY/month=MM/day=DD
    name: str

    @property
    def output_key(self) -> str:
        return f"{PROCESSED_PREFIX}{self.dataset}/{self.partition}/{self.name}.parquet"

    @property
    def quarantine_key(self) -> str:
        return f"{QUARANTINE_PREFIX}{self.dataset}/{self.partition}/{self.name}.csv"


def is_input(key: str) -> bool:
    """True for `raw/**.csv` (what the Trigger delivers); everything else is ignored."""
    return key.startswith(RAW_PREFIX) and key.endswith(CSV_SUFFIX)


def layout_for(key: str, etag: str, when: datetime) -> Layout:
    """The outputs of object `key` (an `is_input` key) with `etag`, processed for time `when`."""
    rest = key[len(RAW_PREFIX) :]
    folder, _, filename = rest.rpartition("/")
    stem = filename[: -len(CSV_SUFFIX)] or "unnamed"
    dataset = folder.split("/", 1)[0] if folder else stem
    digest = hashlib.sha256(f"{key}\x1f{etag}".encode()).hexdigest()[:HASH_CHARS]
    day = when.astimezone(UTC)
    partition = f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"
    return Layout(dataset=dataset, partition=partition, name=f"{stem}-{digest}")


def event_time(data: dict[str, Any], time: str | None, fallback: datetime) -> datetime:
    """The time the object was created: the notification's, the CloudEvent's, else `fallback`.

    The same event always gives the same time, so `processed_at` and the partition are stable
    across redeliveries.
    """
    for value in (data.get("event_time"), time):
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback if fallback.tzinfo else fallback.replace(tzinfo=UTC)
