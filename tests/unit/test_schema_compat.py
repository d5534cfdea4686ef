"""Schema compatibility: what `eventfn schemas check` reports as breaking or informational."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventfn._schema_compat import (
    Finding,
    check_command,
    compare_avro_schemas,
    compare_directories,
    compare_schemas,
    load_git_tree,
)
from eventfn._schemas import JSON_SCHEMA_DIALECT

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
TYPE = "shop.order.placed.v1"

BASE: dict[str, Any] = {
    "$schema": JSON_SCHEMA_DIALECT,
    "type": "object",
    "description": "An order was placed.",
    "properties": {
        "order_id": {"type": "string", "description": "Order id."},
        "status": {"enum": ["open", "paid", "closed"], "description": "Status."},
        "note": {"type": "string", "maxLength": 100, "description": "Free text."},
        "items": {
            "type": "array",
            "description": "Lines.",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["sku", "quantity"],
            },
        },
    },
    "required": ["order_id", "items"],
}

AVRO_BASE: dict[str, Any] = {
    "type": "record",
    "name": "User",
    "namespace": "eventfn.user",
    "fields": [
        {"name": "user_id", "type": "string"},
        {"name": "email", "type": "string", "doc": "Address."},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}


def changed(
    edit: Callable[[dict[str, Any]], object], base: dict[str, Any] = BASE
) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    edit(schema)
    return schema


def props(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["properties"]  # type: ignore[no-any-return]


def item_props(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["properties"]["items"]["items"]["properties"]  # type: ignore[no-any-return]


def summary(findings: list[Finding]) -> set[tuple[str, bool]]:
    return {(f.path, f.breaking) for f in findings}


# --- JSON Schema ------------------------------------------------------------------------------

JSON_CASES: list[tuple[str, Callable[[dict[str, Any]], object], set[tuple[str, bool]]]] = [
    (
        "added optional field",
        lambda s: props(s).update(channel={"type": "string"}),
        {("$.channel", False)},
    ),
    ("description changed", lambda s: s.update(description="Placed."), {("$", False)}),
    ("enum widened", lambda s: props(s)["status"]["enum"].append("void"), {("$.status", False)}),
    ("maxLength relaxed", lambda s: props(s)["note"].update(maxLength=200), {("$.note", False)}),
    ("optional field removed", lambda s: props(s).pop("note"), {("$.note", False)}),
    ("closed object opened", lambda s: s.update(additionalProperties=True), set()),
    (
        "removed required field",
        lambda s: (props(s).pop("order_id"), s["required"].remove("order_id")),
        {("$.order_id", True)},
    ),
    ("type changed", lambda s: props(s)["order_id"].update(type="integer"), {("$.order_id", True)}),
    ("type narrowed", lambda s: props(s)["note"].update(type="null"), {("$.note", True)}),
    (
        "new required field",
        lambda s: (props(s).update(currency={"type": "string"}), s["required"].append("currency")),
        {("$.currency", True)},
    ),
    ("optional became required", lambda s: s["required"].append("note"), {("$.note", True)}),
    (
        "required became optional",
        lambda s: s["required"].remove("order_id"),
        {("$.order_id", True)},
    ),
    ("enum narrowed", lambda s: props(s)["status"]["enum"].remove("paid"), {("$.status", True)}),
    ("enum introduced", lambda s: props(s)["note"].update(enum=["a"]), {("$.note", True)}),
    ("maxLength narrowed", lambda s: props(s)["note"].update(maxLength=10), {("$.note", True)}),
    (
        "minimum added",
        lambda s: item_props(s)["quantity"].update(minimum=1),
        {("$.items[*].quantity", True)},
    ),
    ("format added", lambda s: props(s)["note"].update(format="date-time"), {("$.note", True)}),
    (
        "additionalProperties true->false",
        lambda s: s.update(additionalProperties=False),
        {("$", True)},
    ),
    (
        "nested type change",
        lambda s: item_props(s)["quantity"].update(type="string"),
        {("$.items[*].quantity", True)},
    ),
    (
        "nested required removed",
        lambda s: s["properties"]["items"]["items"]["required"].remove("sku"),
        {("$.items[*].sku", True)},
    ),
    (
        "composition changed",
        lambda s: props(s)["note"].update(anyOf=[{"type": "string"}]),
        {("$.note", True)},
    ),
]


@pytest.mark.parametrize(("label", "edit", "expected"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_schema_changes(
    label: str, edit: Callable[[dict[str, Any]], object], expected: set[tuple[str, bool]]
) -> None:
    findings = compare_schemas(TYPE, BASE, changed(edit))
    assert summary(findings) == expected
    assert all(f.event_type == TYPE and f.message for f in findings)


def test_identical_schemas_have_no_findings() -> None:
    assert compare_schemas(TYPE, BASE, copy.deepcopy(BASE)) == []


def test_field_added_to_a_closed_object_is_breaking() -> None:
    closed = changed(lambda s: s.update(additionalProperties=False))
    findings = compare_schemas(TYPE, closed, changed(lambda s: props(s).update(x={}), closed))
    assert summary(findings) == {("$.x", True)}


def test_opening_a_closed_object_is_informational() -> None:
    closed = changed(lambda s: s.update(additionalProperties=False))
    findings = compare_schemas(TYPE, closed, BASE)
    assert summary(findings) == {("$", False)}


def test_messages_say_what_changed() -> None:
    narrowed = changed(lambda s: props(s)["status"]["enum"].remove("paid"))
    (finding,) = compare_schemas(TYPE, BASE, narrowed)
    assert finding == Finding(TYPE, "$.status", 'enum narrowed: "paid" no longer allowed', True)


# --- Avro -------------------------------------------------------------------------------------


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema["fields"]  # type: ignore[no-any-return]


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in fields(schema) if f["name"] == name)


AVRO_CASES: list[tuple[str, Callable[[dict[str, Any]], object], set[tuple[str, bool]]]] = [
    (
        "field with default added",
        lambda s: fields(s).append({"name": "age", "type": ["null", "int"], "default": None}),
        {("$.age", False)},
    ),
    (
        "field with default removed",
        lambda s: fields(s).remove(field(s, "tags")),
        {("$.tags", False)},
    ),
    ("doc changed", lambda s: field(s, "email").update(doc="E-mail address."), set()),
    (
        "field without default added",
        lambda s: fields(s).append({"name": "age", "type": "int"}),
        {("$.age", True)},
    ),
    (
        "field without default removed",
        lambda s: fields(s).remove(field(s, "email")),
        {("$.email", True)},
    ),
    ("type changed", lambda s: field(s, "email").update(type="bytes"), {("$.email", True)}),
    (
        "array item type changed",
        lambda s: field(s, "tags").update(type={"type": "array", "items": "int"}),
        {("$.tags[*]", True)},
    ),
    (
        "logical type added",
        lambda s: field(s, "user_id").update(type={"type": "string", "logicalType": "uuid"}),
        {("$.user_id", True)},
    ),
    ("record renamed", lambda s: s.update(name="Person"), {("$", True)}),
]


@pytest.mark.parametrize(("label", "edit", "expected"), AVRO_CASES, ids=[c[0] for c in AVRO_CASES])
def test_avro_schema_changes(
    label: str, edit: Callable[[dict[str, Any]], object], expected: set[tuple[str, bool]]
) -> None:
    assert summary(compare_avro_schemas(TYPE, AVRO_BASE, changed(edit, AVRO_BASE))) == expected


def test_avro_enum_symbols() -> None:
    def with_enum(*symbols: str) -> dict[str, Any]:
        enum = {"type": "enum", "name": "Plan", "symbols": list(symbols)}
        return changed(lambda s: fields(s).append({"name": "plan", "type": enum}), AVRO_BASE)

    wider = compare_avro_schemas(TYPE, with_enum("FREE"), with_enum("FREE", "PRO"))
    narrower = compare_avro_schemas(TYPE, with_enum("FREE", "PRO"), with_enum("FREE"))
    assert (summary(wider), summary(narrower)) == ({("$.plan", False)}, {("$.plan", True)})


# --- directories and the check command --------------------------------------------------------


def write(directory: Path, name: str, document: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(document))


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


# --- baselines from git -----------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    """git in a throwaway repository, isolated from the user's and the system's configuration."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    write(root / "schemas", f"{TYPE}.json", BASE)
    write(root / "schemas", "README.md", "not a schema")
    write(root / "schemas" / "nested", "shop.x.v1.json", BASE)
    write(root, "other.json", {})
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline")
    git(root, "tag", "v1")
    return root


