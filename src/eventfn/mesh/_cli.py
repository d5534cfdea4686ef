"""The `eventfn dev`, `eventfn events` and `eventfn upload` commands (registered in _cli_ext)."""

from __future__ import annotations

import argparse
import mimetypes
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_STATE_DIR, ENV_STATE_DIR

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(commands: SubParsers) -> None:
    """Add the local-mesh commands to the `eventfn` parser."""
    _add_dev(commands)
    _add_events(commands)
    _add_upload(commands)


def _state_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state directory of the mesh (default ${ENV_STATE_DIR} or {DEFAULT_STATE_DIR})",
    )


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir)
    from eventfn._settings import Settings

    return Settings.from_env().state_dir


def _add_dev(commands: SubParsers) -> None:
    dev = commands.add_parser(
        "dev",
        help="run the topology of k8s/ locally: broker, functions, embedded S3",
        description="Run every Knative Service, Broker and Trigger of the manifests on this "
        "machine: functions as `eventfn serve` processes (scale to zero after --idle-seconds), "
        "a durable broker, and an embedded S3 whose bucket notifications reach storage-source "
        "as MinIO webhooks. Prints each hop; Ctrl-C or SIGTERM stops it within 15 s (a second "
        "one at once) and prints a summary. Accepted events survive the process being killed, "
        "not an OS crash (SQLite synchronous=NORMAL).",
    )
    dev.add_argument("--manifests", type=Path, default=Path("k8s"), help="manifests directory")
    _state_dir_argument(dev)
    dev.add_argument(
        "--port", type=int, default=None, help="broker ingress port (default 8080 if free, 0: any)"
    )
    dev.add_argument(
        "--idle-seconds", type=float, default=60.0, help="stop min-scale 0 functions when idle"
    )
    dev.add_argument("--demo", action="store_true", help="feed the sample inputs of demo/")
    dev.add_argument("--exit", action="store_true", help="exit after starting (and the demo)")
    dev.add_argument(
        "--functions-dir",
        type=Path,
        action="append",
        default=None,
        help="where function folders live (repeatable; default functions/)",
    )
    dev.add_argument("--schemas-dir", type=Path, default=Path("schemas"), help="event catalog")
    dev.add_argument("--demo-dir", type=Path, default=Path("demo"), help="demo inputs folder")
    dev.add_argument("--json", action="store_true", help="one JSON object per output line")
    dev.set_defaults(command=_dev)


def _dev(args: argparse.Namespace) -> int:
    from eventfn.mesh._dev import DevOptions, run_dev

    if args.idle_seconds <= 0:
        raise ConfigurationError("--idle-seconds must be greater than zero")
    options = DevOptions(
        manifests=args.manifests,
        state_dir=_state_dir(args),
        port=args.port,
        idle_seconds=args.idle_seconds,
        demo=args.demo,
        exit=args.exit,
        functions_dirs=tuple(args.functions_dir or [Path("functions")]),
        schemas_dir=args.schemas_dir,
        demo_dir=args.demo_dir,
        json_lines=args.json,
    )
    return run_dev(options)


def _add_events(commands: SubParsers) -> None:
    events = commands.add_parser("events", help="the event log of the local mesh (newest last)")
    events.add_argument("--type", dest="type_prefix", default=None, help="event type prefix")
    events.add_argument("--limit", type=int, default=20, help="how many events (default 20)")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    events.add_argument("--json", action="store_true", help="one JSON object per event")
    _state_dir_argument(events)
    events.set_defaults(command=_events)


def _events(args: argparse.Namespace) -> int:
    from eventfn.mesh._dev_events import print_events

    if args.limit < 1:
        raise ConfigurationError("--limit must be at least 1")
    stop = threading.Event()
    try:
        return print_events(
            _state_dir(args),
            sys.stdout,
            type_prefix=args.type_prefix,
            limit=args.limit,
            as_json=args.json,
            follow=args.follow,
            stop=stop,
        )
    except KeyboardInterrupt:
        return 0


def _add_upload(commands: SubParsers) -> None:
    upload = commands.add_parser(
        "upload", help="put a file into the embedded S3 of a running `eventfn dev`"
    )
    upload.add_argument("file", type=Path, help="the file to upload")
    upload.add_argument("--prefix", default="", help="key prefix, e.g. documents/")
    upload.add_argument("--key", default=None, help="the whole object key (default prefix+name)")
    upload.add_argument("--bucket", default=None, help="bucket (default: the data bucket)")
    upload.add_argument("--content-type", default=None, help="default: guessed from the name")
    _state_dir_argument(upload)
    upload.set_defaults(command=_upload)


def _upload(args: argparse.Namespace) -> int:
    from eventfn._objects import validate_key
    from eventfn.mesh._dev import read_dev_file
    from eventfn.mesh._dev_env import S3Access
    from eventfn.mesh._s3 import client_for

    path: Path = args.file
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a file")
    info = read_dev_file(_state_dir(args))
    s3 = info["s3"]
    access = S3Access(s3["endpoint_url"], s3["region"], s3["access_key"], s3["secret_key"])
    bucket = args.bucket or s3["bucket"]
    key = validate_key(args.key or f"{args.prefix}{path.name}")
    content_type = args.content_type or mimetypes.guess_type(path.name)[0]
    extra = {"ContentType": content_type} if content_type else {}
    with path.open("rb") as body:
        response = client_for(access).put_object(Bucket=bucket, Key=key, Body=body, **extra)
    etag = str(response.get("ETag", "")).strip('"')
    print(f"uploaded s3://{bucket}/{key} ({path.stat().st_size} bytes, etag {etag})")
    return 0
