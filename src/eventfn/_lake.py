"""The data lake: where archived events live in object storage, and how often batches are cut.

Layout (Hive-style partitions, values percent-encoded):

    events/type=<type>/year=YYYY/month=MM/day=DD/hour=HH/<batch>.ndjson
    events/type=<type>/year=YYYY/month=MM/day=DD/hour=HH/compacted.parquet

One NDJSON line is one structured-mode CloudEvent. A batch is named after a digest of the event
keys it holds, so writing the same rows again replaces the object instead of adding a copy.
The hour is the event's `time` in UTC (the receive time when the event has none).

Used by the lake-archiver function and by `eventfn lake flush|compact` (a CronJob in the chart).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from eventfn._errors import ConfigurationError
from eventfn._settings import env_number

if TYPE_CHECKING:
    from eventfn._objects import ObjectStore
    from eventfn._settings import Settings

ENV_LAKE_BUCKET: Final = "LAKE_BUCKET"
ENV_FLUSH_ROWS: Final = "LAKE_FLUSH_ROWS"
ENV_FLUSH_SECONDS: Final = "LAKE_FLUSH_SECONDS"
ENV_BATCH_ROWS: Final = "LAKE_BATCH_MAX_ROWS"

LAKE_ROOT: Final = "events/"
NDJSON_SUFFIX: Final = ".ndjson"
COMPACTED_NAME: Final = "compacted.parquet"
NDJSON_CONTENT_TYPE: Final = "application/x-ndjson"
PARQUET_CONTENT_TYPE: Final = "application/vnd.apache.parquet"
MAX_EVENT_KEY: Final = 512
HOUR: Final = timedelta(hours=1)
_HOUR_FORMAT: Final = "%Y-%m-%dT%H"
_HOUR_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")


@dataclass(frozen=True)
class LakePolicy:
    """When a type/hour's staged events are written, and where.

    A batch is cut once `flush_rows` events of one type and hour wait, or once the oldest of
    them has waited `flush_seconds`; a batch holds at most `batch_rows` events. `bucket`: the
    lake's bucket (None: the function's data bucket).
    """

    flush_rows: int = 100
    flush_seconds: float = 60.0
    batch_rows: int = 1000
    bucket: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LakePolicy:
        """LAKE_FLUSH_ROWS, LAKE_FLUSH_SECONDS, LAKE_BATCH_MAX_ROWS and LAKE_BUCKET."""
        policy = cls(
            flush_rows=env_number(env, ENV_FLUSH_ROWS, cls.flush_rows, int, positive=True),
            flush_seconds=env_number(
                env, ENV_FLUSH_SECONDS, cls.flush_seconds, float, positive=True
            ),
            batch_rows=env_number(env, ENV_BATCH_ROWS, cls.batch_rows, int, positive=True),
            bucket=env.get(ENV_LAKE_BUCKET) or None,
        )
        if policy.batch_rows < policy.flush_rows:
            raise ConfigurationError(f"{ENV_BATCH_ROWS} must be at least {ENV_FLUSH_ROWS}")
        return policy


def event_key(source: str, event_id: str) -> str:
    """The archive's identity of an event: source and id (a digest when too long)."""
    key = f"{source}\x1f{event_id}"
    if len(key) <= MAX_EVENT_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def hour_of(instant: datetime) -> str:
    """`YYYY-MM-DDTHH` of an aware datetime, in UTC."""
    return instant.astimezone(UTC).strftime(_HOUR_FORMAT)


def hour_start(hour: str) -> datetime:
    """The first instant of `YYYY-MM-DDTHH` (UTC); ConfigurationError for anything else."""
    if not _HOUR_PATTERN.match(hour):
        raise ConfigurationError(f"an hour is written YYYY-MM-DDTHH, not {hour!r}")
    try:
        return datetime.strptime(hour, _HOUR_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigurationError(f"{hour!r} is not an hour of the calendar") from None


def event_hour(time: str | None, received: datetime) -> str:
    """The hour an event is archived under: its `time` in UTC, else when it was received."""
    if time:
        from eventfn._binary import parse_time

        return hour_of(parse_time(time))
    return hour_of(received)


def is_closed(hour: str, now: datetime) -> bool:
    """True once the whole hour lies in the past."""
    return hour_start(hour) + HOUR <= now


def partition_prefix(event_type: str, hour: str) -> str:
    """`events/type=<type>/year=/month=/day=/hour=/` of one type and hour."""
    start = hour_start(hour)
    return (
        f"{LAKE_ROOT}type={quote(event_type, safe='')}/year={start:%Y}/month={start:%m}"
        f"/day={start:%d}/hour={start:%H}/"
    )


def batch_key(event_type: str, hour: str, event_keys: Iterable[str]) -> str:
    """The NDJSON object of a batch: named by a digest of its (sorted) event keys."""
    digest = hashlib.sha256("\n".join(sorted(event_keys)).encode()).hexdigest()[:32]
    return f"{partition_prefix(event_type, hour)}{digest}{NDJSON_SUFFIX}"


def compacted_key(event_type: str, hour: str) -> str:
    """The Parquet object of a compacted hour."""
    return partition_prefix(event_type, hour) + COMPACTED_NAME


def lake_store(
    settings: Settings,
    bucket: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> ObjectStore:
    """An ObjectStore on the lake bucket whose calls give up quickly (5 s connect, 10 s read,
    two retries): a flush must not outlive the delivery that runs it. `credentials`
    (access key, secret key) replace the usual AWS environment when given."""
    import boto3
    from botocore.config import Config

    from eventfn._objects import ObjectStore

    keys = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=Config(
            connect_timeout=5,
            read_timeout=10,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
        **keys,
    )
    return ObjectStore(client=client, bucket=bucket or settings.bucket)
