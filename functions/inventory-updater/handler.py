"""inventory-updater: the strangler-fig example — confirmed orders of the monolith take stock.

Consumes `eventfn.order.confirmed.v1` and, in ONE transaction, takes every item out of stock or
none of them (see `_stock.py`). Success emits `eventfn.inventory.updated.v1` with the remaining
quantities; an unknown SKU or too little stock changes nothing and emits
`eventfn.inventory.rejected.v1` with the short items — a business outcome answered 2xx, never
retried or dead-lettered. Deduplicated per order id (not per event id): the same order published
twice, under any event id, is applied once.
"""

from __future__ import annotations

from eventfn import App, Context, Event, InternalError
from eventfn._event import utc_now_rfc3339

from ._stock import InvalidOrder, apply_order, read_order, rejected_data, updated_data

CONFIRMED = "eventfn.order.confirmed.v1"
UPDATED = "eventfn.inventory.updated.v1"
REJECTED = "eventfn.inventory.rejected.v1"

app = App("inventory-updater")


def order_key(event: Event) -> str:
    """The idempotency key: the order id, so a redelivered or re-published order counts once."""
    data = event.data
    if not isinstance(data, dict) or not isinstance(data.get("order_id"), str):
        raise InvalidOrder("the order has no order_id", field="order_id")
    return f"order:{data['order_id']}"


@app.on(CONFIRMED, key=order_key)
def on_order_confirmed(event: Event, ctx: Context) -> None:
    """Take the order out of stock, or reject it; emit the outcome after the commit."""
    order = read_order(event.data)
    tx = ctx.tx
    if tx is None:
        raise InternalError("inventory-updater needs the SQL store")
    outcome = apply_order(tx, order, utc_now_rfc3339())
    if outcome.kind == "duplicate":
        ctx.logger.info("order %s was already processed: nothing to do", order.order_id)
        return
    if outcome.kind == "updated":
        ctx.emit(UPDATED, updated_data(order, outcome), subject=order.order_id)
        ctx.logger.info("order %s: %d SKU(s) taken from stock", order.order_id, len(order.lines))
        return
    ctx.emit(REJECTED, rejected_data(order, outcome), subject=order.order_id)
    ctx.logger.info(
        "order %s rejected (%s): %d short SKU(s)",
        order.order_id,
        outcome.reason,
        len(outcome.short),
    )
