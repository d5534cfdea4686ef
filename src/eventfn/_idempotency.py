"""Idempotency as a template method: claim the key, run the work, store its response — once.

`IdempotencyStore.run(key, work)` makes the effect of `work` happen at most once per
(function, key), even with several processes receiving the same event at the same time:

1. Claim: a short transaction inserts an IN_PROGRESS record; the primary key decides races.
   A COMPLETED record is replayed without running the work; a live claim of another delivery
   raises `DuplicateInProgress`; an expired claim (its process died) is taken over by a
   conditional UPDATE that only one taker can win.
2. Work: one transaction runs `work(connection)` and marks the record COMPLETED, conditional on
   still owning the claim, so the handler's writes and the record commit together or not at all.
3. Failure: the transaction rolls back, the claim is released, the exception propagates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from eventfn._errors import ConfigurationError, DuplicateInProgress
from eventfn._store import connect_read_only, translate_db_errors
from eventfn._stored import StoredResponse
from eventfn._tables import idempotency_records as records

IN_PROGRESS: Final = "IN_PROGRESS"
COMPLETED: Final = "COMPLETED"
MAX_FUNCTION_LENGTH: Final = 200
MAX_KEY_LENGTH: Final = 512
_CLAIM_ATTEMPTS: Final = 3
_DUPLICATE_DETAIL: Final = "another delivery of this event is in progress"

_log = logging.getLogger(__name__)

# The two statements of every event, built once: a statement built per call (`.values(...)` with
# literals) costs SQLAlchemy ~0.4 ms of coercion and cache-key work each time.
_INSERT_CLAIM: Final = insert(records)
_COMPLETE: Final = (
    update(records)
    .where(
        records.c.function == bindparam("b_function"),
        records.c.key == bindparam("b_key"),
        records.c.claim_token == bindparam("b_token"),
        records.c.status == IN_PROGRESS,
    )
    .values(
        status=COMPLETED,
        response_status=bindparam("b_status"),
        response_headers=bindparam("b_headers"),
        response_body=bindparam("b_body"),
        emits=bindparam("b_emits"),
        emits_sent=bindparam("b_emits_sent"),
        completed_at=bindparam("b_completed_at"),
    )
)


class _ClaimLost(Exception):
    """Our claim expired and another delivery took it over while the work ran."""


def stored_key(key: str) -> str:
    """The key as stored: itself, or a SHA-256 digest when longer than the column allows."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class IdempotencyStore:
    """Exactly-once effects for one function, on the SQL store of `engine`."""

    def __init__(
        self,
        engine: Engine,
        function: str,
        *,
        in_progress_expiry: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not function or len(function) > MAX_FUNCTION_LENGTH:
            raise ConfigurationError(
                f"a function name must have 1 to {MAX_FUNCTION_LENGTH} characters"
            )
        if not in_progress_expiry > 0:
            raise ConfigurationError("the in-progress expiry must be a positive number of seconds")
        self._engine = engine
        self._function = function
        self._expiry = float(in_progress_expiry)
        self._clock = clock

    def run(self, key: str, work: Callable[[Connection], StoredResponse]) -> StoredResponse:
        """The response of `work` for `key`: computed now, or replayed if already stored.

        Raises `DuplicateInProgress` while another delivery holds the key, and
        `DependencyUnavailable` when the database cannot be reached; an exception of `work`
        propagates unchanged after its transaction rolled back and the claim was released.
        """
        key = stored_key(key)
        with translate_db_errors():
            claim = self._claim(key)
            if isinstance(claim, StoredResponse):
                return claim
            return self._work(key, claim, work)

    def mark_emits_sent(self, key: str) -> None:
        """Record that the emitted events of a completed delivery were sent."""
        with translate_db_errors(), self._engine.begin() as connection:
            connection.execute(
                update(records)
                .where(*self._record(stored_key(key)), records.c.status == COMPLETED)
                .values(emits_sent=True)
            )

    # --- the three steps -----------------------------------------------------------------

    def _claim(self, key: str) -> str | StoredResponse:
        """Our claim token, or the stored response to replay."""
        for _ in range(_CLAIM_ATTEMPTS):
            token = str(uuid.uuid4())
            if self._insert_claim(key, token):
                return token
            row = self._read(key)
            if row is None:  # released between our insert and our read: claim again
                continue
            if row.status == COMPLETED:
                return _replay(row)
            now = self._clock()
            if row.expires_at > now:
                raise _duplicate(row.expires_at - now)
            if self._take_over(key, row.claim_token, token, now):
                _log.warning("took over an expired idempotency claim of %s", self._function)
                return token
        raise _duplicate(1.0)

    def _work(
        self, key: str, token: str, work: Callable[[Connection], StoredResponse]
    ) -> StoredResponse:
        try:
            with self._engine.begin() as connection:
                response = work(connection)
                if not self._complete(connection, key, token, response):
                    raise _ClaimLost
        except _ClaimLost:
            _log.warning("an idempotency claim of %s expired while its work ran", self._function)
            raise _duplicate(1.0) from None
        except BaseException:
            self._release(key, token)
            raise
        return dataclasses.replace(response, replayed=False)

    def _release(self, key: str, token: str) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    delete(records).where(
                        *self._record(key),
                        records.c.claim_token == token,
                        records.c.status == IN_PROGRESS,
                    )
                )
        except SQLAlchemyError as error:  # the claim then expires on its own
            _log.warning(
                "could not release an idempotency claim of %s (%s); it expires in %.0f s",
                self._function,
                type(error).__name__,
                self._expiry,
            )

    # --- statements ----------------------------------------------------------------------

    def _record(self, key: str) -> tuple[Any, Any]:
        return records.c.function == self._function, records.c.key == key

    def _insert_claim(self, key: str, token: str) -> bool:
        now = self._clock()
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    _INSERT_CLAIM,
                    {
                        "function": self._function,
                        "key": key,
                        "status": IN_PROGRESS,
                        "claim_token": token,
                        "expires_at": now + self._expiry,
                        "emits_sent": False,
                        "created_at": now,
                    },
                )
        except IntegrityError:
            return False
        return True

    def _read(self, key: str) -> Row[Any] | None:
        with connect_read_only(self._engine) as connection:
            return connection.execute(select(records).where(*self._record(key))).one_or_none()

    def _take_over(self, key: str, old_token: str, token: str, now: float) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(records)
                .where(
                    *self._record(key),
                    records.c.claim_token == old_token,
                    records.c.status == IN_PROGRESS,
                    records.c.expires_at <= now,
                )
                .values(claim_token=token, expires_at=now + self._expiry)
            )
        return result.rowcount == 1

    def _complete(
        self, connection: Connection, key: str, token: str, response: StoredResponse
    ) -> bool:
        result = connection.execute(
            _COMPLETE,
            {
                "b_function": self._function,
                "b_key": key,
                "b_token": token,
                "b_status": response.status,
                "b_headers": json.dumps(response.headers),
                "b_body": response.body,
                "b_emits": json.dumps(response.emits),
                "b_emits_sent": response.emits_sent,
                "b_completed_at": self._clock(),
            },
        )
        return result.rowcount == 1


def _replay(row: Row[Any]) -> StoredResponse:
    return StoredResponse(
        status=int(row.response_status),
        headers=json.loads(row.response_headers) if row.response_headers else {},
        body=bytes(row.response_body or b""),
        emits=json.loads(row.emits) if row.emits else [],
        emits_sent=bool(row.emits_sent),
        replayed=True,
    )


def _duplicate(remaining: float) -> DuplicateInProgress:
    return DuplicateInProgress(_DUPLICATE_DETAIL, retry_after=float(max(1, math.ceil(remaining))))
