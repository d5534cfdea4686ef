"""The stored answer of a delivery: replayed to every later delivery of the same event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredResponse:
    """What a delivery answered, kept to answer every later delivery of the same event."""

    status: int
    headers: dict[str, str]
    body: bytes
    emits: list[dict[str, Any]]  # serialised events the handler emitted, sent after commit
    emits_sent: bool
    replayed: bool = False  # True when returned from the store without running the work
