"""Demo inputs of the CSV pipeline (csv-ingest), built deterministically with no downloads.

`sales_csv`: 100,000 sales rows with mixed column types (integers, decimals, quoted strings
holding commas and double quotes, ISO dates, timestamps, booleans and a few values spanning
lines), uploaded as raw/sales/2026-11-28.csv. csv-ingest turns it into
processed/sales/year=.../month=.../day=.../2026-11-28-<hash>.parquet and emits
eventfn.dataset.file.processed.v1.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

from make_inputs import DemoInput

SALES_ROWS = 100_000
SALES_SEED = 20261128
CUSTOMERS = (
    "Acme, Inc.",
    'The "Best" Shop',
    "Zürich Feinkost GmbH",
    "O'Brien & Sons",
    "Café Olé",
    "Nordic Supplies AB",
    "Smith, Jones & Partners",
)
PRODUCTS = ("widget", "gadget", "gizmo", "doohickey", "sprocket", 'bolt 3/8"', "nut, hex")
REGIONS = ("EU", "US", "APAC", "LATAM")


def sales_rows(count: int = SALES_ROWS, seed: int = SALES_SEED) -> bytes:
    """`count` rows of a sales ledger as UTF-8 CSV (header first, `\\n` line ends)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ("order_id", "order_date", "customer", "product", "region", "quantity",
         "unit_price", "discount", "paid", "shipped_at", "note")
    )  # fmt: skip
    day0 = dt.date(2026, 1, 1)
    shipped0 = dt.datetime(2026, 1, 2, 8, 0, 0)
    for order in range(1, count + 1):
        day = day0 + dt.timedelta(days=rng.randrange(332))
        note = ""
        if order % 10_000 == 0:
            note = f"call before delivery\nask for {rng.choice(('Ana', 'Bo', 'Chen'))}"
        elif rng.random() < 0.05:
            note = rng.choice(('fragile, "handle with care"', "gift wrap", "leave at door"))
        writer.writerow(
            (
                order,
                day.isoformat(),
                rng.choice(CUSTOMERS),
                rng.choice(PRODUCTS),
                rng.choice(REGIONS),
                rng.randrange(1, 50),
                f"{rng.uniform(0.5, 500):.2f}",
                f"{rng.choice((0, 0, 0, 0.05, 0.1, 0.15)):.2f}",
                "true" if rng.random() < 0.9 else "false",
                (shipped0 + dt.timedelta(minutes=rng.randrange(480_000))).isoformat(sep=" "),
                note,
            )
        )
    return out.getvalue().encode("utf-8")


def sales_csv() -> DemoInput:
    """A day of sales as CSV: csv-ingest converts it to partitioned Parquet."""
    return DemoInput(
        name="sales-csv",
        kind="upload",
        file="uploads/sales-2026-11-28.csv",
        content=sales_rows(),
        description=(
            f"{SALES_ROWS:,} rows of mixed-type sales data uploaded to "
            "s3://<data bucket>/raw/sales/ -> Parquet under processed/sales/"
        ),
        expect=(
            "eventfn.storage.object.created.v1",
            "eventfn.dataset.file.processed.v1",
        ),
        requires=("storage-source", "csv-ingest"),
        key="raw/sales/2026-11-28.csv",
        content_type="text/csv",
    )
