"""`eventfn inventory seed|show` (src/eventfn/_cli_inventory.py) through its own registrar, on a
fresh SQLite file that the command migrates itself."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from eventfn import ConfigurationError
from eventfn._cli_inventory import register


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.command(args)
    return code


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_seed_then_show_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    seed = write(
        tmp_path / "seed.json",
        {
            "items": [
                {"sku": "MUG-1", "name": "Mug", "quantity": 5},
                {"sku": "TEE-M", "quantity": 0},
            ]
        },
    )
    assert run("inventory", "seed", str(seed), "--state-dir", str(state)) == 0
    assert "seeded 2 SKU(s)" in capsys.readouterr().out
    assert (state / "eventfn.db").is_file()
    # seeding again updates in place: quantities are set, not added
    again = write(tmp_path / "again.json", [{"sku": "MUG-1", "name": "Big mug", "quantity": 9}])
    assert run("inventory", "seed", str(again), "--state-dir", str(state)) == 0
    capsys.readouterr()
    assert run("inventory", "show", "--json", "--state-dir", str(state)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {
        "items": [
            {"sku": "MUG-1", "name": "Big mug", "quantity": 9},
            {"sku": "TEE-M", "name": "TEE-M", "quantity": 0},
        ],
        "orders": [],
    }


def test_show_as_a_table_filtered_by_sku(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    seed = write(
        tmp_path / "seed.json", [{"sku": "A-1", "quantity": 3}, {"sku": "B-2", "quantity": 4}]
    )
    run("inventory", "seed", str(seed), "--database-url", url)
    capsys.readouterr()
    assert run("inventory", "show", "--sku", "B-2", "--database-url", url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["SKU  QUANTITY  NAME", "B-2         4  B-2"]


@pytest.mark.parametrize(
    "document",
    [
        [],
        [{"sku": "A", "quantity": -1}],
        [{"sku": "A", "quantity": 1.5}],
        [{"sku": "", "quantity": 1}],
        [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}],
        {"items": "nope"},
    ],
    ids=["empty", "negative", "float", "empty-sku", "duplicate", "not-a-list"],
)
def test_a_bad_seed_file_changes_nothing(tmp_path: Path, document: object) -> None:
    seed = write(tmp_path / "seed.json", document)
    with pytest.raises(ConfigurationError):
        run("inventory", "seed", str(seed), "--state-dir", str(tmp_path / "state"))
    assert not (tmp_path / "state" / "eventfn.db").exists()
