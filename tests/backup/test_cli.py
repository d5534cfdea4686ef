"""`eventfn backup ...` / `eventfn restore ...` end to end through the argument parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from eventfn._backup_repo import BackupRepo, SnapshotNotFound
from eventfn._cli_backup import register
from eventfn._store import create_engine_from_url

K8S = Path(__file__).resolve().parents[2] / "k8s"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="eventfn")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    result: int = args.command(args)
    return result


@pytest.fixture
def env(s3_endpoint: str, s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("EVENTFN_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("EVENTFN_BUCKET", "eventfn-data")
    monkeypatch.delenv("K_SINK", raising=False)
    monkeypatch.delenv("EVENTFN_BACKUP_RUN_ID", raising=False)
    monkeypatch.setenv("EVENTFN_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def test_backup_list_verify_restore_and_drill_from_the_command_line(
    env: Path,
    sqlite_url: str,
    db_rows: Any,
    s3: Any,
    repo: BackupRepo,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = create_engine_from_url(sqlite_url)
    before = db_rows.fill(engine, rows=6)
    engine.dispose()
    s3.put_object(Bucket="eventfn-data", Key="documents/a.txt", Body=b"hello")
    assert _run(["backup", "db", "--url", sqlite_url, "--run-id", "nightly-1"]) == 0
    assert _run(["backup", "db", "--url", sqlite_url, "--run-id", "nightly-1"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert _run(["backup", "bucket"]) == 0
    assert _run(["backup", "cluster", "--local", "--manifests", str(K8S)]) == 0
    capsys.readouterr()
    assert _run(["backup", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 3 and all("unverified" in line for line in listed)
    db_ref = next(line.split("\t")[0] for line in listed if line.startswith("db/"))
    assert _run(["backup", "verify", db_ref]) == 0
    assert _run(["backup", "show", db_ref]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["kind"] == "db"
    target = env / "restored.db"
    snap = db_ref.split("/", 1)[1]
    assert _run(["restore", "db", snap, "--target", str(target)]) == 0
    restored = create_engine_from_url(str(target))
    assert db_rows.snapshot(restored) == before
    restored.dispose()
    with pytest.raises(SnapshotNotFound):  # a db snapshot id is no cluster snapshot
        _run(["restore", "cluster", snap, "--target", str(env / "y")])
    assert _run(["backup", "drill"]) == 0
    assert "drill bucket/" in capsys.readouterr().out


def test_verify_reports_a_corrupted_snapshot_with_exit_status_1(
    env: Path, s3: Any, repo: BackupRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket="eventfn-data", Key="k", Body=b"v")
    assert _run(["backup", "bucket", "--run-id", "r"]) == 0
    [manifest] = repo.snapshots("bucket")
    repo.put(f"bucket/objects/{manifest['objects'][0]['sha256']}", b"x")
    assert _run(["backup", "verify", f"bucket/{manifest['snapshot_id']}"]) == 1
    assert "FAILED verification" in capsys.readouterr().err
