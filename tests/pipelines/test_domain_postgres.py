"""inventory-updater on PostgreSQL: orders, unknown items, and the races — two deliveries of the
same order, and two orders competing for the last units — run by two app instances (two engines,
two connection pools) on one database, from two threads released by one barrier."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import domain_testing as dt
import pytest
from sqlalchemy import Engine

from eventfn._inventory import StockItem

pytestmark = pytest.mark.postgres


@pytest.fixture
def make_shop(tmp_path: Path, pg_engine: Engine) -> Iterator[Callable[..., Any]]:
    """Shops on the migrated session database, every table emptied first (by `pg_engine`)."""
    url = pg_engine.url.render_as_string(hide_password=False)
    with ExitStack() as stack:
        yield lambda **kw: dt.open_shop(stack, tmp_path, url, **kw)


def test_postgres_order_and_unknown_item(
    make_shop: Callable[..., Any],
) -> None:
    shop = make_shop()
    assert dt.deliver(shop.client, dt.order_event("p-1", [("MUG-1", 5)])).status_code == 204
    unknown = dt.deliver(shop.client, dt.order_event("p-2", [("GHOST", 1)]))
    assert unknown.status_code == 204
    assert shop.stock() == {"MUG-1": 0, "TEE-M": 2}
    [updated] = shop.sink.events(dt.UPDATED)
    assert updated.data["items"] == [{"sku": "MUG-1", "quantity": 5, "remaining": 0}]
    [rejected] = shop.sink.events(dt.REJECTED)
    assert rejected.data["items"] == [{"sku": "GHOST", "requested": 1, "available": None}]


@pytest.mark.parametrize("idempotency", [True, False], ids=["idempotency-records", "order-row"])
def test_postgres_two_racing_deliveries_of_one_order_decrement_once(
    make_shop: Callable[..., Any], idempotency: bool
) -> None:
    shop = make_shop(instances=2, idempotency=idempotency)
    event = dt.order_event("race-1", [("MUG-1", 2), ("TEE-M", 1)])
    statuses = [
        r.status_code
        for r in dt.concurrently(*(lambda c=c: dt.deliver(c, event) for c in shop.clients))
    ]
    # the loser answers 409 (duplicate in progress, Knative retries) or replays / no-ops (204)
    assert sorted(statuses)[0] == 204 and set(statuses) <= {204, 409}, statuses
    for index, status in enumerate(statuses):
        if status == 409:  # the retry Knative would send: now a replay
            assert dt.deliver(shop.clients[index], event).status_code == 204
    assert shop.stock() == {"MUG-1": 3, "TEE-M": 1}
    assert list(shop.orders()) == ["race-1"]
    assert len({e.id for e in shop.sink.events(dt.UPDATED)}) == 1


def test_postgres_two_orders_for_the_last_units_never_oversell(
    make_shop: Callable[..., Any],
) -> None:
    shop = make_shop(instances=2)
    for round_ in range(20):
        shop.seed(StockItem("LAST-1", "Last units", 5), StockItem("PLENTY", "Plenty", 100))
        # the two orders list their lines in opposite orders: rows are still locked in SKU order
        first = dt.order_event(f"r{round_}-a", [("LAST-1", 3), ("PLENTY", 1)])
        second = dt.order_event(f"r{round_}-b", [("PLENTY", 1), ("LAST-1", 3)])
        responses = dt.concurrently(
            lambda a=first: dt.deliver(shop.clients[0], a),
            lambda b=second: dt.deliver(shop.clients[1], b),
        )
        assert [r.status_code for r in responses] == [204, 204]
        outcomes = {
            k: v["outcome"] for k, v in shop.orders().items() if k.startswith(f"r{round_}-")
        }
        assert sorted(outcomes.values()) == ["rejected", "updated"], outcomes
        assert shop.stock() == {"LAST-1": 2, "PLENTY": 99, "MUG-1": 5, "TEE-M": 2}
    rejected = shop.sink.events(dt.REJECTED)
    assert len(rejected) == 20 and len(shop.sink.events(dt.UPDATED)) == 20
    assert {json.dumps(e.data["items"]) for e in rejected} == {
        json.dumps([{"sku": "LAST-1", "requested": 3, "available": 2}])
    }
    assert min(shop.stock().values()) >= 0
