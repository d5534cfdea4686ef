"""What the lake-archiver writes: each event as one structured-mode CloudEvent JSON line.

The handler is registered with `validate=False`, so it sees the data as it was sent, not as the
schema registry would decode it: JSON stays JSON (`data`), Avro and any other bytes are kept
byte for byte (`data_base64`), and an event whose data breaks its schema is archived too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventfn import Event
from eventfn._codec import encode_structured
from eventfn._lake import LAKE_ROOT

TYPE_PREFIX = "eventfn."
STORAGE_CREATED = "eventfn.storage.object.created.v1"


def ndjson_line(event: Event) -> str:
    """The structured-mode JSON of the event, on one line."""
    _, body = encode_structured(event)
    return body.decode()


def is_lake_object(event: Event, lake_bucket: str) -> bool:
    """True for the storage event of an object the archive itself wrote (never archived: that
    would feed the lake with its own batches, forever)."""
    data: Any = event.data
    if event.type != STORAGE_CREATED or not isinstance(data, Mapping):
        return False
    key = str(data.get("key") or event.subject or "")
    return data.get("bucket") == lake_bucket and key.startswith(LAKE_ROOT)
