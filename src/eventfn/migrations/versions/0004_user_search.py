"""Full-text search over users: a tsvector column on PostgreSQL, an FTS5 table on SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

The search objects are dialect-specific and therefore not part of `eventfn._tables.metadata`
(the schema-match test in tests/integration/test_store.py leaves them out):

- PostgreSQL: `users.search`, a stored generated tsvector (config `simple`, weights A name,
  B e-mail, C tags; the e-mail also as local part + domain and split at `@ . + _ -`, so that
  its parts are found as on SQLite), and the GIN index `ix_users_search`. The database keeps
  it current on every write.
- SQLite: the FTS5 table `users_fts(user_id UNINDEXED, name, email, tags)` (plus the shadow
  tables FTS5 makes, `users_fts_*`), kept current by three triggers on `users` in the writing
  transaction. A trigger finds the old entry by `user_id`, a scan of the FTS table: fine for the
  local store; PostgreSQL is the store for large user bases.

Every name is spelled out: this migration never imports eventfn._tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_SEARCH = """
ALTER TABLE users ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', name), 'A')
    || setweight(to_tsvector('simple', email || ' ' || translate(email, '@', ' ') || ' '
                                       || translate(email, '@.+_-', '     ')), 'B')
    || setweight(to_tsvector('simple', tags), 'C')
) STORED
"""
_PG_INDEX = "CREATE INDEX ix_users_search ON users USING gin (search)"

_SQLITE_STATEMENTS = (
    "CREATE VIRTUAL TABLE users_fts USING fts5(user_id UNINDEXED, name, email, tags,"
    " tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN"
    " INSERT INTO users_fts (user_id, name, email, tags)"
    " VALUES (new.user_id, new.name, new.email, new.tags); END",
    "CREATE TRIGGER users_fts_update AFTER UPDATE ON users BEGIN"
    " DELETE FROM users_fts WHERE user_id = old.user_id;"
    " INSERT INTO users_fts (user_id, name, email, tags)"
    " VALUES (new.user_id, new.name, new.email, new.tags); END",
    "CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN"
    " DELETE FROM users_fts WHERE user_id = old.user_id; END",
    "INSERT INTO users_fts (user_id, name, email, tags)"
    " SELECT user_id, name, email, tags FROM users",
)


def _dialect() -> str:
    return str(op.get_bind().dialect.name)


def upgrade() -> None:
    if _dialect() == "postgresql":
        op.execute(_PG_SEARCH)
        op.execute(_PG_INDEX)
        return
    for statement in _SQLITE_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if _dialect() == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_users_search")
        op.execute("ALTER TABLE users DROP COLUMN IF EXISTS search")
        return
    for trigger in ("users_fts_delete", "users_fts_update", "users_fts_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS users_fts")
