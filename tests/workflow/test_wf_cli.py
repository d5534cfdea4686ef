"""`eventfn wf …` on a SQLite store, a definitions directory and a loopback task function."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from wf_testing import task_chain, task_server

from eventfn._cli_workflow import register
from eventfn._event import Event
from eventfn._wf_engine import ExecutionNotFound


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "wf",
            *argv,
            "--state-dir",
            str(tmp_path / "state"),
            "--definitions",
            str(tmp_path / "defs"),
        ]
    )
    code: int = args.command(args)
    return code, capsys.readouterr().out


def test_start_list_describe_history_redrive_cancel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "chain.json").write_text(json.dumps(task_chain(2)))
    (tmp_path / "defs" / "pause.yaml").write_text(
        "StartAt: W\nStates:\n  W: {Type: Wait, Seconds: 3600, End: true}\n"
    )
    broken = [True]

    def behaviour(event: Event) -> tuple[int, Any]:
        if broken[0] and event.subject == "T2":
            return 422, "rejected"
        return 200, {"v": event.data["v"] + 1}

    with task_server(behaviour) as (url, _received):
        monkeypatch.setenv("WORKFLOW_FUNCTION_URL_ADDER", url)
        code, out = _run(tmp_path, capsys, "start", "chain", "--input", '{"v": 1}', "--name", "n1")
        started = json.loads(out)
        assert code == 0 and (started["status"], started["state"]) == ("FAILED", "T2")
        ident = started["id"]
        code, out = _run(tmp_path, capsys, "list", "--status", "FAILED")
        assert ident in out and "chain" in out
        code, out = _run(tmp_path, capsys, "history", ident)
        kinds = [(entry["kind"], entry["state"]) for entry in json.loads(out)]
        assert kinds[-1] == ("ExecutionFailed", "T2") and ("StateSucceeded", "T1") in kinds
        broken[0] = False
        code, out = _run(tmp_path, capsys, "redrive", ident)
        assert json.loads(out)["output"] == {"v": 3} and json.loads(out)["redrive_count"] == 1
        code, out = _run(tmp_path, capsys, "describe", ident)
        assert json.loads(out)["status"] == "SUCCEEDED"
    code, out = _run(tmp_path, capsys, "start", "pause")
    waiting = json.loads(out)["id"]
    assert _run(tmp_path, capsys, "run-due")[1].startswith("0 timer(s) fired")
    assert _run(tmp_path, capsys, "cancel", waiting) == (0, "cancelled\n")
    assert _run(tmp_path, capsys, "cancel", waiting)[0] == 1
    with pytest.raises(ExecutionNotFound):
        _run(tmp_path, capsys, "describe", "nope")