def test_load_git_tree_extracts_the_schema_files(repo: Path) -> None:
    (repo / "schemas" / f"{TYPE}.json").write_text("changed in the work tree")
    baseline = load_git_tree("v1", "schemas", repo)
    assert baseline is not None
    try:
        assert sorted(p.name for p in baseline.iterdir()) == [f"{TYPE}.json"]
        assert json.loads((baseline / f"{TYPE}.json").read_text()) == BASE
    finally:
        shutil.rmtree(baseline)


@pytest.mark.parametrize(
    ("ref", "subdir"),
    [
        ("no-such-ref", "schemas"),
        ("v1", "no-such-dir"),
        ("--output=/tmp/x", "schemas"),
        ("", "schemas"),
        ("HEAD", "/"),
    ],
)
def test_load_git_tree_without_baseline(repo: Path, ref: str, subdir: str) -> None:
    assert load_git_tree(ref, subdir, repo) is None


@pytest.mark.parametrize("subdir", ["schemas", "schemas/", "./schemas", "ABSOLUTE"])
def test_load_git_tree_subdir_spellings(repo: Path, subdir: str) -> None:
    spelled = str(repo / "schemas") if subdir == "ABSOLUTE" else subdir
    baseline = load_git_tree("HEAD", spelled, repo)
    assert baseline is not None
    try:
        assert [p.name for p in baseline.iterdir()] == [f"{TYPE}.json"]
    finally:
        shutil.rmtree(baseline)


def test_load_git_tree_from_a_subfolder_of_the_repository(repo: Path) -> None:
    baseline = load_git_tree("HEAD", "nested", repo / "schemas")
    assert baseline is not None
    try:
        assert [p.name for p in baseline.iterdir()] == ["shop.x.v1.json"]
    finally:
        shutil.rmtree(baseline)


def test_load_git_tree_outside_a_repository(tmp_path: Path) -> None:
    assert load_git_tree("HEAD", "schemas", tmp_path) is None
