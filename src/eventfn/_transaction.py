"""A transaction opened only when a handler first touches `ctx.tx`.

Handlers that never use the database pay nothing for it; those that do get one transaction that
commits after they return, or rolls back when they raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from eventfn._store import translate_db_errors

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, RootTransaction


class LazyTransaction:
    """Callable returning the event's connection, beginning the transaction on the first call."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None

    def __call__(self) -> Connection:
        if self._connection is None:
            with translate_db_errors():
                connection = self._engine().connect()
                try:
                    self._transaction = connection.begin()
                except BaseException:
                    connection.close()
                    raise
            self._connection = connection
        return self._connection

    def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and close, if the transaction was ever opened."""
        connection, transaction = self._connection, self._transaction
        if connection is None or transaction is None:
            return
        self._connection = self._transaction = None
        try:
            with translate_db_errors():
                if commit:
                    transaction.commit()
                else:
                    transaction.rollback()
        finally:
            connection.close()
