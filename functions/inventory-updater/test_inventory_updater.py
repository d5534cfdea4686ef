"""inventory-updater through the WSGI test client on SQLite, with a loopback broker stand-in.
On PostgreSQL, racing deliveries included: tests/pipelines/test_domain_postgres.py."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import domain_testing as dt  # noqa: E402


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Any]:
    with ExitStack() as stack:
        yield dt.open_shop(stack, tmp_path, f"sqlite:///{tmp_path / 'shop.db'}")


@pytest.fixture
def make_shop(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    with ExitStack() as stack:
        yield lambda url, **kw: dt.open_shop(stack, tmp_path, url, **kw)


# -- behaviour (SQLite) ------------------------------------------------------------------------


def test_an_order_in_stock_takes_every_item_and_emits_the_remaining_quantities(shop: Any) -> None:
    customer = {"id": "c-42", "name": "Ada"}
    event = dt.order_event("o-1", [("TEE-M", 1), ("MUG-1", 2), ("MUG-1", 1)], customer=customer)
    response = dt.deliver(shop.client, event)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert shop.stock() == {"MUG-1": 2, "TEE-M": 1}
    [updated] = shop.sink.events(dt.UPDATED)
    assert updated.subject == "o-1" and updated.source == "/eventfn/inventory-updater"
    assert updated.data == {
        "order_id": "o-1",
        "items": [
            {"sku": "MUG-1", "quantity": 3, "remaining": 2},
            {"sku": "TEE-M", "quantity": 1, "remaining": 1},
        ],
        "customer": customer,
    }
    row = shop.orders()["o-1"]
    assert row["outcome"] == "updated" and row["reason"] is None
    assert json.loads(row["items"]) == [
        {"sku": "MUG-1", "quantity": 3},
        {"sku": "TEE-M", "quantity": 1},
    ]


def test_a_short_item_rolls_back_the_items_already_taken(shop: Any) -> None:
    # MUG-1 is taken first (SKU order), then TEE-M is short: MUG-1 must be back at 5
    response = dt.deliver(shop.client, dt.order_event("o-2", [("MUG-1", 4), ("TEE-M", 3)]))
    assert response.status_code == 204
    assert shop.stock() == {"MUG-1": 5, "TEE-M": 2}
    assert shop.sink.events(dt.UPDATED) == []
    [rejected] = shop.sink.events(dt.REJECTED)
    assert rejected.subject == "o-2"
    assert rejected.data == {
        "order_id": "o-2",
        "reason": "insufficient-stock",
        "items": [{"sku": "TEE-M", "requested": 3, "available": 2}],
    }
    row = shop.orders()["o-2"]
    assert row["outcome"] == "rejected"
    assert json.loads(row["reason"]) == [{"sku": "TEE-M", "requested": 3, "available": 2}]


def test_an_unknown_item_is_a_rejection_answered_2xx_not_an_error(shop: Any) -> None:
    event = dt.order_event("o-3", [("MUG-1", 1), ("NOPE-9", 1), ("TEE-M", 5)])
    response = dt.deliver(shop.client, event)
    assert response.status_code == 204
    assert shop.stock() == {"MUG-1": 5, "TEE-M": 2}
    [rejected] = shop.sink.events(dt.REJECTED)
    assert rejected.data["reason"] == "unknown-item"
    assert rejected.data["items"] == [
        {"sku": "NOPE-9", "requested": 1, "available": None},
        {"sku": "TEE-M", "requested": 5, "available": 2},
    ]


def test_a_redelivered_event_is_replayed_and_never_decrements_twice(shop: Any) -> None:
    event = dt.order_event("o-4", [("MUG-1", 2)])
    assert dt.deliver(shop.client, event).status_code == 204
    assert dt.deliver(shop.client, event).status_code == 204
    assert shop.stock()["MUG-1"] == 3
    assert len(shop.sink.events(dt.UPDATED)) == 1


def test_the_same_order_under_a_new_event_id_counts_once(shop: Any) -> None:
    first = dt.order_event("o-5", [("MUG-1", 2)])
    again = dt.order_event("o-5", [("MUG-1", 2)])
    assert first.id != again.id
    assert dt.deliver(shop.client, first).status_code == 204
    assert dt.deliver(shop.client, again).status_code == 204
    assert shop.stock()["MUG-1"] == 3
    assert len(shop.sink.events(dt.UPDATED)) == 1


def test_without_idempotency_records_the_order_row_still_stops_a_second_decrement(
    make_shop: Callable[..., Any], tmp_path: Path
) -> None:
    shop = make_shop(f"sqlite:///{tmp_path / 'plain.db'}", idempotency=False)
    event = dt.order_event("o-6", [("TEE-M", 2)])
    assert dt.deliver(shop.client, event).status_code == 204
    assert dt.deliver(shop.client, event).status_code == 204
    assert shop.stock()["TEE-M"] == 0
    assert len(shop.sink.events(dt.UPDATED)) == 1


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"sku": "MUG-1", "quantity": 0}], "$.items[0].quantity"),
        ([{"sku": "", "quantity": 1}], "$.items[0].sku"),
        ([], "$.items"),
    ],
)
def test_an_invalid_order_is_a_permanent_422(shop: Any, items: list[Any], field: str) -> None:
    event = dt.order_event("o-7", [])
    event = event.with_changes(data={"order_id": "o-7", "items": items})
    response = dt.deliver(shop.client, event)
    assert response.status_code == 422
    body = response.get_json()
    assert body["type"] == "urn:eventfn:problem:schema-violation"
    assert body["field"] == field
    assert shop.stock() == {"MUG-1": 5, "TEE-M": 2} and shop.orders() == {}
