"""The eventfn command line, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, Sink

EVENTFN = str(Path(sys.executable).with_name("eventfn"))


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTFN, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["invoke"],
        ["schemas"],
        ["schemas", "check"],
        ["db"],
        ["db", "upgrade"],
        ["render"],
    ],
)
def test_help_on_every_command(args: list[str]) -> None:
    result = _run([*args, "--help"])
    assert result.returncode == 0
    assert "usage: eventfn" in result.stdout


def test_invoke_function_in_process_prints_reply(tmp_path: Path, sink: Sink) -> None:
    env = {"EVENTFN_STATE_DIR": str(tmp_path), "K_SINK": sink.url}
    result = _run(
        ["invoke", "echo", "--type", "eventfn.echo.requested.v1", "--data", '{"message": "cli"}'],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP 200" in result.stdout
    assert '"type": "eventfn.echo.replied.v1"' in result.stdout
    assert '"message": "cli"' in result.stdout
    assert len(sink.received) == 1


def test_invoke_reports_a_problem_and_fails(tmp_path: Path) -> None:
    env = {"EVENTFN_STATE_DIR": str(tmp_path)}
    result = _run(
        ["invoke", "echo", "--structured", "--type", "eventfn.echo.requested.v1", "--data", "{}"],
        env,
    )
    assert result.returncode == 1
    assert "HTTP 422" in result.stdout and "schema-violation" in result.stdout


def test_unknown_function_names_the_ones_that_exist(tmp_path: Path) -> None:
    result = _run(["invoke", "nope", "--type", "x"], {"EVENTFN_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "echo" in result.stderr


def test_db_upgrade_and_schemas_check(tmp_path: Path) -> None:
    upgraded = _run(["db", "upgrade", "--url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert upgraded.returncode == 0, upgraded.stderr
    assert "revision" in upgraded.stdout
    checked = _run(["schemas", "check"])
    assert checked.returncode == 0, checked.stdout
