"""The baseline of `eventfn schemas check` read from a git ref: which files, which refs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from schema_compat_testing import BASE, TYPE, write

from eventfn._schema_compat import load_git_tree


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
