"""How the broker's SQLite writes reach the disk: group commit and background checkpoints.

Group commit: a caller adds its work (a function of the connection) to a pending list, then
takes the connection's lock. Whoever holds the lock runs everything pending at that moment in
one transaction and commits once; callers that were waiting for the lock find their work done
and return at once. A caller still returns only after the commit that holds its work, so what
it acknowledges afterwards (a 202, a delivery marked done) is as durable as with a transaction
of its own. Under contention (dispatchers finishing deliveries while the ingress accepts events)
many commits become one and every page they touch goes to the WAL once per batch. Without
contention it is a plain transaction. If a batch fails, it is rolled back and each piece of
work runs again in a transaction of its own, so an error reaches only the caller that caused it.

Checkpoints: SQLite's automatic checkpoint runs inside the commit that crosses 1000 WAL pages,
copying pages into the database file and fsyncing it while that writer holds the lock every
other thread waits for; at the broker's write rate that happened several times a second and cost
about half the throughput. The writer's connection therefore turns it off
(`wal_autocheckpoint=0`) and a `Checkpointer` thread with a connection of its own runs PASSIVE
checkpoints, which never block writers. The WAL rewinds whenever a checkpoint has caught up
(any pause in the traffic); if sustained traffic lets it grow past `restart_bytes`, a RESTART
checkpoint makes writers wait once until it has caught up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from eventfn._logging import get_logger

T = TypeVar("T")
CHECKPOINT_INTERVAL = 0.25
RESTART_BYTES = 64 * 1024 * 1024
_log = get_logger("mesh.broker")


class _Work(Generic[T]):
    __slots__ = ("action", "done", "error", "result")

    def __init__(self, action: Callable[[sqlite3.Connection], T]) -> None:
        self.action = action
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Runs work in IMMEDIATE transactions on `db`, batching what waits for `lock`."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock  # held around every use of `db`, by readers as well
        self._pending: list[_Work[Any]] = []
        self._pending_lock = threading.Lock()

    def run(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run `action(db)` in a committed transaction (maybe shared); its result."""
        work = _Work(action)
        with self._pending_lock:
            self._pending.append(work)
        with self._lock:
            if not work.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._commit(batch)
        if work.error is not None:
            raise work.error
        return cast(T, work.result)

    def _commit(self, batch: list[_Work[Any]]) -> None:
        try:
            if len(batch) == 1 or not self._together(batch):
                for work in batch:
                    self._alone(work)
        finally:
            for work in batch:  # only an interrupt (BaseException) leaves work undone
                if not work.done:
                    work.error = work.error or RuntimeError("the transaction was interrupted")
                    work.done = True

    def _together(self, batch: list[_Work[Any]]) -> bool:
        """One transaction for the whole batch; False (rolled back) if any work failed."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            results = [work.action(self._db) for work in batch]
            self._db.execute("COMMIT")
        except BaseException as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if not isinstance(error, Exception):
                raise
            return False
        for work, result in zip(batch, results, strict=True):
            work.result, work.done = result, True
        return True

    def _alone(self, work: _Work[Any]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            work.result = work.action(self._db)
            self._db.execute("COMMIT")
        except BaseException as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            work.error = error
            if not isinstance(error, Exception):
                raise
        finally:
            work.done = True


class Checkpointer:
    """PASSIVE WAL checkpoints of the database at `path`, from a thread of their own."""

    def __init__(
        self,
        path: Path,
        interval: float = CHECKPOINT_INTERVAL,
        restart_bytes: int = RESTART_BYTES,
    ) -> None:
        self._path = path
        self._interval = interval
        self._restart_bytes = restart_bytes
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start checkpointing (idempotent)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="mesh-checkpoint", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the checkpoint in progress (the writer's close checkpoints the rest)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        db = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            while not self._stopping.wait(self._interval):
                self.checkpoint(db, page_size)
        except sqlite3.Error:
            _log.exception("WAL checkpoints stopped; SQLite's own take over at the next start")
        finally:
            db.close()

    def checkpoint(self, db: sqlite3.Connection, page_size: int) -> tuple[int, int]:
        """One PASSIVE checkpoint, and a RESTART one when the WAL holds more than the limit;
        the frames in the WAL and how many of them are in the database file now."""
        _, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames * page_size > self._restart_bytes:
            _, frames, done = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        return int(frames), int(done)
