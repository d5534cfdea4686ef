"""The `eventfn` command line."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from eventfn._errors import ConfigurationError, EventfnError

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eventfn` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "command", None)
    if command is None:
        parser.print_help()
        return 2
    try:
        return command(args)
    except (ConfigurationError, EventfnError) as error:
        print(f"eventfn: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventfn", description=__doc__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_serve(commands)
    _add_invoke(commands)
    _add_schemas(commands)
    _add_db(commands)
    _add_render(commands)
    for register in _extension_commands():
        register(commands)
    return parser


def _extension_commands() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
]:
    from eventfn._cli_ext import REGISTRARS

    return list(REGISTRARS)


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve one function under gunicorn",
        description="Serve functions/<name> on PORT (default 8080). Workers, threads and "
        "timeouts come from EVENTFN_WORKERS (1), EVENTFN_THREADS (1), EVENTFN_TIMEOUT_SECONDS "
        "(300) and EVENTFN_GRACEFUL_TIMEOUT_SECONDS (30).",
    )
    serve.add_argument("function", help="function folder name under functions/")
    serve.add_argument("--bind", help="host:port (default 0.0.0.0:$PORT)")
    serve.set_defaults(command=_serve)


def _serve(args: argparse.Namespace) -> int:
    from eventfn._serve import serve

    serve(args.function, bind=args.bind)
    return 0


def _add_invoke(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    invoke = commands.add_parser(
        "invoke",
        help="send one CloudEvent to a URL or a local function and print the reply",
    )
    invoke.add_argument("target", help="http(s) URL, or a function name run in-process")
    invoke.add_argument("--type", required=True, dest="event_type", help="CloudEvent type")
    invoke.add_argument("--data", default=None, help="JSON data (default: none)")
    invoke.add_argument("--source", default="/eventfn/cli", help="CloudEvent source")
    invoke.add_argument("--subject", default=None, help="CloudEvent subject")
    invoke.add_argument("--id", default=None, dest="event_id", help="CloudEvent id")
    invoke.add_argument(
        "--structured", action="store_true", help="structured mode instead of binary"
    )
    invoke.set_defaults(command=_invoke)


def _invoke(args: argparse.Namespace) -> int:
    from eventfn._invoke import invoke

    data = json.loads(args.data) if args.data is not None else None
    status, text = invoke(
        args.target,
        event_type=args.event_type,
        data=data,
        source=args.source,
        subject=args.subject,
        event_id=args.event_id,
        structured=args.structured,
    )
    print(text)
    return 0 if 200 <= status < 300 else 1


def _add_schemas(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = commands.add_parser("schemas", help="the event catalog in schemas/")
    sub = schemas.add_subparsers(title="schemas commands", metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="validate every schema file and report breaking changes against a baseline",
    )
    check.add_argument("--dir", type=Path, default=Path("schemas"), help="schemas directory")
    baseline = check.add_mutually_exclusive_group()
    baseline.add_argument("--against", type=Path, help="baseline schemas directory")
    baseline.add_argument("--against-git", metavar="REF", help="baseline: schemas/ at a git ref")
    check.set_defaults(command=_schemas_check)


def _schemas_check(args: argparse.Namespace) -> int:
    from eventfn._schema_compat import check_command, load_git_tree

    against = args.against
    if args.against_git:
        against = load_git_tree(args.against_git, str(args.dir), Path.cwd())
        if against is None:
            print(f"no baseline: {args.against_git} has no {args.dir}/; checking files only")
    try:
        code, report = check_command(args.dir, against)
    finally:
        if args.against_git and against is not None:
            shutil.rmtree(against, ignore_errors=True)
    print(report)
    return code


def _add_db(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the SQL store")
    sub = db.add_subparsers(title="db commands", metavar="COMMAND")
    upgrade = sub.add_parser(
        "upgrade", help="apply schema migrations (EVENTFN_DATABASE_URL or the local SQLite file)"
    )
    upgrade.add_argument("--url", help="database URL (default: from settings)")
    upgrade.set_defaults(command=_db_upgrade)


def _db_upgrade(args: argparse.Namespace) -> int:
    from eventfn._settings import Settings
    from eventfn._store import create_engine_from_url, upgrade

    settings = Settings.from_env()
    url = args.url or settings.effective_database_url
    if url.startswith("sqlite:///") and not args.url:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    revision = upgrade(create_engine_from_url(url))
    print(f"database at revision {revision}")
    return 0


def _add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = commands.add_parser(
        "render", help="render charts/eventfn with default values into k8s/"
    )
    render.add_argument("--root", type=Path, default=Path.cwd(), help="project root")
    render.add_argument("--check", action="store_true", help="only report drift, exit 1 if any")
    render.set_defaults(command=_render)


def _render(args: argparse.Namespace) -> int:
    from eventfn._render import diff_k8s, write_k8s

    if args.check:
        drift = diff_k8s(args.root)
        for name in drift:
            print(f"k8s/{name} differs from the chart rendering")
        return 1 if drift else 0
    for path in write_k8s(args.root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
