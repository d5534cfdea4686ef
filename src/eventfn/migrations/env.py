"""Alembic environment of eventfn, configured in code (there is no alembic.ini).

`eventfn._store.upgrade` hands over an open connection in `config.attributes["connection"]`;
without one, `sqlalchemy.url` is used. Migrations run online in one transaction, under the
PostgreSQL advisory lock of `lock_for_migration`, against eventfn's own version table.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from eventfn._errors import ConfigurationError
from eventfn._store import VERSION_TABLE, create_engine_from_url, lock_for_migration
from eventfn._tables import metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        lock_for_migration(connection)
        context.run_migrations()


def _run() -> None:
    if context.is_offline_mode():
        raise ConfigurationError("eventfn migrations run against a live database only")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigurationError("no database: pass a connection or set sqlalchemy.url")
    engine = create_engine_from_url(url)
    try:
        with engine.connect() as owned:
            _migrate(owned)
    finally:
        engine.dispose()


_run()
