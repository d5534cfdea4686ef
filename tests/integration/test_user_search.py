"""Full-text user search (migration 0004) on real SQLite files and a real PostgreSQL: the
migration both ways, search ranking, FTS5 quoting of what users type, and `eventfn users search`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, insert, inspect, text

from eventfn._cli_users import register as register_users
from eventfn._store import _alembic_config, create_engine_from_url, upgrade
from eventfn._tables_domain import users
from eventfn._user_search import fts5_query, search_users


def _user(
    user_id: str, name: str, email: str, tags: list[str], version: int = 1
) -> dict[str, object]:
    return {
        "user_id": user_id,
        "email": email,
        "name": name,
        "tags": json.dumps(tags),
        "version": version,
        "updated_at_ms": 0,
        "event_time": "2026-11-28T09:00:00.000000Z",
        "event_id": f"e-{user_id}",
    }


PEOPLE = [
    _user("u-1", "Ada Lovelace", "ada@example.org", ["analyst"]),
    _user("u-2", "Zoë Lovelace-Byron", "zoe@poets.example", ["poet", "analyst"]),
    _user("u-3", "Charles Babbage", "charles@engines.example", ["engineer", "lovelace-fan"]),
]


def _search(engine: Engine, query: str, limit: int = 10) -> list[str]:
    with engine.connect() as connection:
        return [match.user_id for match in search_users(connection, query, limit)]


def _fill(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(users), PEOPLE)


# -- FTS5 queries from user input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "query"),
    [
        ("ada", '("ada")'),
        ("Ada  Lovelace", '("Ada" AND "Lovelace")'),
        ('"ada lovelace" poet', '("ada lovelace" AND "poet")'),
        ("ada or zoë", '("ada") OR ("zoë")'),
        ("analyst -poet", '(("analyst")) NOT ("poet")'),
        ('analyst -"the poet"', '(("analyst")) NOT ("the poet")'),
        ('say "hi', '("say" AND "hi")'),
        ('x"y', '("x""y")'),
        ("NEAR(a b) AND c*", '("NEAR(a" AND "b)" AND "AND" AND "c*")'),
        ("or ada or", '("ada")'),
        ("", None),
        ("  - * ^ : ( )", None),
        ("-ada", None),
    ],
)
def test_typed_text_becomes_quoted_fts5(typed: str, query: str | None) -> None:
    assert fts5_query(typed) == query


def test_every_quoted_query_is_valid_fts5(sqlite_engine: Engine) -> None:
    _fill(sqlite_engine)
    nasty = ['"', '""', "'", "a:b", "{name}: ada", "^ada", "ada*", "a AND", "NOT ada", "(", "-"]
    for typed in nasty:
        _search(sqlite_engine, typed)  # no OperationalError: every term is a quoted string
    assert _search(sqlite_engine, "{name} : ada") == []  # the words (no "name"), not a filter
    assert _search(sqlite_engine, "ada*") == ["u-1"]


# -- search on both databases --------------------------------------------------------------------


def _ranking_checks(engine: Engine) -> None:
    _fill(engine)
    assert _search(engine, "lovelace") == ["u-1", "u-2", "u-3"]  # name > tags, shorter first
    assert _search(engine, "lovelace", limit=1) == ["u-1"]
    assert _search(engine, "analyst -poet") == ["u-1"]
    assert _search(engine, "engines.example") == ["u-3"]
    assert _search(engine, "charles@engines.example") == ["u-3"]
    assert _search(engine, '"charles babbage"') == ["u-3"]
    assert set(_search(engine, "babbage or poet")) == {"u-2", "u-3"}
    assert _search(engine, "!!!") == []
    with engine.begin() as connection:
        connection.execute(users.delete().where(users.c.user_id == "u-1"))
    assert _search(engine, "ada") == []


def test_search_on_sqlite(sqlite_engine: Engine) -> None:
    _ranking_checks(sqlite_engine)
    assert _search(sqlite_engine, "zoe") == ["u-2"]  # diacritics folded on SQLite


@pytest.mark.postgres
def test_search_on_postgres(pg_engine: Engine) -> None:
    _ranking_checks(pg_engine)


# -- the migration, both ways ----------------------------------------------------------------------


def _downgrade_and_upgrade(engine: Engine) -> None:
    with engine.connect() as connection:
        command.downgrade(_alembic_config(connection), "0003")
        connection.commit()
    inspector = inspect(engine)
    assert "users_fts" not in inspector.get_table_names()
    assert "search" not in {column["name"] for column in inspector.get_columns("users")}
    _fill(engine)  # users written while there is no search index...
    upgrade(engine)
    assert _search(engine, "babbage") == ["u-3"]  # ...are indexed by the upgrade


def test_migration_0004_down_and_up_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine_from_url(tmp_path / "state.db")
    try:
        upgrade(engine)
        _downgrade_and_upgrade(engine)
        with engine.connect() as connection:
            triggers = connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            ).scalars()
            assert list(triggers) == ["users_fts_delete", "users_fts_insert", "users_fts_update"]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_migration_0004_down_and_up_on_postgres(empty_postgres_url: str) -> None:
    engine = create_engine_from_url(empty_postgres_url)
    try:
        upgrade(engine)
        _downgrade_and_upgrade(engine)
        indexes = {index["name"] for index in inspect(engine).get_indexes("users")}
        assert "ix_users_search" in indexes
    finally:
        engine.dispose()


# -- the command ---------------------------------------------------------------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    import argparse

    from eventfn._errors import ConfigurationError

    parser = argparse.ArgumentParser(prog="eventfn")
    register_users(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        code = int(args.command(args))
    except ConfigurationError as error:
        print(f"eventfn: {error}")
        code = 1
    return code, capsys.readouterr().out


def test_users_search_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    engine = create_engine_from_url(state / "eventfn.db")
    try:
        upgrade(engine)
        _fill(engine)
    finally:
        engine.dispose()
    code, out = _cli(["users", "search", "lovelace", "--state-dir", str(state)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "NAME", "EMAIL", "TAGS", "VERSION", "RANK"]
    assert [line.split()[0] for line in lines[1:4]] == ["u-1", "u-2", "u-3"]
    assert lines[-1] == "3 users"
    code, out = _cli(
        ["users", "search", "poet", "--json", "--url", f"sqlite:///{state / 'eventfn.db'}"], capsys
    )
    [found] = [json.loads(line) for line in out.splitlines()]
    assert (code, found["user_id"], found["tags"]) == (0, "u-2", ["poet", "analyst"])
    assert _cli(["users", "search", "nobody", "--state-dir", str(state)], capsys) == (
        0,
        "no user matches 'nobody'\n",
    )


def test_users_search_needs_a_migrated_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(["users", "search", "x", "--state-dir", str(tmp_path / "none")], capsys)
    assert code == 1 and "there is no database" in out
    old = create_engine_from_url(tmp_path / "old.db")
    with old.connect():  # an empty SQLite file eventfn never migrated
        pass
    old.dispose()
    code, out = _cli(["users", "search", "x", "--url", f"sqlite:///{tmp_path / 'old.db'}"], capsys)
    assert code == 1 and "eventfn db upgrade" in out
