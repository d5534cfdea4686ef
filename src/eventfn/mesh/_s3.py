"""The embedded S3 of `eventfn dev`: moto's S3-compatible server on loopback.

The store starts empty (moto keeps objects in memory) with the buckets the topology names.
Object creation is detected with moto's own bucket notifications: every bucket gets a
QueueConfiguration for `s3:ObjectCreated:*` pointing at an SQS queue inside the same server,
which `_s3_notify.NotificationRelay` long-polls and turns into MinIO webhook calls.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
from collections.abc import Iterable
from typing import Any

import urllib3

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_BUCKET, DEFAULT_REGION, ENV_BUCKET
from eventfn.mesh._dev_env import S3Access
from eventfn.mesh._supervisor import LOOPBACK
from eventfn.mesh._topology import Topology

DEV_ACCESS_KEY = "eventfn-dev"
DEV_SECRET_KEY = "eventfn-dev-secret"  # noqa: S105 - moto accepts any credentials
NOTIFICATION_ID = "eventfn-dev"
QUEUE_PREFIX = "eventfn-dev-notifications"
CREATED_EVENTS = ("s3:ObjectCreated:*",)
_RESET_PATH = "/moto-api/reset"
_QUIET_LOGGERS = ("werkzeug",)


def topology_buckets(topology: Topology, default: str = DEFAULT_BUCKET) -> list[str]:
    """The data bucket plus every bucket a Service names in `EVENTFN_BUCKET` or `*_BUCKET`."""
    names = {default}
    for service in topology.services.values():
        for name, value in service.env.items():
            if (name == ENV_BUCKET or name.endswith("_BUCKET")) and value:
                names.add(value)
    return sorted(names)


class EmbeddedS3:
    """moto's ThreadedMotoServer on a loopback port, reset to an empty store when started."""

    def __init__(self, port: int = 0, region: str = DEFAULT_REGION) -> None:
        self._port = port
        self._region = region
        self._server: Any = None
        self._access: S3Access | None = None

    def start(self) -> S3Access:
        """Start the server; returns its endpoint and the dev credentials."""
        from moto.server import ThreadedMotoServer

        for name in _QUIET_LOGGERS:  # one access-log line per request would drown the hop output
            logging.getLogger(name).setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self._port, verbose=False)
        try:
            server.start()
        except OSError as error:
            raise ConfigurationError(
                f"the embedded S3 cannot listen on port {self._port}"
            ) from error
        self._server = server
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urllib3.request("POST", endpoint + _RESET_PATH, timeout=10.0)
        self._access = S3Access(endpoint, self._region, DEV_ACCESS_KEY, DEV_SECRET_KEY)
        return self._access

    @property
    def access(self) -> S3Access:
        """Endpoint and credentials (after `start`)."""
        if self._access is None:
            raise RuntimeError("the embedded S3 is not started")
        return self._access

    def client(self, service: str = "s3") -> Any:
        """A boto3 client of this endpoint (`s3` or `sqs`)."""
        return client_for(self.access, service)

    def create_buckets(self, names: Iterable[str]) -> list[str]:
        """Create the buckets (existing ones are kept)."""
        s3 = self.client("s3")
        created = []
        for name in names:
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=name)
            created.append(name)
        return created

    def notify_queue(self, buckets: Iterable[str]) -> str:
        """Create the notification queue and point every bucket's ObjectCreated events at it.

        Returns the queue URL. The queue name is unique per start, so a queue left over from
        an earlier run never feeds this one.
        """
        sqs = self.client("sqs")
        name = f"{QUEUE_PREFIX}-{secrets.token_hex(4)}"
        url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        arn = attributes["Attributes"]["QueueArn"]
        s3 = self.client("s3")
        for bucket in buckets:
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {"Id": NOTIFICATION_ID, "QueueArn": arn, "Events": list(CREATED_EVENTS)}
                    ]
                },
            )
        return url

    def stop(self) -> None:
        """Stop the server (the store's content is lost)."""
        if self._server is not None:
            self._server.stop()
            self._server = None


def port_is_free(port: int) -> bool:
    """Whether a loopback `port` can be bound right now."""
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def client_for(access: S3Access, service: str = "s3") -> Any:
    """A boto3 client for `access` (also used by `eventfn upload`)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=access.endpoint_url,
        region_name=access.region,
        aws_access_key_id=access.access_key,
        aws_secret_access_key=access.secret_key,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=30),
    )
