"""Retry and Catch of the Amazon States Language: error matching and backoff timing.

Each retrier of a state counts its own attempts. The n-th retry (n = 1, 2, …) of a retrier waits
`IntervalSeconds * BackoffRate ** (n - 1)`, capped at `MaxDelaySeconds`; with
`JitterStrategy: FULL` the wait is drawn uniformly from [0, that value].
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

STATES_ALL: Final = "States.ALL"
TASK_FAILED: Final = "States.TaskFailed"
TIMEOUT: Final = "States.Timeout"
RUNTIME: Final = "States.Runtime"
PERMISSIONS: Final = "States.Permissions"

DEFAULT_INTERVAL: Final = 1.0
DEFAULT_MAX_ATTEMPTS: Final = 3
DEFAULT_BACKOFF: Final = 2.0


@dataclass(frozen=True)
class StateError:
    """An error raised inside a state: its ASL name, a cause, and whether retrying may help."""

    error: str
    cause: str = ""
    retryable: bool = True

    def as_output(self) -> dict[str, str]:
        """What Catch puts at its ResultPath."""
        return {"Error": self.error, "Cause": self.cause}


def matches(error_equals: Sequence[str], error: str) -> bool:
    """True when a retrier's or catcher's ErrorEquals covers `error`.

    `States.ALL` covers everything but `States.Runtime`; `States.TaskFailed` covers every error
    except `States.Timeout` and `States.Runtime`.
    """
    if error in error_equals:
        return True
    if error == RUNTIME:
        return False
    if STATES_ALL in error_equals:
        return True
    return TASK_FAILED in error_equals and error != TIMEOUT


def backoff_delay(
    retrier: dict[str, Any], retry_number: int, uniform: Callable[[float, float], float]
) -> float:
    """Seconds to wait before retry number `retry_number` (1-based) of this retrier."""
    interval = float(retrier.get("IntervalSeconds", DEFAULT_INTERVAL))
    rate = float(retrier.get("BackoffRate", DEFAULT_BACKOFF))
    delay = interval * rate ** (retry_number - 1)
    cap = retrier.get("MaxDelaySeconds")
    if cap is not None:
        delay = min(delay, float(cap))
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay = uniform(0.0, delay)
    return delay


def next_retry(
    retriers: Sequence[dict[str, Any]],
    counts: Sequence[int],
    failure: StateError,
    uniform: Callable[[float, float], float] = random.uniform,
) -> tuple[int, float] | None:
    """(index of the retrier to use, delay) or None when the error is not to be retried.

    `counts[i]` is how many retries retrier i has made; the first matching retrier decides,
    and when it is exhausted the error goes to Catch.
    """
    if not failure.retryable:
        return None
    for index, retrier in enumerate(retriers):
        if not matches(retrier["ErrorEquals"], failure.error):
            continue
        done = counts[index] if index < len(counts) else 0
        if done >= int(retrier.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS)):
            return None
        return index, backoff_delay(retrier, done + 1, uniform)
    return None


def find_catcher(catchers: Sequence[dict[str, Any]], failure: StateError) -> dict[str, Any] | None:
    """The first catcher whose ErrorEquals covers the error."""
    for catcher in catchers:
        if matches(catcher["ErrorEquals"], failure.error):
            return catcher
    return None
