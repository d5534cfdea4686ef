"""`backup db` / `restore db`: round trips on SQLite and PostgreSQL, corruption, refusals."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
import sqlalchemy

from eventfn._backup_db import backup_db, restore_db, verify_db
from eventfn._backup_repo import BackupRepo, SnapshotCorrupt, TargetNotEmpty
from eventfn._store import create_engine_from_url, head_revision, upgrade


def _round_trip(url: str, repo: BackupRepo, clock: Any, db_rows: Any) -> dict[str, Any]:
    engine = create_engine_from_url(url)
    try:
        before = db_rows.fill(engine)
        manifest = backup_db(url, repo, "snap-1", clock)
        db_rows.wipe(engine)
        assert all(not rows for rows in db_rows.snapshot(engine).values())
        restore_db(repo, "snap-1", url)
        assert db_rows.snapshot(engine) == before
    finally:
        engine.dispose()
    return manifest


def test_sqlite_round_trip_restores_identical_rows_and_the_search_index(
    sqlite_url: str, repo: BackupRepo, clock: Any, db_rows: Any
) -> None:
    manifest = _round_trip(sqlite_url, repo, clock, db_rows)
    assert manifest["dialect"] == "sqlite"
    assert manifest["revision"] == head_revision()
    assert {t["table"] for t in manifest["tables"]} >= {"users", "idempotency_records"}
    assert all(t["rows"] == 25 for t in manifest["tables"])
    assert "users_fts" not in {t["table"] for t in manifest["tables"]}
    engine = create_engine_from_url(sqlite_url)
    with engine.connect() as connection:  # the FTS5 index was rebuilt by the triggers
        hits = connection.exec_driver_sql(
            "SELECT count(*) FROM users_fts WHERE users_fts MATCH 'tag1'"
        ).scalar_one()
    engine.dispose()
    assert hits == 8


def test_restore_into_a_new_sqlite_file_migrates_it_first(
    sqlite_url: str, repo: BackupRepo, clock: Any, db_rows: Any, tmp_path: Any
) -> None:
    engine = create_engine_from_url(sqlite_url)
    before = db_rows.fill(engine, rows=10)
    engine.dispose()
    backup_db(sqlite_url, repo, "snap-1", clock)
    target = str(tmp_path / "scratch" / "restored.db")
    result = restore_db(repo, "snap-1", target)
    restored = create_engine_from_url(target)
    assert db_rows.snapshot(restored) == before
    restored.dispose()
    assert result["rows"] == sum(len(rows) for rows in before.values())


def test_a_non_empty_target_is_refused_without_force(
    sqlite_url: str, repo: BackupRepo, clock: Any, db_rows: Any
) -> None:
    engine = create_engine_from_url(sqlite_url)
    before = db_rows.fill(engine, rows=5)
    backup_db(sqlite_url, repo, "snap-1", clock)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM users WHERE user_id LIKE '1-%'")
    with pytest.raises(TargetNotEmpty):
        restore_db(repo, "snap-1", sqlite_url)
    restore_db(repo, "snap-1", sqlite_url, force=True)
    assert db_rows.snapshot(engine) == before
    engine.dispose()


def test_a_corrupted_table_file_is_caught_by_verify_and_by_restore(
    sqlite_url: str, repo: BackupRepo, clock: Any, db_rows: Any, tmp_path: Any
) -> None:
    engine = create_engine_from_url(sqlite_url)
    db_rows.fill(engine, rows=5)
    engine.dispose()
    manifest = backup_db(sqlite_url, repo, "snap-1", clock)
    verify_db(repo, manifest)
    key = "db/snap-1/users.jsonl.gz"
    lines = gzip.decompress(repo.get(key)).replace(b"tag1", b"tagX")
    repo.put(key, gzip.compress(lines))
    with pytest.raises(SnapshotCorrupt, match="users"):
        verify_db(repo, manifest)
    with pytest.raises(SnapshotCorrupt):
        restore_db(repo, "snap-1", str(tmp_path / "never.db"))


def test_backup_is_a_consistent_copy_while_the_source_keeps_changing(
    sqlite_url: str, repo: BackupRepo, clock: Any, db_rows: Any
) -> None:
    engine = create_engine_from_url(sqlite_url)
    db_rows.fill(engine, rows=3)
    manifest = backup_db(sqlite_url, repo, "snap-1", clock)
    with engine.begin() as connection:  # written after the snapshot: not in it
        connection.exec_driver_sql("DELETE FROM users")
    engine.dispose()
    users = next(t for t in manifest["tables"] if t["table"] == "users")
    assert users["rows"] == 3


@pytest.mark.postgres
def test_postgres_round_trip_regenerates_the_search_column(
    empty_postgres_url: str, repo: BackupRepo, clock: Any, db_rows: Any
) -> None:
    upgrade(empty_postgres_url)
    manifest = _round_trip(empty_postgres_url, repo, clock, db_rows)
    assert manifest["dialect"] == "postgresql"
    users = next(t for t in manifest["tables"] if t["table"] == "users")
    assert "search" not in users["columns"]
    engine = create_engine_from_url(empty_postgres_url)
    with engine.connect() as connection:
        found = connection.execute(
            sqlalchemy.text(
                "SELECT count(*) FROM users WHERE search @@ to_tsquery('simple', 'tag1')"
            )
        ).scalar_one()
    engine.dispose()
    assert found == 8


@pytest.mark.postgres
def test_postgres_snapshot_restores_into_sqlite(
    empty_postgres_url: str, repo: BackupRepo, clock: Any, db_rows: Any, tmp_path: Any
) -> None:
    upgrade(empty_postgres_url)
    engine = create_engine_from_url(empty_postgres_url)
    before = db_rows.fill(engine, rows=7)
    engine.dispose()
    backup_db(empty_postgres_url, repo, "snap-pg", clock)
    target = str(tmp_path / "from-pg.db")
    restore_db(repo, "snap-pg", target)
    restored = create_engine_from_url(target)
    assert db_rows.snapshot(restored) == before
    restored.dispose()
