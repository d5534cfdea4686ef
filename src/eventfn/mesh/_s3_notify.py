"""Bucket notifications of the embedded S3, delivered like MinIO's webhook target.

`NotificationRelay` long-polls the SQS queue moto fills on object creation (keys arrive
URL-encoded, S3 event record 2.1) and POSTs each record to the storage-source function in
MinIO's webhook format: `{"EventName", "Key": "<bucket>/<decoded key>", "Records": [record]}`
with `Authorization: Bearer <token>`, the record completed with what MinIO adds (`s3:` event
name prefix, contentType, userMetadata, sequencer, versionId). Failures are retried through
SQS itself: the message stays in the queue and becomes visible again after a backoff, its
`ApproximateReceiveCount` being the attempt number; a 4xx other than 408/429 is final.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

import urllib3

from eventfn._logging import get_logger

WEBHOOK_PATH = "/webhook"
_STOP = {"eventfn-dev": "stop"}
_TEST_EVENT = "s3:TestEvent"
_RETRYABLE_4XX = frozenset({408, 429})
_KEEP_DELIVERIES = 10_000
_log = get_logger("mesh.s3")


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook call for one created object."""

    time: float
    bucket: str
    key: str
    event_name: str
    status: int | None
    latency_ms: float
    attempt: int
    outcome: str  # "delivered" | "retrying" | "failed"
    trace_id: str | None = None
    emitted: int = 0
    ignored: int = 0

    @property
    def final(self) -> bool:
        """Whether no further attempt follows."""
        return self.outcome != "retrying"


def minio_webhook_body(
    record: dict[str, Any],
    *,
    sequencer: str,
    content_type: str | None,
    version_id: str | None,
    access_key: str,
) -> dict[str, Any]:
    """The body MinIO's webhook target POSTs for one S3 event record."""
    full = copy.deepcopy(record)
    name = str(full.get("eventName", ""))
    full["eventName"] = name if name.startswith("s3:") else f"s3:{name}"
    full["eventSource"] = "minio:s3"
    full["userIdentity"] = {"principalId": access_key}
    full["requestParameters"] = {"principalId": access_key, "region": full.get("awsRegion", "")}
    full["responseElements"] = {"x-amz-request-id": sequencer}
    full["source"] = {"host": "127.0.0.1", "port": "", "userAgent": "eventfn-dev"}
    s3 = full["s3"]
    s3["bucket"]["ownerIdentity"] = {"principalId": access_key}
    obj = s3["object"]
    obj["sequencer"] = sequencer
    if content_type is not None:
        obj["contentType"] = content_type
        obj["userMetadata"] = {"content-type": content_type}
    if version_id is not None:
        obj["versionId"] = version_id
    key = f"{s3['bucket']['name']}/{unquote_plus(obj['key'])}"
    return {"EventName": full["eventName"], "Key": key, "Records": [full]}


def sequencer_of(event_time: str) -> str:
    """MinIO's sequencer: the event time in nanoseconds, upper-case hex."""
    try:
        moment = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
        nanos = int(moment.timestamp() * 1_000_000) * 1000
    except ValueError:
        nanos = time.time_ns()
    return f"{nanos:X}"


