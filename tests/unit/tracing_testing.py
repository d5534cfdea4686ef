"""Shared by the tracing tests: a W3C trace context and the attributes of an event.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
ATTRIBUTES = {
    "id": "evt-1",
    "source": "/storage/bucket",
    "type": "eventfn.storage.object.created.v1",
    "subject": "documents/a.pdf",
    "specversion": "1.0",
}


def is_id(value: str, length: int) -> bool:
    return len(value) == length and value.strip("0123456789abcdef") == "" and value.strip("0") != ""
