"""Stock levels of the inventory tables: seed files, seeding and listing (`eventfn inventory`).

A seed file is JSON: ``{"items": [{"sku": "SKU-1", "name": "Mug", "quantity": 12}, ...]}`` (or
the bare list). Seeding sets each listed SKU to the given name and quantity (insert or update)
in one transaction and leaves other SKUs alone; it is how stock is loaded before orders arrive
(`make run` seeds the demo stock this way). Orders change stock only through inventory-updater.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from eventfn._errors import ConfigurationError
from eventfn._event import utc_now_rfc3339
from eventfn._tables_domain import inventory_items, inventory_orders

MAX_SKU_LENGTH = 100
MAX_NAME_LENGTH = 200
MAX_QUANTITY = 2**31 - 1


@dataclass(frozen=True, slots=True)
class StockItem:
    """One SKU with its display name and the units in stock."""

    sku: str
    name: str
    quantity: int


def parse_seed(document: Any, where: str = "seed") -> list[StockItem]:
    """The items of a seed document; ConfigurationError naming the first bad entry."""
    entries = document.get("items") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(
            f"{where}: expected a non-empty list of items (or {{'items': [...]}})"
        )
    items: dict[str, StockItem] = {}
    for index, entry in enumerate(entries):
        item = _seed_item(entry, f"{where}: items[{index}]")
        if item.sku in items:
            raise ConfigurationError(f"{where}: items[{index}]: SKU {item.sku!r} is listed twice")
        items[item.sku] = item
    return list(items.values())


def _seed_item(entry: Any, where: str) -> StockItem:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: expected an object with sku and quantity")
    sku, name, quantity = (
        entry.get("sku"),
        entry.get("name", entry.get("sku")),
        entry.get("quantity"),
    )
    if not isinstance(sku, str) or not sku.strip() or len(sku) > MAX_SKU_LENGTH:
        raise ConfigurationError(
            f"{where}: sku must be a string of 1 to {MAX_SKU_LENGTH} characters"
        )
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise ConfigurationError(f"{where}: name must be a string of at most {MAX_NAME_LENGTH}")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ConfigurationError(f"{where}: quantity must be an integer >= 0")
    if not 0 <= quantity <= MAX_QUANTITY:
        raise ConfigurationError(f"{where}: quantity must be an integer >= 0")
    return StockItem(sku, name, quantity)


def read_seed_file(path: Path) -> list[StockItem]:
    """Parse a seed file; ConfigurationError naming the file when it is unreadable or invalid."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigurationError(
            f"{path}: not a readable JSON file ({type(error).__name__})"
        ) from None
    return parse_seed(document, str(path))


def seed(connection: Connection, items: Sequence[StockItem], *, now: str | None = None) -> int:
    """Insert or update every item (name and quantity) in the caller's transaction."""
    if not items:
        return 0
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    stamp = now or utc_now_rfc3339()
    rows = [
        {"sku": i.sku, "name": i.name, "quantity": i.quantity, "updated_at": stamp} for i in items
    ]
    statement = insert(inventory_items).values(rows)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[inventory_items.c.sku],
            set_={
                "name": excluded.name,
                "quantity": excluded.quantity,
                "updated_at": excluded.updated_at,
            },
        )
    )
    return len(rows)


def stock(engine: Engine, skus: Sequence[str] = ()) -> list[StockItem]:
    """The stock of `skus` (all SKUs when empty), sorted by SKU."""
    query = select(inventory_items).order_by(inventory_items.c.sku)
    if skus:
        query = query.where(inventory_items.c.sku.in_(list(skus)))
    with engine.connect() as connection:
        return [StockItem(r.sku, r.name, int(r.quantity)) for r in connection.execute(query)]


def orders(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest processed orders (outcome, requested items, short items), newest first."""
    query = (
        select(inventory_orders)
        .order_by(inventory_orders.c.processed_at.desc(), inventory_orders.c.order_id)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            {
                "order_id": row.order_id,
                "outcome": row.outcome,
                "items": json.loads(row.items),
                "short": json.loads(row.reason) if row.reason else None,
                "processed_at": row.processed_at,
            }
            for row in connection.execute(query)
        ]
