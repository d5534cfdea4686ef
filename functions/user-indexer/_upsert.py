"""The one statement that stores a user version unless a newer one is already there.

`INSERT .. ON CONFLICT (user_id) DO UPDATE .. WHERE (new order) > (stored order)`: the database
decides, row-locked, so two deliveries racing on PostgreSQL can never replace a newer version
with an older one (the second waits for the first's row lock, then re-checks the condition
against the committed row). On SQLite the writing transaction holds the database lock.
The search columns follow on their own (a generated column on PostgreSQL, triggers on SQLite).
"""

from __future__ import annotations

from sqlalchemy import Connection, tuple_

from eventfn import InternalError
from eventfn._tables_domain import users

from ._record import UserRow

ORDER = ("version", "updated_at_ms", "event_time", "event_id")


def store_user(connection: Connection, row: UserRow) -> bool:
    """Insert or update the user; False when the stored version is newer (or the same)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise InternalError(f"no upsert for SQL dialect {dialect!r}")
    statement = insert(users).values(row.values())
    excluded = statement.excluded
    newer = tuple_(*(excluded[name] for name in ORDER)) > tuple_(*(users.c[name] for name in ORDER))
    updates = {name: excluded[name] for name in row.values() if name != "user_id"}
    upsert = statement.on_conflict_do_update(
        index_elements=[users.c.user_id], set_=updates, where=newer
    ).returning(users.c.user_id)
    return connection.execute(upsert).first() is not None  # no row: the condition said no
