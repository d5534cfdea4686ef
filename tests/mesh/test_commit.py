"""Group commit and background checkpoints on a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from eventfn.mesh._commit import Checkpointer, GroupCommit

WAIT = 10.0


class CountingLock:
    """A lock that tells the test how many threads asked for it."""

    def __init__(self) -> None:
        self.real = threading.Lock()
        self.asked = 0
        self.changed = threading.Condition()

    def __enter__(self) -> bool:
        with self.changed:
            self.asked += 1
            self.changed.notify_all()
        return self.real.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.real.release()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.asked >= count, WAIT)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(
        str(tmp_path / "commit.db"), isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    yield connection
    connection.close()


def statements(db: sqlite3.Connection) -> list[str]:
    seen: list[str] = []
    db.set_trace_callback(seen.append)
    return seen


def insert(n: int) -> Callable[[sqlite3.Connection], int]:
    def work(db: sqlite3.Connection) -> int:
        if n < 0:
            raise ValueError("refused")
        db.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n * 10

    return work


def run_while_locked(commits: GroupCommit, lock: CountingLock, works: list[Any]) -> list[Any]:
    """Start one thread per work while the lock is held; release it once all wait for it."""
    results: list[Any] = [None] * len(works)

    def call(index: int) -> None:
        try:
            results[index] = commits.run(works[index])
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(works))]
    with lock.real:
        for thread in threads:
            thread.start()
        lock.wait_for(len(works))
    for thread in threads:
        thread.join(WAIT)
    return results


def test_writers_waiting_for_the_lock_share_one_commit(db: sqlite3.Connection) -> None:
    lock = CountingLock()
    commits = GroupCommit(db, lock)  # type: ignore[arg-type]
    seen = statements(db)
    results = run_while_locked(commits, lock, [insert(n) for n in range(5)])
    assert results == [0, 10, 20, 30, 40]  # each caller gets the result of its own work
    assert [row[0] for row in db.execute("SELECT n FROM t ORDER BY n")] == [0, 1, 2, 3, 4]
    assert seen.count("COMMIT") == 1


def test_a_failing_work_fails_alone(db: sqlite3.Connection) -> None:
    lock = CountingLock()
    commits = GroupCommit(db, lock)  # type: ignore[arg-type]
    seen = statements(db)
    results = run_while_locked(commits, lock, [insert(1), insert(-1), insert(2)])
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)
    assert [row[0] for row in db.execute("SELECT n FROM t ORDER BY n")] == [1, 2]
    assert seen.count("COMMIT") == 2  # the batch was rolled back, then each ran alone


def test_without_contention_each_work_is_its_own_transaction(db: sqlite3.Connection) -> None:
    commits = GroupCommit(db, threading.Lock())
    seen = statements(db)
    assert [commits.run(insert(n)) for n in (1, 2)] == [10, 20]
    assert seen.count("COMMIT") == 2
    with pytest.raises(ValueError, match="refused"):
        commits.run(insert(-1))
    assert not db.in_transaction


def wal_writer(path: Path, rows: int) -> sqlite3.Connection:
    """A writer as the broker's: WAL, no automatic checkpoints, one transaction per row."""
    writer = sqlite3.connect(str(path), isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB)")
    for n in range(rows):
        writer.execute("INSERT INTO t VALUES (?, zeroblob(2000))", (n,))
    return writer


def test_the_checkpointer_copies_the_wal_from_its_own_connection(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    writer = wal_writer(path, 50)
    own = sqlite3.connect(str(path), isolation_level=None)
    frames, done = Checkpointer(path).checkpoint(own, 4096)
    assert frames >= 50 and done == frames  # everything is in the database file now
    writer.execute("INSERT INTO t VALUES (50, NULL)")  # a caught-up WAL starts over
    assert Checkpointer(path).checkpoint(own, 4096)[0] < 5
    own.close()
    writer.close()


@pytest.mark.parametrize(("limit", "restart"), [(4096, True), (10**9, False)])
def test_a_wal_past_the_limit_gets_a_restart_checkpoint(
    tmp_path: Path, limit: int, restart: bool
) -> None:
    path = tmp_path / "wal.db"
    writer = wal_writer(path, 50)
    own = sqlite3.connect(str(path), isolation_level=None)
    seen = statements(own)
    frames, done = Checkpointer(path, restart_bytes=limit).checkpoint(own, 4096)
    assert done == frames >= 50
    assert ("PRAGMA wal_checkpoint(RESTART)" in seen) is restart
    own.close()
    writer.close()
