"""`eventfn backup ...` and `eventfn restore ...`: snapshots proven by restores.

Settings as everywhere: EVENTFN_DATABASE_URL (or the state directory's SQLite file),
EVENTFN_S3_ENDPOINT_URL, EVENTFN_BUCKET (the data bucket), EVENTFN_BACKUP_BUCKET (default
eventfn-backups), K_SINK for the completed/failed events. When an `eventfn dev` runs in the
state directory, its embedded S3 and its broker are used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventfn._backup_repo import (
    DEFAULT_BACKUP_BUCKET,
    ENV_BACKUP_BUCKET,
    ENV_BACKUP_RUN_ID,
    KINDS,
    kind_of,
    utc_now,
)
from eventfn._cli_store import add_store_arguments, cli_settings

if TYPE_CHECKING:
    from eventfn._backup_run import BackupJob

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

DEV_FILE = "dev.json"


def register(commands: SubParsers) -> None:
    """Add `eventfn backup ...` and `eventfn restore ...` to the `eventfn` parser."""
    backup = commands.add_parser("backup", help="snapshots of the database, bucket and cluster")
    sub = backup.add_subparsers(title="backup commands", metavar="COMMAND")
    for kind, text in (
        ("db", "a consistent snapshot of every table of the SQL store"),
        ("bucket", "an incremental, content-addressed snapshot of the data bucket"),
        ("cluster", "the namespace's topology (or the rendered k8s/ with --local) as YAML"),
    ):
        parser = sub.add_parser(kind, help=text)
        _common(parser)
        parser.add_argument(
            "--run-id", default=None, help=f"idempotency token (default ${ENV_BACKUP_RUN_ID} "
            "or the UTC date): a second run with it is a no-op"
        )  # fmt: skip
        if kind == "cluster":
            _cluster_arguments(parser)
        parser.set_defaults(command=_backup, kind=kind)
    _add_inspection(sub)
    restore = commands.add_parser("restore", help="restore a snapshot into a target and verify it")
    rsub = restore.add_subparsers(title="restore commands", metavar="KIND")
    for kind in KINDS:
        parser = rsub.add_parser(kind, help=f"restore a {kind} snapshot")
        parser.add_argument("snapshot", help="snapshot id (or <kind>/<id>)")
        parser.add_argument("--target", required=True, help=_TARGET_HELP[kind])
        parser.add_argument("--force", action="store_true", help="overwrite a non-empty target")
        _common(parser)
        parser.set_defaults(command=_restore, kind=kind)


_TARGET_HELP = {
    "db": "database URL or SQLite path (migrated to the snapshot's revision first)",
    "bucket": "BUCKET or BUCKET/PREFIX/ to write the objects to",
    "cluster": "directory to write the YAML files to",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backup-bucket",
        default=None,
        help=f"where snapshots live (default ${ENV_BACKUP_BUCKET} or {DEFAULT_BACKUP_BUCKET})",
    )
    add_store_arguments(parser)


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local", action="store_true", help="export the rendered manifests (default without a "
        "kube config or in-cluster service account)"
    )  # fmt: skip
    parser.add_argument("--manifests", type=Path, default=Path("k8s"), help="for --local")
    parser.add_argument("--namespace", default="eventfn", help="namespace to export")


def _add_inspection(sub: SubParsers) -> None:
    listing = sub.add_parser("list", help="complete snapshots, oldest first")
    listing.add_argument("--kind", choices=KINDS, default=None)
    show = sub.add_parser("show", help="print a snapshot's manifest")
    verify = sub.add_parser("verify", help="re-read every file: sha256, sizes and row counts")
    for parser in (show, verify):
        parser.add_argument("snapshot", help="<kind>/<id>")
    prune = sub.add_parser("prune", help="apply retention; only behind a newer verified snapshot")
    prune.add_argument("--keep-daily", type=int, default=7)
    prune.add_argument("--keep-weekly", type=int, default=4)
    prune.add_argument("--dry-run", action="store_true")
    drill = sub.add_parser("drill", help="restore the newest snapshots into scratch targets")
    for parser, handler in (
        (listing, _list),
        (show, _show),
        (verify, _verify),
        (prune, _prune),
        (drill, _drill),
    ):
        _common(parser)
        parser.set_defaults(command=handler)


def _dev_info(args: argparse.Namespace) -> dict[str, Any] | None:
    settings = cli_settings(args)
    if not (settings.state_dir / DEV_FILE).is_file():
        return None
    from eventfn.mesh._dev import read_dev_file

    return read_dev_file(settings.state_dir)


def _s3_client(args: argparse.Namespace) -> tuple[Any, str]:
    """A boto3 client and the data bucket: of a running `eventfn dev`, else configured."""
    import boto3

    settings, dev = cli_settings(args), _dev_info(args)
    if dev is None:
        client = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region
        )
        return client, settings.bucket
    s3 = dev["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        region_name=s3["region"],
        aws_access_key_id=str(s3["access_key"]),
        aws_secret_access_key=str(s3["secret_key"]),
    )
    return client, str(s3["bucket"])


def build_job(args: argparse.Namespace) -> BackupJob:
    """The job the arguments and the environment describe."""
    from eventfn._backup_bucket import Source
    from eventfn._backup_repo import BackupRepo
    from eventfn._backup_run import BackupJob
    from eventfn._objects import ObjectStore

    settings = cli_settings(args)
    client, data_bucket = _s3_client(args)
    bucket = args.backup_bucket or os.environ.get(ENV_BACKUP_BUCKET) or DEFAULT_BACKUP_BUCKET
    return BackupJob(
        repo=BackupRepo(ObjectStore(client, bucket)),
        clock=utc_now,
        emit=_emitter(args),
        database_url=args.url or settings.effective_database_url,
        source=Source(client, data_bucket),
        resources=lambda: _resources(args),
    )


def _emitter(args: argparse.Namespace) -> Any:
    from eventfn._emitter import Emitter
    from eventfn._schemas import SchemaRegistry

    settings, dev = cli_settings(args), _dev_info(args)
    sink = settings.sink or (next(iter(dev["brokers"].values()), None) if dev else None)
    if not sink:
        return None
    registry = None
    if settings.schemas_dir.is_dir():
        registry = SchemaRegistry.from_directory(settings.schemas_dir)
    return Emitter.from_settings(settings.with_overrides(sink=sink), registry).emit


def _resources(args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    from eventfn._backup_cluster import (
        KubernetesReader,
        cluster_resources,
        has_kube_config,
        local_resources,
    )

    if getattr(args, "local", True) or not has_kube_config(os.environ):
        return f"local:{args.manifests}", local_resources(Path(args.manifests))
    reader = KubernetesReader.from_environment()
    return f"namespace:{args.namespace}", cluster_resources(reader, args.namespace)


def _backup(args: argparse.Namespace) -> int:
    from eventfn._backup_run import run_backup

    run_id = args.run_id or os.environ.get(ENV_BACKUP_RUN_ID) or None
    outcome = run_backup(build_job(args), args.kind, run_id)
    manifest = outcome.manifest
    ref = f"{args.kind}/{manifest['snapshot_id']}"
    if outcome.skipped:
        print(f"{ref} already complete for this run id: nothing to do")
        return 0
    print(f"{ref}: {manifest['bytes']} bytes in {manifest['duration_seconds']} s")
    if args.kind == "bucket":
        print(f"  {len(manifest['objects'])} objects, {manifest['copied']} copied, "
              f"{len(manifest['deleted'])} deleted since the previous snapshot")  # fmt: skip
    return 0


def _ref(args: argparse.Namespace, kind: str | None = None) -> tuple[str, str]:
    text = str(args.snapshot)
    if kind is not None and not text.startswith(f"{kind}/"):
        text = f"{kind}/{text}"
    return kind_of(text), text.split("/", 1)[1]


def _list(args: argparse.Namespace) -> int:
    repo = build_job(args).repo
    for kind in [args.kind] if args.kind else list(KINDS):
        for manifest in repo.snapshots(kind):
            verified = repo.verified_at(kind, manifest["snapshot_id"])
            print(f"{kind}/{manifest['snapshot_id']}\t{manifest['started_at']}\t"
                  f"{manifest['bytes']} B\t{'verified' if verified else 'unverified'}")  # fmt: skip
    return 0


def _show(args: argparse.Namespace) -> int:
    kind, snap = _ref(args)
    print(json.dumps(build_job(args).repo.manifest(kind, snap), indent=2, sort_keys=True))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from eventfn._backup_repo import SnapshotCorrupt
    from eventfn._backup_run import verify

    try:
        verify(build_job(args).repo, "/".join(_ref(args)), utc_now())
    except SnapshotCorrupt as error:
        print(f"eventfn: {args.snapshot} FAILED verification: {error.detail}", file=sys.stderr)
        return 1
    print(f"{args.snapshot}: verified")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from eventfn._backup_retention import prune

    report = prune(build_job(args).repo, utc_now(), args.keep_daily, args.keep_weekly, args.dry_run)
    for name in report.deleted:
        print(f"{'would delete' if args.dry_run else 'deleted'} {name}")
    for name in report.unproven:
        print(f"kept {name}: expired, but no newer verified snapshot")
    print(f"prune: kept {len(report.kept)}, deleted {len(report.deleted)}, "
          f"{report.blobs_deleted} unreferenced objects collected")  # fmt: skip
    return 0


def _drill(args: argparse.Namespace) -> int:
    from eventfn._backup_run import drill

    result = drill(build_job(args))
    for kind, outcome in result["restored"].items():
        print(f"drill {kind}/{outcome['snapshot_id']}: restored and identical "
              f"in {outcome['rto_seconds']} s")  # fmt: skip
    return 0


def _restore(args: argparse.Namespace) -> int:
    kind, snap = _ref(args, args.kind)
    job = build_job(args)
    result: dict[str, Any]
    if kind == "db":
        from eventfn._backup_db import restore_db

        result = restore_db(job.repo, snap, args.target, force=args.force)
    elif kind == "bucket":
        from eventfn._backup_bucket import Source, restore_bucket

        bucket, _, prefix = str(args.target).partition("/")
        assert job.source is not None
        target = Source(job.source.client, bucket)
        result = restore_bucket(job.repo, snap, target, prefix, force=args.force)
    else:
        from eventfn._backup_cluster import restore_cluster

        result = restore_cluster(job.repo, snap, Path(args.target), force=args.force)
    print(f"restored {kind}/{snap} into {args.target} and verified: {json.dumps(result)}")
    return 0
