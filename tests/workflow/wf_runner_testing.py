"""Shared by the tests of the in-memory runner: a clock whose sleeps are recorded, and a task
that fails a given number of times before it succeeds.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

from typing import Any

from eventfn._wf_retry import StateError
from eventfn._wf_steps import TaskFailure


class Clock:
    """A controllable clock: `sleep` advances it and records the waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


def flaky(failures: int, error: str = "States.TaskFailed", retryable: bool = True) -> Any:
    calls: list[str] = []

    def invoke(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
        calls.append(key)
        if len(calls) <= failures:
            raise TaskFailure(StateError(error, "boom", retryable))
        return {"ok": payload}

    invoke.calls = calls  # type: ignore[attr-defined]
    return invoke