class NotificationRelay:
    """SQS long-poll -> MinIO-format webhook POSTs, with retries through message visibility."""

    def __init__(
        self,
        sqs: Any,
        s3: Any,
        queue_url: str,
        *,
        target: Callable[[], str],
        token: str,
        access_key: str,
        on_delivery: Callable[[WebhookDelivery], None] | None = None,
        max_attempts: int = 8,
        timeout: float = 30.0,
        wait_seconds: int = 20,
    ) -> None:
        self._sqs, self._s3, self._queue_url = sqs, s3, queue_url
        self._target = target
        self._token = token
        self._access_key = access_key
        self._on_delivery = on_delivery
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._wait_seconds = wait_seconds
        self._http = urllib3.PoolManager(maxsize=2, retries=False)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self._deliveries: list[WebhookDelivery] = []
        self._sequencers: dict[str, str] = {}

    def start(self) -> None:
        """Start polling in a background thread."""
        self._thread = threading.Thread(target=self._run, name="s3-notifications", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling within `timeout` s: a message put in the queue wakes the long poll.

        The message is sent from a helper thread, so a server that does not answer cannot hold
        the caller; a poller still busy after `timeout` (a webhook call in flight) is left
        behind as a daemon thread and logged.
        """
        self._stopping.set()
        if self._thread is None:
            return
        waker = threading.Thread(target=self._wake, name="s3-notifications-wake", daemon=True)
        waker.start()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("the bucket-notification relay was still busy after %.1f s", timeout)
        self._http.clear()

    def _wake(self) -> None:
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(_STOP))
        except Exception:  # the server may be gone already; the poll then fails and ends
            _log.debug("could not wake the notification poller")

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """Every webhook call so far, in order."""
        with self._changed:
            return list(self._deliveries)

    def wait_for(
        self, bucket: str, key: str, timeout: float, after: float = 0.0
    ) -> WebhookDelivery | None:
        """The final delivery of object `bucket/key` made at or after `after`, or None."""

        def found() -> WebhookDelivery | None:
            for item in self._deliveries:
                if (item.bucket, item.key) == (bucket, key) and item.final and item.time >= after:
                    return item
            return None

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout)
            return found()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self._wait_seconds,
                    AttributeNames=["ApproximateReceiveCount"],
                )
            except Exception:
                if self._stopping.is_set():
                    return
                _log.warning("polling the notification queue failed; retrying in 1 s")
                self._stopping.wait(1.0)
                continue
            for message in response.get("Messages", []):
                if self._stopping.is_set():
                    return  # unhandled messages become visible again (moto keeps them in memory)
                try:
                    self._handle(message)
                except Exception:  # one bad message must not end the relay
                    _log.exception("a bucket notification could not be relayed")

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            body = json.loads(message["Body"])
        except (KeyError, json.JSONDecodeError):
            body = None
        records = body.get("Records") if isinstance(body, dict) else None
        if not isinstance(records, list) or body == _STOP:
            self._delete(message)  # the stop marker, S3's test event or something foreign
            return
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        outcomes = [
            self._deliver(message["MessageId"], index, record, attempt)
            if _is_record(record)
            else "failed"
            for index, record in enumerate(records)
        ]
        if "retrying" in outcomes and attempt < self._max_attempts:
            backoff = min(30, 2 ** (attempt - 1))
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=backoff,
            )
            return
        self._delete(message)
        for index in range(len(records)):
            self._sequencers.pop(f"{message['MessageId']}/{index}", None)

    def _deliver(self, message_id: str, index: int, record: Any, attempt: int) -> str:
        bucket = str(record["s3"]["bucket"]["name"])
        key = unquote_plus(str(record["s3"]["object"]["key"]))
        sequencer = self._sequencers.setdefault(
            f"{message_id}/{index}", sequencer_of(str(record.get("eventTime", "")))
        )
        content_type, version_id = self._head(bucket, key, str(record["s3"]["object"]["eTag"]))
        body = minio_webhook_body(
            record,
            sequencer=sequencer,
            content_type=content_type,
            version_id=version_id,
            access_key=self._access_key,
        )
        status, answer, latency = self._post(body)
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        elif (status is None or status >= 500 or status in _RETRYABLE_4XX) and (
            attempt < self._max_attempts
        ):
            outcome = "retrying"
        else:
            outcome = "failed"
        delivery = WebhookDelivery(
            time=time.time(),
            bucket=bucket,
            key=key,
            event_name=body["EventName"],
            status=status,
            latency_ms=latency,
            attempt=attempt,
            outcome=outcome,
            trace_id=_text(answer.get("trace_id")),
            emitted=_count(answer.get("emitted")),
            ignored=_count(answer.get("ignored")),
        )
        self._record(delivery)
        return outcome

    def _head(self, bucket: str, key: str, etag: str) -> tuple[str | None, str | None]:
        """Content type and version of the object, when it is still the notified one."""
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except Exception:  # deleted or overwritten meanwhile: MinIO would not know either
            return None, None
        if str(head.get("ETag", "")).strip('"') != etag.strip('"'):
            return None, None
        version = head.get("VersionId")
        return head.get("ContentType"), version if version and version != "null" else None

    def _post(self, body: dict[str, Any]) -> tuple[int | None, dict[str, Any], float]:
        started = time.perf_counter()
        try:
            url = self._target().rstrip("/") + WEBHOOK_PATH
            response = self._http.request(
                "POST",
                url,
                body=json.dumps(body).encode(),
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Content-Type": "application/json",
                },
                timeout=urllib3.Timeout(total=self._timeout),
            )
        except (OSError, urllib3.exceptions.HTTPError):
            return None, {}, (time.perf_counter() - started) * 1000.0
        latency = (time.perf_counter() - started) * 1000.0
        try:
            answer = json.loads(response.data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = {}
        return int(response.status), answer if isinstance(answer, dict) else {}, latency

    def _record(self, delivery: WebhookDelivery) -> None:
        with self._changed:
            self._deliveries.append(delivery)
            if len(self._deliveries) > _KEEP_DELIVERIES:
                del self._deliveries[: _KEEP_DELIVERIES // 10]
            self._changed.notify_all()
        if self._on_delivery is not None:
            try:
                self._on_delivery(delivery)
            except Exception:
                _log.exception("the on_delivery callback failed")

    def _delete(self, message: dict[str, Any]) -> None:
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


def _is_record(record: Any) -> bool:
    s3 = record.get("s3") if isinstance(record, dict) else None
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    obj = s3.get("object") if isinstance(s3, dict) else None
    return (
        isinstance(bucket, dict)
        and isinstance(bucket.get("name"), str)
        and isinstance(obj, dict)
        and isinstance(obj.get("key"), str)
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
