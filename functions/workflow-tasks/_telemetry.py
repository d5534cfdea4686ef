"""The telemetry-pipeline tasks over the object store: validate, aggregate, load."""

from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Any

from eventfn._errors import Rejected

if TYPE_CHECKING:
    from eventfn._objects import ObjectStore


def _readings(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    text = store.get(key).decode("utf-8", errors="replace")
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        raise Rejected("the telemetry file is not JSON lines", field="key") from None
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = rows[0]
    return rows


def _key(data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        raise Rejected("the task needs the object key", field="key")
    return str(data["key"])


def validate_telemetry(store: ObjectStore, data: Any) -> dict[str, Any]:
    """{records} when every reading has a device_id and a numeric value."""
    rows = _readings(store, _key(data))
    for row in rows:
        value = row.get("value") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("device_id"), str):
            raise Rejected("a reading has no device_id", field="device_id")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Rejected("a reading has no numeric value", field="value")
    if not rows:
        raise Rejected("the telemetry file is empty", field="key")
    return {"records": len(rows)}


def transform(store: ObjectStore, data: Any) -> dict[str, Any]:
    """Per-device count/min/max/mean, written to processed/<key>.json."""
    key = _key(data)
    devices: dict[str, list[float]] = {}
    for row in _readings(store, key):
        devices.setdefault(row["device_id"], []).append(float(row["value"]))
    summary = [
        {"device_id": device, "count": len(values), "min": min(values), "max": max(values),
         "mean": round(sum(values) / len(values), 6)}
        for device, values in sorted(devices.items())
    ]  # fmt: skip
    out = f"processed/{key}.json"
    store.put(out, json.dumps(summary).encode(), "application/json")
    return {"key": out, "devices": len(summary)}


def load_to_warehouse(store: ObjectStore, data: Any) -> dict[str, Any]:
    """Write the aggregates as the warehouse partition of the source file (replacing it)."""
    key = _key(data)
    rows = json.loads(store.get(key))
    target = "warehouse/telemetry/" + posixpath.basename(key)
    store.put(target, "\n".join(json.dumps(row) for row in rows).encode(), "application/x-ndjson")
    return {"table": "warehouse/telemetry", "key": target, "rows": len(rows)}
