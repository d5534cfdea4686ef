"""`eventfn schemas check`: comparing catalog directories, its report and its exit code."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from schema_compat_testing import AVRO_BASE, BASE, JSON_CASES, TYPE, changed, props, summary, write
from schema_testing import REPO_SCHEMAS

from eventfn._schema_compat import check_command, compare_directories
from eventfn._schemas import JSON_SCHEMA_DIALECT


@pytest.fixture
def old_dir(tmp_path: Path) -> Path:
    write(tmp_path / "old", f"{TYPE}.json", BASE)
    write(tmp_path / "old", "eventfn.user.created.v1.avsc", AVRO_BASE)
    return tmp_path / "old"


def test_compare_directories(old_dir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    write(new, f"{TYPE}.json", changed(lambda s: props(s).update(channel={"type": "string"})))
    write(new, "shop.order.placed.v2.json", BASE)
    findings = compare_directories(old_dir, new)
    assert {(f.event_type, f.path, f.breaking) for f in findings} == {
        (TYPE, "$.channel", False),
        ("shop.order.placed.v2", "$", False),
        ("eventfn.user.created.v1", "$", True),
    }


def test_changing_the_schema_format_is_breaking(old_dir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(old_dir, new)
    (new / f"{TYPE}.json").unlink()
    write(new, f"{TYPE}.avsc", AVRO_BASE)
    assert summary(compare_directories(old_dir, new)) == {("$", True)}


def test_check_without_baseline_accepts_the_repo_catalog() -> None:
    code, report = check_command(REPO_SCHEMAS, None)
    assert code == 0, report
    assert "are valid" in report


def test_check_against_itself_has_no_findings() -> None:
    code, report = check_command(REPO_SCHEMAS, REPO_SCHEMAS)
    assert code == 0, report
    assert "0 breaking change(s)" in report
    assert "BREAKING" not in report


def test_check_passes_a_compatible_change(old_dir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(old_dir, new)
    write(new, f"{TYPE}.json", changed(lambda s: props(s).update(channel={"type": "string"})))
    code, report = check_command(new, old_dir)
    assert code == 0, report
    assert f"info     {TYPE} $.channel: optional field added" in report


@pytest.mark.parametrize(
    "edit",
    [case[1] for case in JSON_CASES if any(breaking for _, breaking in case[2])],
    ids=[case[0] for case in JSON_CASES if any(breaking for _, breaking in case[2])],
)
def test_check_fails_on_breaking_changes(
    old_dir: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], object]
) -> None:
    new = tmp_path / "new"
    shutil.copytree(old_dir, new)
    write(new, f"{TYPE}.json", changed(edit))
    code, report = check_command(new, old_dir)
    assert code == 1
    assert f"BREAKING {TYPE} " in report


def test_check_reports_every_invalid_file(tmp_path: Path) -> None:
    write(tmp_path, "shop.a.v1.json", {"type": "object"})
    write(tmp_path, "bad name.json", {"$schema": JSON_SCHEMA_DIALECT})
    write(tmp_path, "shop.ok.v1.json", {"$schema": JSON_SCHEMA_DIALECT})
    code, report = check_command(tmp_path, None)
    assert code == 1
    assert report.count("INVALID") == 2
    assert "shop.a.v1.json" in report and "bad name.json" in report


def test_check_reports_cross_file_problems(tmp_path: Path) -> None:
    write(tmp_path, "shop.a.v1.json", {"$schema": JSON_SCHEMA_DIALECT, "$id": "urn:x"})
    write(tmp_path, "shop.b.v1.json", {"$schema": JSON_SCHEMA_DIALECT, "$id": "urn:x"})
    code, report = check_command(tmp_path, None)
    assert (code, report.count("INVALID")) == (1, 1)


def test_check_missing_directories(tmp_path: Path) -> None:
    assert check_command(tmp_path / "absent", None)[0] == 2
    assert check_command(tmp_path, tmp_path / "absent")[0] == 2
