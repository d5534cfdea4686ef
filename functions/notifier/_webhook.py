"""Posting a message to a Teams or Slack incoming webhook, with bounded retries.

- 2xx: delivered.
- 429, 408 and 5xx, or no answer: retried after the webhook's `Retry-After` (delay-seconds or an
  HTTP date) when it sends one, else after an exponential backoff, for at most `max_attempts`
  attempts and `max_total_seconds` in all (the sleep that would cross the budget is not taken).
  Then `WebhookUnavailable` (503, retryable, with the last Retry-After) hands the event back to
  the broker, which retries it according to its Trigger's delivery (and honours the Retry-After
  with the delivery-retryafter feature). Keep `max_total_seconds` (plus one request timeout)
  below the Trigger's `delivery.timeout`, or the broker gives up on a delivery still retrying.
- any other 4xx: `WebhookRejected` (422, permanent): the URL or the payload is wrong, retrying
  cannot help, and the event goes to the dead-letter sink.
Webhook URLs are secrets: they never appear in errors or logs, only the channel name does.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from eventfn import ConfigurationError, DependencyUnavailable, PermanentError
from eventfn._settings import env_number

ENV_MAX_ATTEMPTS = "NOTIFIER_MAX_ATTEMPTS"
ENV_MAX_TOTAL_SECONDS = "NOTIFIER_MAX_TOTAL_SECONDS"
ENV_TIMEOUT_SECONDS = "NOTIFIER_TIMEOUT_SECONDS"
RETRY_STATUSES = frozenset({408, 429})


class WebhookRejected(PermanentError):
    """The webhook refused the message with a 4xx: a wrong URL, token or payload."""

    status = 422
    code = "webhook-rejected"
    title = "Webhook rejected the message"


class WebhookUnavailable(DependencyUnavailable):
    """The webhook kept failing (429/5xx/no answer) within the retry budget."""

    code = "webhook-unavailable"
    title = "Webhook unavailable"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the in-process retries of one post."""

    max_attempts: int = 4
    max_total_seconds: float = 20.0
    timeout_seconds: float = 5.0
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """`NOTIFIER_MAX_ATTEMPTS` (4), `NOTIFIER_MAX_TOTAL_SECONDS` (20),
        `NOTIFIER_TIMEOUT_SECONDS` (5)."""
        policy = cls(
            max_attempts=int(env_number(env, ENV_MAX_ATTEMPTS, float(cls.max_attempts), float)),
            max_total_seconds=env_number(env, ENV_MAX_TOTAL_SECONDS, cls.max_total_seconds, float),
            timeout_seconds=env_number(env, ENV_TIMEOUT_SECONDS, cls.timeout_seconds, float),
        )
        if policy.max_attempts < 1 or policy.max_total_seconds <= 0 or policy.timeout_seconds <= 0:
            raise ConfigurationError("notifier retry settings must be positive")
        return policy

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based) without a Retry-After."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Answer:
    """A webhook's answer; `status` None when there was none (network error, timeout)."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)


Transport = Callable[[str, bytes, float], Answer]


def urllib3_transport() -> Transport:
    """POST JSON with a keep-alive pool, no redirects, no retries of its own."""
    import urllib3

    pool = urllib3.PoolManager(maxsize=4, retries=False)

    def send(url: str, body: bytes, timeout: float) -> Answer:
        try:
            response = pool.request(
                "POST",
                url,
                body=body,
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=urllib3.Timeout(total=timeout),
                redirect=False,
            )
        except urllib3.exceptions.HTTPError:
            return Answer(None)
        return Answer(int(response.status), {k.lower(): v for k, v in response.headers.items()})

    return send


@dataclass
class WebhookPoster:
    """Posts payloads; `sleep`, `clock` and `wall_clock` are injectable for tests."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    transport: Transport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time

    def post(self, channel: str, url: str, payload: Mapping[str, Any]) -> int:
        """Deliver `payload`; the number of attempts it took. Raises WebhookRejected or
        WebhookUnavailable as described in the module docstring."""
        if self.transport is None:
            self.transport = urllib3_transport()
        body = encode_payload(payload)
        policy = self.policy
        deadline = self.clock() + policy.max_total_seconds
        for attempt in range(1, policy.max_attempts + 1):
            timeout = max(0.1, min(policy.timeout_seconds, deadline - self.clock()))
            answer = self.transport(url, body, timeout)
            status = answer.status
            if status is not None and 200 <= status < 300:
                return attempt
            if status is not None and 400 <= status < 500 and status not in RETRY_STATUSES:
                raise WebhookRejected(f"the {channel} webhook refused the message ({status})")
            requested = retry_after(answer.headers, self.wall_clock())
            wait = policy.backoff(attempt) if requested is None else requested
            if attempt == policy.max_attempts or self.clock() + wait > deadline:
                raise WebhookUnavailable(
                    f"the {channel} webhook failed {attempt} time(s)"
                    + ("" if status is None else f", last with {status}"),
                    retry_after=requested,
                )
            self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes posted: compact JSON, UTF-8, keys in the order built."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds asked for by a `Retry-After` header (delay-seconds or HTTP date), None if absent
    or unreadable; never negative."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
