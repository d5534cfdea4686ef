"""Delivery in the local broker: the clock and schedule of attempts, and Knative's rules.

The `Schedule` keeps pending deliveries in memory, ordered by next-attempt time on a `Clock`
(the system clock, or a `ManualClock` that tests advance instead of sleeping). `judge()` decides
what one attempt's result means, following Knative's core dispatcher:

Backoff (knative/eventing pkg/kncloudevents/retries.go, `RetryConfigFromDeliverySpec`): the
wait before retry number n+1 is `backoffDelay * n` (linear) or `backoffDelay * 2^n`
(exponential), where n is go-retryablehttp's ZERO-BASED retry index. So with PT1S the linear
waits are 0 s, 1 s, 2 s, ... and the exponential waits 1 s, 2 s, 4 s, ...; there is no cap.
(The Kafka broker's dispatcher uses n = retry count + 1 instead; we implement the core one.)
Total attempts = retry + 1.

Retried (`SelectiveRetry`): network errors and timeouts, 5xx, 404, 408, 409, 429. Every other
status below 200 or from 300 up is final (3xx are not followed) and goes to the dead-letter sink.

Retry-After: on 429 and 503 a `Retry-After` header (delay-seconds or HTTP-date) is honoured:
the wait is max(backoff, min(retry-after, bound)), as Knative's alpha `delivery-retryafter`
feature computes it. The bound is the delivery's `retryAfterMax` (PT0S ignores the header) or,
because we enable by default what Knative keeps behind a flag, RETRY_AFTER_CAP seconds.

Dead-letter sink: after the last attempt (or a final status) the delivery enters its
dead-letter phase, retried with the same policy. It sends the original event in binary mode
with `knativeerrordest` (the failed URL), `knativeerrorcode` (the final HTTP status; omitted
after a network error or timeout) and `knativeerrordata` (the response body truncated to 1024
bytes, then base64-encoded; omitted when empty). Knative's core dispatcher additionally cuts
the base64 text at 1024 characters.

Replies: only a 200 response carrying a CloudEvent (binary or structured) is a reply. A 200 with
a non-empty body that is not a valid CloudEvent is a failure, as in Knative's broker filter
(which answers 502 for it, so it is retried and finally dead-lettered with code 502).
"""

from __future__ import annotations

import base64
import heapq
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Protocol

from eventfn._codec import STRUCTURED_JSON, decode_http
from eventfn._errors import EventfnError
from eventfn._event import Event
from eventfn.mesh._records import DEAD_LETTER, SUBSCRIBER, Job
from eventfn.mesh._topology import DeliverySpec

RETRY_AFTER_CAP = 60.0
ERROR_DATA_MAX = 1024
BAD_REPLY_STATUS = 502
_RETRYABLE_4XX = frozenset({404, 408, 409, 429})
_MAX_EXPONENT = 1000


class Clock(Protocol):
    """Time for scheduling retries: `now()` in epoch seconds and a wait on a Condition."""

    def now(self) -> float:
        """The current time in seconds."""
        ...

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        """Block on `condition` (held by the caller) until notified or `deadline` passes."""
        ...


class SystemClock:
    """Wall-clock time (persistable across restarts, unlike a monotonic clock)."""

    def now(self) -> float:
        return time.time()

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        condition.wait(None if deadline is None else max(0.0, deadline - time.time()))


class ManualClock:
    """A clock that only moves when told to: tests advance it instead of sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._waiting: set[threading.Condition] = set()

    def now(self) -> float:
        return self._now

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        with self._lock:
            if deadline is not None and deadline <= self._now:
                return
            self._waiting.add(condition)
        try:
            condition.wait()
        finally:
            with self._lock:
                self._waiting.discard(condition)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake every waiter."""
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move time forward to `when` (never backwards) and wake every waiter."""
        with self._lock:
            self._now = max(self._now, when)
            waiting = list(self._waiting)
        for condition in waiting:
            with condition:
                condition.notify_all()


class Schedule:
    """Pending deliveries in memory: a heap on next-attempt time that workers block on.

    Workers wait on a Condition through the Clock (no polling); `add` wakes them. The SQLite
    queue stays the source of truth: `open()` loads what was pending there, and a job id seen
    then is never added twice (an ingress racing with start-up cannot duplicate it).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._heap: list[tuple[float, int]] = []
        self._jobs: dict[int, Job] = {}
        self._recovered: set[int] = set()
        self._inflight = 0
        self._open = False

    def open(self, recovered: Iterable[Job]) -> None:
        """Accept work again, adding the jobs recovered from the database."""
        with self._lock:
            self._open = True
            for job in recovered:
                self._recovered.add(job.id)
                if job.id not in self._jobs:
                    self._push(job)
            self._work.notify_all()

    @property
    def is_open(self) -> bool:
        """False once `close()` was called."""
        return self._open

    def close(self) -> None:
        """Make every `take()` return None."""
        with self._lock:
            self._open = False
            self._work.notify_all()

    def add(self, jobs: Iterable[Job]) -> None:
        """Schedule new deliveries."""
        with self._lock:
            added = 0
            for job in jobs:
                if job.id not in self._recovered and job.id not in self._jobs:
                    self._push(job)
                    added += 1
            self._work.notify(added)

    def again(self, job: Job) -> None:
        """Schedule another attempt of a taken job (`job.next_at` says when)."""
        with self._lock:
            self._push(job)
            self._work.notify(1)

    def done(self, job: Job) -> None:
        """Forget a job that reached a final state."""
        with self._lock:
            self._jobs.pop(job.id, None)

    def _push(self, job: Job) -> None:
        self._jobs[job.id] = job
        heapq.heappush(self._heap, (job.next_at, job.id))

    def take(self) -> Job | None:
        """Block until a job is due and return it (in flight until `release()`)."""
        with self._lock:
            while self._open:
                if self._heap and self._heap[0][0] <= self.clock.now():
                    _, job_id = heapq.heappop(self._heap)
                    self._inflight += 1
                    return self._jobs[job_id]
                self.clock.wait(self._work, self._heap[0][0] if self._heap else None)
            return None

    def release(self) -> None:
        """A taken job's attempt is over (it was rescheduled or finished)."""
        with self._lock:
            self._inflight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is scheduled or in flight."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._heap and not self._inflight, timeout)

    def wait_quiet(self, timeout: float) -> float | None:
        """Wait until nothing is in flight or due; the next due time, or None when idle."""

        def quiet() -> bool:
            due = bool(self._heap) and self._heap[0][0] <= self.clock.now()
            return not self._inflight and not due

        with self._lock:
            if not self._idle.wait_for(quiet, timeout):
                raise TimeoutError("deliveries did not settle in time")
            return self._heap[0][0] if self._heap else None


