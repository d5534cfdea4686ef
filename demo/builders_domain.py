"""Demo inputs of the domain family: two confirmed orders of the monolith for inventory-updater,
one that the stock can serve and one that it cannot (a desk lamp short). Deterministic: fixed
ids, no clock.

The stock they run against is demo/inventory-seed.json. The demo loads it before the mesh starts
(`make run` runs `eventfn inventory seed demo/inventory-seed.json`, which writes the SQLite store
of `.eventfn/` that `eventfn dev` uses); seeding sets the listed SKUs, so every run starts from
the same stock. Orders are published straight to the broker, as ingest-api would publish them.

The lead registers them in make_inputs.py (`builder(order_in_stock)`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from make_inputs import DemoInput

SEED_FILE = Path(__file__).resolve().parent / "inventory-seed.json"
CONFIRMED = "eventfn.order.confirmed.v1"
UPDATED = "eventfn.inventory.updated.v1"
REJECTED = "eventfn.inventory.rejected.v1"
CONFIRMED_AT = "2026-11-28T10:15:00Z"


def seed_stock() -> dict[str, int]:
    """SKU -> quantity of the demo stock."""
    document = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    return {item["sku"]: int(item["quantity"]) for item in document["items"]}


def _order(order_id: str, items: list[tuple[str, int]], customer: dict[str, str]) -> bytes:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "type": CONFIRMED,
        "source": "/eventfn/demo/monolith",
        "id": f"demo-{order_id}",
        "subject": order_id,
        "time": CONFIRMED_AT,
        "datacontenttype": "application/json",
        "data": {
            "order_id": order_id,
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
            "customer": customer,
            "confirmed_at": CONFIRMED_AT,
        },
    }
    return (json.dumps(event, indent=2, ensure_ascii=False) + "\n").encode()


def order_in_stock() -> DemoInput:
    """Two mugs and a T-shirt: in stock, taken out in one transaction."""
    stock = seed_stock()
    items = [("MUG-1", 2), ("TEE-M", 1)]
    if any(stock[sku] < quantity for sku, quantity in items):
        raise SystemExit(f"{SEED_FILE} no longer covers the in-stock demo order")
    return DemoInput(
        name="order-in-stock",
        kind="event",
        file="events/order-in-stock.json",
        content=_order("SO-1001", items, {"id": "c-17", "name": "Ada Lovelace"}),
        description="a confirmed order the seeded stock can serve -> inventory updated",
        expect=(CONFIRMED, UPDATED),
        requires=("inventory-updater",),
    )


def order_short_of_stock() -> DemoInput:
    """A mug and two desk lamps, but only one lamp in stock: nothing changes, rejected."""
    stock = seed_stock()
    items = [("MUG-1", 1), ("LAMP-3", stock["LAMP-3"] + 1)]
    return DemoInput(
        name="order-short-of-stock",
        kind="event",
        file="events/order-short-of-stock.json",
        content=_order("SO-1002", items, {"id": "c-23", "name": "Grace Hopper"}),
        description="a confirmed order with a short item -> inventory rejected, stock unchanged",
        expect=(CONFIRMED, REJECTED),
        requires=("inventory-updater",),
    )
