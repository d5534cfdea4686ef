"""The `eventfn wf start|list|describe|history|redrive|cancel|run-due` commands.

They work directly on the SQL store the workflow function uses (`--database-url`, else
`EVENTFN_DATABASE_URL`, else the SQLite file of the state directory — the one `eventfn dev`
runs on), with the definitions of `--definitions` (default `$WORKFLOW_DEFINITIONS_DIR` or
functions/workflow/definitions). Task functions are reached at `WORKFLOW_FUNCTION_URL_<NAME>`.
Commands that step executions (start, redrive, run-due) run them in this process until they wait
or end; execution events are only emitted by the workflow function itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_STATE_DIR, ENV_DATABASE_URL, ENV_STATE_DIR, Settings

if TYPE_CHECKING:
    from eventfn._wf_engine import WorkflowEngine

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

ENV_DEFINITIONS_DIR: Final = "WORKFLOW_DEFINITIONS_DIR"
DEFAULT_DEFINITIONS: Final = Path("functions/workflow/definitions")


def register(commands: SubParsers) -> None:
    """Add `eventfn wf` with its sub-commands."""
    wf = commands.add_parser(
        "wf", help="durable workflows: start, list, describe, history, redrive, cancel",
        description=__doc__,
    )  # fmt: skip
    actions = wf.add_subparsers(title="actions", metavar="ACTION", required=True)
    start = _action(actions, "start", "start an execution of workflow NAME", _start)
    start.add_argument("workflow", metavar="NAME")
    start.add_argument("--input", default="{}", help="the execution's input, JSON (default {})")
    start.add_argument("--name", default=None, help="execution name: starts at most once")
    listing = _action(actions, "list", "list the newest executions", _list)
    listing.add_argument("--workflow", default=None, help="only this workflow")
    listing.add_argument("--status", default=None, help="RUNNING|SUCCEEDED|FAILED|CANCELLED")
    listing.add_argument("--limit", type=int, default=20)
    for name, text, run in (
        ("describe", "show an execution", _describe),
        ("history", "show an execution's state history", _history),
        ("redrive", "restart a FAILED execution at its failed state", _redrive),
        ("cancel", "cancel a RUNNING execution", _cancel),
    ):
        _action(actions, name, text, run).add_argument("execution_id", metavar="ID")
    _action(actions, "run-due", "fire due timers and resume ready executions", _run_due)


def _action(actions: Any, name: str, text: str, run: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
    parser.add_argument(
        "--database-url", default=None, help=f"SQL store URL (default ${ENV_DATABASE_URL})"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help=f"state directory of the SQLite store (${ENV_STATE_DIR}, default {DEFAULT_STATE_DIR})",
    )  # fmt: skip
    parser.add_argument(
        "--definitions", type=Path, default=None,
        help=f"definitions directory (${ENV_DEFINITIONS_DIR}, default {DEFAULT_DEFINITIONS})",
    )  # fmt: skip
    parser.set_defaults(command=run)
    return parser


def _engine(args: argparse.Namespace) -> WorkflowEngine:
    from eventfn._store import create_engine_from_url, upgrade
    from eventfn._wf_definition import load_directory
    from eventfn._wf_engine import WorkflowEngine
    from eventfn._wf_tasks import TaskInvoker, env_resolver

    settings = Settings.from_env().with_overrides(
        database_url=args.database_url, state_dir=args.state_dir
    )
    directory = args.definitions or Path(os.environ.get(ENV_DEFINITIONS_DIR) or DEFAULT_DEFINITIONS)
    if not directory.is_dir():
        raise ConfigurationError(f"no workflow definitions directory {directory}")
    definitions = load_directory(directory)
    url = settings.effective_database_url
    if url.startswith("sqlite:///") and settings.database_url is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    db = create_engine_from_url(url)
    upgrade(db)
    invoker = TaskInvoker(env_resolver(dict(os.environ)), source="eventfn/cli")
    return WorkflowEngine(db, definitions, invoker)


def _print(document: Any) -> None:
    print(json.dumps(document, indent=2, default=str))


def _stamp(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: row[key] for key in ("id", "workflow", "name", "status", "state", "error", "cause")}
    out.update(
        input=json.loads(row["input"]), output=json.loads(row["output"]) if row["output"] else None,
        started_at=_stamp(row["started_at"]), finished_at=_stamp(row["finished_at"]),
        redrive_count=row["redrive_count"], phase=row["phase"], trace_id=row["trace_id"],
    )  # fmt: skip
    return out


def _start(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.input)
    except ValueError:
        print("error: --input is not JSON", file=sys.stderr)
        return 2
    engine = _engine(args)
    ident = engine.start(args.workflow, data, name=args.name)
    _print(_summary(engine.describe(ident)))
    return 0


def _list(args: argparse.Namespace) -> int:
    from eventfn._wf_store import list_executions

    engine = _engine(args)
    with engine.db.connect() as connection:
        rows = list_executions(connection, args.workflow, args.status, args.limit)
    for row in rows:
        print(f"{row['id']}  {row['workflow']:<24} {row['status']:<10} {row['state'] or '-'}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    _print(_summary(_engine(args).describe(args.execution_id)))
    return 0


def _history(args: argparse.Namespace) -> int:
    from eventfn._wf_store import history

    engine = _engine(args)
    engine.describe(args.execution_id)
    with engine.db.connect() as connection:
        entries = history(connection, args.execution_id)
    for entry in entries:
        for key in ("input", "output"):
            entry[key] = json.loads(entry[key]) if entry[key] else None
        entry["duration_ms"] = round((entry["finished_at"] - entry["started_at"]) * 1000, 3)
        entry["started_at"] = _stamp(entry["started_at"])
        del entry["finished_at"]
    _print(entries)
    return 0


def _redrive(args: argparse.Namespace) -> int:
    engine = _engine(args)
    engine.redrive(args.execution_id)
    _print(_summary(engine.describe(args.execution_id)))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    cancelled = _engine(args).cancel(args.execution_id)
    print("cancelled" if cancelled else "not running: nothing to cancel")
    return 0 if cancelled else 1


def _run_due(args: argparse.Namespace) -> int:
    engine = _engine(args)
    fired, resumed = engine.run_due(), engine.resume()
    print(f"{fired} timer(s) fired, {resumed} execution(s) resumed")
    return 0