def backoff(spec: DeliverySpec, retry_index: int) -> float:
    """Seconds to wait before the retry after attempt `retry_index` (zero-based)."""
    if spec.backoff_policy == "linear":
        return spec.backoff_delay * retry_index
    return spec.backoff_delay * float(2 ** min(retry_index, _MAX_EXPONENT))


def is_retryable(status: int | None) -> bool:
    """Knative's SelectiveRetry: None stands for a network error or timeout."""
    return status is None or status >= 500 or status in _RETRYABLE_4XX


def retry_after_seconds(headers: Mapping[str, str], wall_now: float) -> float | None:
    """The `Retry-After` header as seconds (delay-seconds or HTTP-date), or None."""
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - wall_now)


def next_delay(
    spec: DeliverySpec, retry_index: int, status: int | None, headers: Mapping[str, str]
) -> float:
    """The wait before the next attempt, Retry-After included."""
    delay = backoff(spec, retry_index)
    if status in (429, 503):
        requested = retry_after_seconds(headers, time.time())
        if requested is not None:
            bound = RETRY_AFTER_CAP if spec.retry_after_max is None else spec.retry_after_max
            delay = max(delay, min(requested, bound))
    return delay


def dead_letter_extensions(destination: str, status: int | None, body: bytes) -> dict[str, str]:
    """The `knativeerror*` extensions for a dead-lettered event."""
    extensions = {"knativeerrordest": destination}
    if status is not None:
        extensions["knativeerrorcode"] = str(status)
    if body:
        extensions["knativeerrordata"] = base64.b64encode(body[:ERROR_DATA_MAX]).decode("ascii")
    return extensions


@dataclass(frozen=True)
class Attempt:
    """The outcome of one HTTP request. `status` None means network error or timeout."""

    status: int | None
    latency_ms: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class BadReply(Exception):
    """A 200 response whose body is not a valid CloudEvent."""


def reply_event(attempt: Attempt) -> Event | None:
    """The reply CloudEvent of a successful attempt, None when there is none.

    Only the attributes are validated; binary-mode data is forwarded as is.
    """
    if attempt.status != 200:
        return None
    headers = attempt.headers
    binary = any(name.startswith("ce-") for name in headers)
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not binary and media != STRUCTURED_JSON:
        if attempt.body.strip():
            raise BadReply("a 200 response carried a body that is not a CloudEvent")
        return None
    try:
        return decode_http(headers, b"" if binary else attempt.body)
    except EventfnError:
        raise BadReply("a 200 response carried an invalid CloudEvent") from None


@dataclass(frozen=True)
class Verdict:
    """What to do after an attempt: `outcome` names the hop; `next` is the job to schedule."""

    outcome: str
    next: Job | None = None
    reply: Event | None = None


def judge(job: Job, spec: DeliverySpec, url: str, result: Attempt, now: float) -> Verdict:
    """Apply the retry, backoff, reply and dead-letter rules to one attempt's result."""
    status = result.status
    if result.ok and job.phase == DEAD_LETTER:
        return Verdict("dead-lettered")
    if result.ok:
        try:
            return Verdict("delivered", reply=reply_event(result))
        except BadReply:
            status = BAD_REPLY_STATUS
    if is_retryable(status) and job.attempt < spec.retry:
        delay = next_delay(spec, job.attempt, result.status, result.headers)
        return Verdict("retrying", replace(job, attempt=job.attempt + 1, next_at=now + delay))
    if job.phase == SUBSCRIBER and (spec.dead_letter_service or spec.dead_letter_uri):
        body = result.body[:ERROR_DATA_MAX]
        dead_letter = replace(
            job,
            phase=DEAD_LETTER,
            attempt=0,
            next_at=now,
            error_dest=url,
            error_code=status,
            error_data=body,
        )
        return Verdict("failed", dead_letter)
    return Verdict("failed")


def request_headers(job: Job) -> dict[str, str]:
    """The binary-mode request of one attempt: the event, trace context, and per phase
    `Prefer: reply` (subscriber) or the `knativeerror*` extensions (dead-letter sink)."""
    headers = {**job.event.headers, **job.event.trace}
    if job.phase == SUBSCRIBER:
        headers["prefer"] = "reply"
        return headers
    errors = dead_letter_extensions(job.error_dest or "", job.error_code, job.error_data or b"")
    headers.update({"ce-" + name: value for name, value in errors.items()})
    return headers


def knative_ingress(url: str, hosts: Iterable[str]) -> tuple[str, str] | None:
    """(namespace, broker) of a Knative broker-ingress URL such as a DLS pointing at a Broker."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    parts = path.strip("/").split("/")
    if scheme in ("http", "https") and host.split(":")[0] in hosts and len(parts) == 2:
        return parts[0], parts[1]
    return None
