"""The order-processing tasks: deterministic simulations of validation, payment and shipping."""

from __future__ import annotations

from typing import Any, Final

from eventfn._context import derived_id
from eventfn._errors import Rejected

PAYMENT_LIMIT: Final = 1000.0
SHIPS_TO: Final = frozenset({"DE", "FR", "NL", "GB", "US"})


def validate_order(data: Any) -> dict[str, Any]:
    """{total, lines} of a well-formed order; Rejected otherwise."""
    if not isinstance(data, dict) or not isinstance(data.get("order_id"), str):
        raise Rejected("an order needs an order_id", field="order_id")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise Rejected("an order needs items", field="items")
    total = 0.0
    for item in items:
        quantity, price = item.get("quantity"), item.get("price")
        if not isinstance(quantity, int) or quantity <= 0 or not isinstance(price, int | float):
            raise Rejected("every item needs a positive quantity and a price", field="items")
        total += quantity * float(price)
    return {"total": round(total, 2), "lines": len(items)}


def charge(data: dict[str, Any]) -> dict[str, Any]:
    """A payment id derived from the order (charging twice gives the same payment)."""
    amount = float(data["amount"])
    if amount > PAYMENT_LIMIT:
        raise Rejected("the payment was declined")
    return {"payment_id": derived_id("payment", data["order_id"]), "amount": amount}


def ship(data: dict[str, Any]) -> dict[str, Any]:
    """A shipment id, or Rejected when the destination is not served."""
    address = data.get("address") or {}
    if address.get("country") not in SHIPS_TO:
        raise Rejected("the carrier does not ship there", field="address.country")
    return {"shipment_id": derived_id("shipment", data["order_id"]), "items": len(data["items"])}


def refund(data: dict[str, Any]) -> dict[str, Any]:
    """Refund the payment of the order."""
    payment = data.get("payment") or {}
    return {"refunded": payment.get("amount", 0.0), "payment_id": payment.get("payment_id")}
