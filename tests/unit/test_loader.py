"""Function folders load under unique module names; a missing one names those that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfn import HandlerNotFound
from eventfn._loader import available_functions, load_function

HANDLER = """
from eventfn import App
from .helper import TYPE
app = App({name!r})

@app.on(TYPE)
def handle(event, ctx):
    return None
"""


def _function(root: Path, name: str, event_type: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "handler.py").write_text(HANDLER.format(name=name))
    (folder / "helper.py").write_text(f"TYPE = {event_type!r}\n")


def test_two_handler_py_files_do_not_collide(tmp_path: Path) -> None:
    _function(tmp_path, "alpha-one", "a.v1")
    _function(tmp_path, "beta", "b.v1")
    alpha = load_function("alpha-one", tmp_path)
    beta = load_function("beta", tmp_path)
    assert alpha.name == "alpha-one" and beta.name == "beta"
    assert alpha.event_types == {"a.v1"} and beta.event_types == {"b.v1"}
    assert available_functions(tmp_path) == ["alpha-one", "beta"]


def test_missing_function_names_the_functions_found(tmp_path: Path) -> None:
    _function(tmp_path, "gamma", "g.v1")
    with pytest.raises(HandlerNotFound, match="functions found: gamma"):
        load_function("delta", tmp_path)


def test_invalid_function_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HandlerNotFound, match="not a valid function name"):
        load_function("../etc", tmp_path)


def test_handler_without_app_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "handler.py").write_text("x = 1\n")
    with pytest.raises(HandlerNotFound, match=r"exactly one eventfn\.App"):
        load_function("empty", tmp_path)
