"""`eventfn users search TEXT`: full-text search over the users the user-indexer keeps."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from eventfn._cli_store import add_store_arguments, open_store
from eventfn._user_search import DEFAULT_LIMIT, MAX_LIMIT, UserMatch

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(commands: SubParsers) -> None:
    """Add `eventfn users ...` to the `eventfn` parser."""
    users = commands.add_parser("users", help="the users indexed by user-indexer")
    sub = users.add_subparsers(title="users commands", metavar="COMMAND")
    search = sub.add_parser(
        "search",
        help="full-text search over name, e-mail and tags",
        description='Web-search syntax: all words must match, "quoted phrase", `or`, '
        "-excluded. Best matches first.",
    )
    search.add_argument("text", help="what to look for")
    search.add_argument(
        "--limit", type=_limit, default=DEFAULT_LIMIT, help=f"at most N users ({DEFAULT_LIMIT})"
    )
    search.add_argument("--json", action="store_true", help="one JSON object per user")
    add_store_arguments(search)
    search.set_defaults(command=_search)


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("--limit must be a whole number") from None
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"--limit must be between 1 and {MAX_LIMIT}")
    return number


def _search(args: argparse.Namespace) -> int:
    from eventfn._store import connect_read_only, translate_db_errors
    from eventfn._user_search import search_users

    engine = open_store(args)
    try:
        with translate_db_errors(), connect_read_only(engine) as connection:
            matches = search_users(connection, args.text, args.limit)
    finally:
        engine.dispose()
    if args.json:
        for match in matches:
            print(json.dumps(match.as_dict(), ensure_ascii=False))
        return 0
    print(format_matches(matches, args.text))
    return 0


def format_matches(matches: list[UserMatch], query: str) -> str:
    """A table of the matches (or a line saying there is none)."""
    if not matches:
        return f"no user matches {query!r}"
    rows = [
        (m.user_id, m.name, m.email, ", ".join(m.tags), str(m.version), f"{m.rank:.4f}")
        for m in matches
    ]
    header = ("USER", "NAME", "EMAIL", "TAGS", "VERSION", "RANK")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    noun = "user" if len(rows) == 1 else "users"
    return "\n".join([*lines, f"{len(rows)} {noun}"])
