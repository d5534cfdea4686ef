"""The `eventfn inventory seed|show` commands (registered in _cli_ext).

Both work on the SQL store the functions use: `--database-url`, else `EVENTFN_DATABASE_URL`, else
the SQLite file of the state directory (`--state-dir`, `EVENTFN_STATE_DIR`, `.eventfn`) — the one
`eventfn dev` runs on. The database is migrated first, so seeding works before the mesh ever ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_STATE_DIR, ENV_DATABASE_URL, ENV_STATE_DIR, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(commands: SubParsers) -> None:
    """Add `eventfn inventory` with its `seed` and `show` sub-commands."""
    inventory = commands.add_parser(
        "inventory",
        help="stock levels of inventory-updater: seed them from a file, show them",
        description=__doc__,
    )
    actions = inventory.add_subparsers(title="actions", metavar="ACTION", required=True)
    seed = actions.add_parser(
        "seed",
        help="set the stock of the SKUs of a JSON file (insert or update; others unchanged)",
    )
    seed.add_argument("file", type=Path, help='JSON: {"items": [{"sku", "name", "quantity"}]}')
    _database_arguments(seed)
    seed.set_defaults(command=_seed)
    show = actions.add_parser("show", help="print the stock and the latest processed orders")
    show.add_argument("--sku", action="append", default=None, help="only this SKU (repeatable)")
    show.add_argument("--orders", type=int, default=5, help="latest orders to list (default 5)")
    show.add_argument("--json", action="store_true", help="one JSON document")
    _database_arguments(show)
    show.set_defaults(command=_show)


def _database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=None, help=f"SQL store URL (default ${ENV_DATABASE_URL})"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state directory of the SQLite store (${ENV_STATE_DIR}, default {DEFAULT_STATE_DIR})",
    )


def _engine(args: argparse.Namespace) -> Engine:
    from eventfn._store import create_engine_from_url, upgrade

    settings = Settings.from_env().with_overrides(
        database_url=args.database_url, state_dir=args.state_dir
    )
    engine = create_engine_from_url(settings.effective_database_url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _seed(args: argparse.Namespace) -> int:
    from eventfn._inventory import read_seed_file, seed
    from eventfn._store import translate_db_errors

    path: Path = args.file
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a file")
    items = read_seed_file(path)
    engine = _engine(args)
    try:
        with translate_db_errors(), engine.begin() as connection:
            count = seed(connection, items)
        where = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    print(f"seeded {count} SKU(s) from {path} into {where}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from eventfn._inventory import orders, stock
    from eventfn._store import translate_db_errors

    if args.orders < 0:
        raise ConfigurationError("--orders must be 0 or more")
    engine = _engine(args)
    try:
        with translate_db_errors():
            items = stock(engine, args.sku or ())
            recent = orders(engine, args.orders) if args.orders else []
    finally:
        engine.dispose()
    if args.json:
        document = {
            "items": [{"sku": i.sku, "name": i.name, "quantity": i.quantity} for i in items],
            "orders": recent,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    _print_table(items, recent)
    return 0


def _print_table(items: list[Any], recent: list[dict[str, Any]]) -> None:
    out = sys.stdout
    if not items:
        out.write("no stock: load some with `eventfn inventory seed FILE.json`\n")
    width = max([len("SKU"), *(len(i.sku) for i in items)])
    if items:
        out.write(f"{'SKU':<{width}}  {'QUANTITY':>8}  NAME\n")
    for item in items:
        out.write(f"{item.sku:<{width}}  {item.quantity:>8}  {item.name}\n")
    for order in recent:
        short = ""
        if order["short"]:
            short = " short: " + ", ".join(
                f"{s['sku']} ({s['requested']} > {_available(s['available'])})"
                for s in order["short"]
            )
        out.write(f"order {order['order_id']}: {order['outcome']}{short}\n")


def _available(value: int | None) -> str:
    return "unknown SKU" if value is None else str(value)
