"""`eventfn dlq`: list, show, replay and purge the dead letters stored by dlq-handler.

The database is the one of the settings (`EVENTFN_DATABASE_URL`, else the SQLite file in the
state directory), or `--database-url`. Replays go to the broker (`--broker-url`, else `K_SINK`,
else the broker of the `eventfn dev` running with the state directory) or, with
`--to original`, straight to the URL that failed; every replay is recorded on its row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_STATE_DIR, ENV_DATABASE_URL, ENV_SINK, ENV_STATE_DIR

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from eventfn._deadletters import DeadLetter

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

TYPE_WIDTH = 36


def register(commands: SubParsers) -> None:
    """Add `eventfn dlq ...` to the `eventfn` parser."""
    dlq = commands.add_parser("dlq", help="dead-lettered events: list, show, replay, purge")
    sub = dlq.add_subparsers(title="dlq commands", metavar="COMMAND")
    _add_list(sub)
    _add_show(sub)
    _add_replay(sub)
    _add_purge(sub)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state directory (default ${ENV_STATE_DIR} or {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--database-url", default=None, help=f"database (default ${ENV_DATABASE_URL} or state)"
    )


def _add_list(sub: SubParsers) -> None:
    parser = sub.add_parser("list", help="dead letters, oldest first")
    parser.add_argument("--type", dest="event_type", default=None, help="only this event type")
    parser.add_argument("--since", default=None, help="received at or after (ISO 8601)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many")
    parser.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    _store_arguments(parser)
    parser.set_defaults(command=list_command)


def _add_show(sub: SubParsers) -> None:
    parser = sub.add_parser("show", help="one dead letter in full (JSON)")
    parser.add_argument("id", help="dead-letter id (a unique prefix is enough)")
    _store_arguments(parser)
    parser.set_defaults(command=show_command)


def _add_replay(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "replay",
        help="re-publish dead letters (same id) to the broker or their original destination",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", default=None, help="dead-letter id (or unique prefix)")
    which.add_argument("--all", action="store_true", help="every pending dead letter")
    parser.add_argument("--type", dest="event_type", default=None, help="with --all: this type")
    parser.add_argument("--since", default=None, help="with --all: received at or after")
    parser.add_argument(
        "--include-replayed",
        action="store_true",
        help="with --all: also those whose last replay succeeded",
    )
    parser.add_argument(
        "--to", choices=("broker", "original"), default="broker", help="where to send (broker)"
    )
    parser.add_argument("--broker-url", default=None, help=f"default ${ENV_SINK} or eventfn dev")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--dry-run", action="store_true", help="show what would be sent")
    _store_arguments(parser)
    parser.set_defaults(command=replay_command)


def _add_purge(sub: SubParsers) -> None:
    parser = sub.add_parser("purge", help="delete dead letters")
    parser.add_argument("--before", default=None, help="received before (ISO 8601)")
    parser.add_argument("--type", dest="event_type", default=None, help="only this event type")
    parser.add_argument("--yes", action="store_true", help="really delete (else: only count)")
    _store_arguments(parser)
    parser.set_defaults(command=purge_command)


# --- commands ----------------------------------------------------------------------------------


def list_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`eventfn dlq list`."""
    from eventfn._deadletters import find, normalise_time

    out = out or sys.stdout
    if args.limit is not None and args.limit < 1:
        raise ConfigurationError("--limit must be at least 1")
    since = normalise_time(args.since) if args.since else None
    with _database(args) as engine, _transaction(engine) as connection:
        letters = find(connection, event_type=args.event_type, since=since, limit=args.limit)
    for letter in letters:
        if args.json:
            out.write(json.dumps(letter.summary(), ensure_ascii=False) + "\n")
        else:
            out.write(_line(letter) + "\n")
    if not args.json:
        out.write(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}\n")
    return 0


def show_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`eventfn dlq show ID`."""
    from eventfn._codec import encode_structured
    from eventfn._deadletters import get

    out = out or sys.stdout
    with _database(args) as engine, _transaction(engine) as connection:
        letter = get(connection, args.id)
    document = {
        **letter.summary(),
        "error_data": letter.error_data,
        "event": json.loads(encode_structured(letter.event)[1]),
    }
    out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return 0


def replay_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`eventfn dlq replay ID|--all`; exit code 1 when a replay failed."""
    from eventfn._deadletters import find, get, normalise_time

    out = out or sys.stdout
    if args.id is not None and (args.event_type or args.since or args.include_replayed):
        raise ConfigurationError("--type, --since and --include-replayed go with --all")
    broker = _broker_url(args) if args.to == "broker" else None
    since = normalise_time(args.since) if args.since else None
    with _database(args) as engine:
        with _transaction(engine) as connection:
            if args.id is not None:
                letters = [get(connection, args.id)]
            else:
                found = find(connection, event_type=args.event_type, since=since)
                letters = [x for x in found if args.include_replayed or x.pending]
        failures = sum(not _replay_one(args, engine, x, broker, out) for x in letters)
    verb = "would replay" if args.dry_run else "replayed"
    out.write(f"{verb} {len(letters) - failures} of {len(letters)}\n")
    return 1 if failures else 0


