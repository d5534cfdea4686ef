"""The SQL store as command-line tools open it: `--url`, else the settings of the environment
(EVENTFN_DATABASE_URL, or the SQLite file of the state directory, `--state-dir` first).

Shared by `eventfn users` and `eventfn lake`. They read or change what functions wrote, so
they never create or migrate a database: a missing or unmigrated one is a clear error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_STATE_DIR, ENV_DATABASE_URL, ENV_STATE_DIR, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """`--url` and `--state-dir`."""
    parser.add_argument("--url", default=None, help=f"database URL (default ${ENV_DATABASE_URL})")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"state directory (default ${ENV_STATE_DIR} or {DEFAULT_STATE_DIR}): its SQLite "
        "file, and the embedded S3 of an `eventfn dev` running there",
    )


def cli_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with `--state-dir` applied."""
    settings = Settings.from_env()
    if args.state_dir is not None:
        settings = settings.with_overrides(state_dir=Path(args.state_dir))
    return settings


def open_store(args: argparse.Namespace) -> Engine:
    """An engine on the migrated database the arguments name; ConfigurationError otherwise."""
    from eventfn._store import create_engine_from_url, current_revision, head_revision

    settings = cli_settings(args)
    url = args.url or settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigurationError(f"there is no database at {url.removeprefix('sqlite:///')}")
    engine = create_engine_from_url(url)
    try:
        revision = current_revision(engine)
    except BaseException:
        engine.dispose()
        raise
    if revision != head_revision():
        engine.dispose()
        raise ConfigurationError(
            f"the database is at migration {revision or 'none'}, not {head_revision()}: "
            "run `eventfn db upgrade`"
        )
    return engine
