"""Taking a confirmed order out of stock: all items or none, once per order id.

The whole order runs in the event's transaction (`ctx.tx`):

1. Claim: the order's row in `inventory_orders` is inserted with ON CONFLICT DO NOTHING. A second
   delivery of the same order — even one racing on another PostgreSQL connection, which waits on
   the primary key until the first commits — inserts nothing and changes nothing.
2. Take: inside a SAVEPOINT, one conditional UPDATE per SKU (``quantity = quantity - :q WHERE
   sku = :sku AND quantity >= :q``); a SKU whose update matches no row is short. The database
   decides each decrement atomically, so two orders competing for the last units can never both
   get them, and the CHECK (quantity >= 0) holds. Lines are merged per SKU and taken in SKU order,
   so two orders always lock rows in the same order (no deadlock).
3. If any SKU is short, the savepoint rolls back: the inventory is exactly as before.
4. Record: the claimed row gets the outcome (updated | rejected) and the short items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from eventfn import PermanentError
from eventfn._tables_domain import inventory_items, inventory_orders

UNKNOWN_ITEM = "unknown-item"
INSUFFICIENT_STOCK = "insufficient-stock"


class InvalidOrder(PermanentError, ValueError):
    """The order's data cannot be read (only possible when its schema is not registered)."""

    status = 422
    code = "invalid-order"
    title = "Invalid order"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """The total quantity of one SKU in an order."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Order:
    """A confirmed order, its lines merged per SKU and sorted by SKU."""

    order_id: str
    lines: tuple[OrderLine, ...]
    customer: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ShortItem:
    """A SKU the inventory cannot serve: `available` is None when the SKU is unknown."""

    sku: str
    requested: int
    available: int | None


@dataclass(frozen=True)
class Outcome:
    """What an order did to the inventory."""

    kind: Literal["updated", "rejected", "duplicate"]
    remaining: dict[str, int] = field(default_factory=dict)
    short: tuple[ShortItem, ...] = ()

    @property
    def reason(self) -> str:
        """unknown-item when a short SKU does not exist, else insufficient-stock."""
        unknown = any(item.available is None for item in self.short)
        return UNKNOWN_ITEM if unknown else INSUFFICIENT_STOCK


def read_order(data: Any) -> Order:
    """The order of an `eventfn.order.confirmed.v1` event (already schema-validated)."""
    if not isinstance(data, dict) or not isinstance(data.get("order_id"), str):
        raise InvalidOrder("the order has no order_id", field="order_id")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidOrder("the order has no items", field="items")
    totals: dict[str, int] = {}
    for index, item in enumerate(items):
        sku, quantity = _line(item)
        if sku is None or quantity is None:
            raise InvalidOrder("an item needs a sku and a quantity > 0", field=f"items[{index}]")
        totals[sku] = totals.get(sku, 0) + quantity
    lines = tuple(OrderLine(sku, totals[sku]) for sku in sorted(totals))
    customer = data.get("customer")
    return Order(data["order_id"], lines, customer if isinstance(customer, dict) else None)


def _line(item: Any) -> tuple[str | None, int | None]:
    if not isinstance(item, dict):
        return None, None
    sku, quantity = item.get("sku"), item.get("quantity")
    valid = isinstance(quantity, int) and not isinstance(quantity, bool) and quantity > 0
    return (sku if isinstance(sku, str) and sku else None), (quantity if valid else None)


def apply_order(tx: Connection, order: Order, now: str) -> Outcome:
    """Take the order out of stock in `tx`, all items or none; see the module docstring."""
    if not _claim(tx, order, now):
        return Outcome("duplicate")
    with tx.begin_nested() as savepoint:
        remaining, short = _take(tx, order, now)
        if short:
            savepoint.rollback()
    outcome = Outcome("rejected", short=short) if short else Outcome("updated", remaining)
    _record(tx, order, outcome)
    return outcome


def _claim(tx: Connection, order: Order, now: str) -> bool:
    """Insert the order's row (outcome settled in `_record`, same transaction); False if taken."""
    insert = postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert
    requested = [{"sku": line.sku, "quantity": line.quantity} for line in order.lines]
    statement = insert(inventory_orders).values(
        order_id=order.order_id,
        outcome="rejected",
        items=json.dumps(requested),
        reason=None,
        processed_at=now,
    )
    claimed = statement.on_conflict_do_nothing(index_elements=["order_id"]).returning(
        inventory_orders.c.order_id
    )
    return tx.execute(claimed).first() is not None


def _take(tx: Connection, order: Order, now: str) -> tuple[dict[str, int], tuple[ShortItem, ...]]:
    remaining: dict[str, int] = {}
    short: list[ShortItem] = []
    for line in order.lines:
        row = tx.execute(
            update(inventory_items)
            .where(
                inventory_items.c.sku == line.sku,
                inventory_items.c.quantity >= line.quantity,
            )
            .values(quantity=inventory_items.c.quantity - line.quantity, updated_at=now)
            .returning(inventory_items.c.quantity)
        ).first()
        if row is not None:
            remaining[line.sku] = int(row.quantity)
            continue
        available = tx.execute(
            select(inventory_items.c.quantity).where(inventory_items.c.sku == line.sku)
        ).scalar_one_or_none()
        short.append(ShortItem(line.sku, line.quantity, available))
    return remaining, tuple(short)


def _record(tx: Connection, order: Order, outcome: Outcome) -> None:
    reason = None
    if outcome.short:
        reason = json.dumps(
            [
                {"sku": s.sku, "requested": s.requested, "available": s.available}
                for s in outcome.short
            ]
        )
    tx.execute(
        update(inventory_orders)
        .where(inventory_orders.c.order_id == order.order_id)
        .values(outcome=outcome.kind, reason=reason)
    )


def updated_data(order: Order, outcome: Outcome) -> dict[str, Any]:
    """The data of `eventfn.inventory.updated.v1`."""
    items = [
        {"sku": line.sku, "quantity": line.quantity, "remaining": outcome.remaining[line.sku]}
        for line in order.lines
    ]
    return _with_customer({"order_id": order.order_id, "items": items}, order)


def rejected_data(order: Order, outcome: Outcome) -> dict[str, Any]:
    """The data of `eventfn.inventory.rejected.v1`: the short items only."""
    items = [
        {"sku": item.sku, "requested": item.requested, "available": item.available}
        for item in outcome.short
    ]
    data = {"order_id": order.order_id, "reason": outcome.reason, "items": items}
    return _with_customer(data, order)


def _with_customer(data: dict[str, Any], order: Order) -> dict[str, Any]:
    if order.customer is not None:
        data["customer"] = dict(order.customer)
    return data