def _replay_one(
    args: argparse.Namespace, engine: Engine, letter: DeadLetter, broker: str | None, out: TextIO
) -> bool:
    from eventfn._deadletters import record_replay
    from eventfn._dlq_replay import build_request, replay
    from eventfn._event import utc_now_rfc3339

    url = broker or letter.error_dest
    label = f"{letter.id[:12]}  {letter.event.type}  id {letter.event.id}"
    if not url:
        out.write(f"{label}: no knativeerrordest recorded; use --to broker\n")
        return False
    if args.dry_run:
        request = build_request(letter, url)
        headers = " ".join(f"{k}={v}" for k, v in sorted(request.headers.items()))
        out.write(f"{label} → {url} ({len(request.body)} bytes; {headers})\n")
        return True
    result = replay(letter, args.to, url, timeout=args.timeout)
    with _transaction(engine, write=True) as connection:
        record_replay(connection, letter.id, result.text, utc_now_rfc3339())
    out.write(f"{label} → {url}: {result.text}\n")
    return result.ok


def purge_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`eventfn dlq purge`: counts without `--yes`, deletes with it."""
    from eventfn._deadletters import count, normalise_time, purge

    out = out or sys.stdout
    before = normalise_time(args.before) if args.before else None
    with _database(args) as engine:
        if not args.yes:
            with _transaction(engine) as connection:
                number = count(connection, event_type=args.event_type, before=before)
            out.write(f"would delete {number} dead letter(s); pass --yes to delete them\n")
            return 0
        with _transaction(engine, write=True) as connection:
            number = purge(connection, event_type=args.event_type, before=before)
    out.write(f"deleted {number} dead letter(s)\n")
    return 0


# --- helpers -----------------------------------------------------------------------------------


def _line(letter: DeadLetter) -> str:
    from eventfn._deadletters import error_excerpt

    code = "-" if letter.error_code is None else str(letter.error_code)
    replays = f"replayed {letter.replay_count}x" if letter.replay_count else "new"
    excerpt = error_excerpt(letter.error_data) or ""
    return (
        f"{letter.id[:12]}  {letter.received_at[:19]}Z  {letter.event.type:<{TYPE_WIDTH}} "
        f"{code:>3}  {replays:<12} {excerpt[:80]}"
    )


def _database_url(args: argparse.Namespace) -> str:
    from eventfn._settings import Settings

    if args.database_url:
        return str(args.database_url)
    settings = Settings.from_env()
    if args.state_dir is not None:
        settings = settings.with_overrides(state_dir=Path(args.state_dir))
    return settings.effective_database_url


def _engine(url: str) -> Engine:
    from sqlalchemy import inspect

    from eventfn._store import create_engine_from_url, normalise_url, translate_db_errors

    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise ConfigurationError(f"no database at {parsed.database}; is the state dir right?")
    engine = create_engine_from_url(url, pool_size=1)
    with translate_db_errors():
        if not inspect(engine).has_table("dead_letters"):
            engine.dispose()
            raise ConfigurationError("the database has no dead_letters table: eventfn db upgrade")
    return engine


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[Engine]:
    engine = _engine(_database_url(args))
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _transaction(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    from eventfn._store import connect_read_only, translate_db_errors

    with translate_db_errors():
        if write:
            with engine.begin() as connection:
                yield connection
        else:
            with connect_read_only(engine) as connection, connection.begin():
                yield connection


def _broker_url(args: argparse.Namespace) -> str:
    if args.broker_url:
        return str(args.broker_url)
    sink = os.environ.get(ENV_SINK)
    if sink:
        return sink
    from eventfn._settings import Settings
    from eventfn.mesh._dev import read_dev_file

    state_dir = Path(args.state_dir) if args.state_dir else Settings.from_env().state_dir
    brokers: dict[str, str] = read_dev_file(state_dir).get("brokers", {})
    if not brokers:
        raise ConfigurationError("the running `eventfn dev` has no broker; pass --broker-url")
    return next(iter(brokers.values()))
