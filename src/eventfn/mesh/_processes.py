"""The function processes of `eventfn dev` as process groups: spawn, terminate, reap, kill.

Each function is an `eventfn serve` process (a gunicorn master and its workers) started in a
session of its own, so its pid is also the id of its process group: SIGTERM goes to the master
(gunicorn then stops its workers gracefully), SIGKILL to the whole group. `ProcessGroups` keeps
every process spawned and not reaped yet, the ones still starting included, so that a stop or a
last-resort kill reaches all of them. Spawning checks the stop flag under the same lock a stop
takes its snapshot under: once the flag is set, nothing new is spawned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

REAP_AFTER_KILL = 2.0  # how long a SIGKILLed process may take to be reaped (D state)
_LOCK_PATIENCE = 1.0  # how long a last-resort kill waits for a spawn in progress


class ProcessGroups:
    """The live function processes, each leading its own process group."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._lock = threading.Lock()  # orders spawning against the snapshots of stop and kill
        self._live: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(
        self, command: list[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes] | None:
        """Start `command` in a new session, output appended to `log`; None once stopping."""
        with self._lock, log.open("ab") as output:
            if self._stopping.is_set():
                return None
            process = subprocess.Popen(
                command,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the mesh, not functions
            )
            self._live[process.pid] = process
        return process

    def terminate_all(self) -> list[subprocess.Popen[bytes]]:
        """Set the stop flag and SIGTERM every live process; the processes signalled."""
        with self._lock:
            self._stopping.set()
            processes = list(self._live.values())
        for process in processes:
            terminate(process)
        return processes

    def reap(self, process: subprocess.Popen[bytes], timeout: float) -> bool:
        """Wait for `process`, SIGKILL its group after `timeout` s; True if it exited in time."""
        exited = wait_or_kill(process, timeout)
        if process.poll() is not None:
            self._live.pop(process.pid, None)
        return exited

    def ended(self, process: subprocess.Popen[bytes]) -> None:
        """`process` exited by itself: SIGTERM what is left of its group (its workers)."""
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        self._live.pop(process.pid, None)

    def kill_all(self) -> list[int]:
        """Last resort: set the stop flag, SIGKILL every group now and reap them (within
        `REAP_AFTER_KILL` s in all); the pids of processes that are still not reaped."""
        self._stopping.set()
        locked = self._lock.acquire(timeout=_LOCK_PATIENCE)  # never wait for a stuck spawn
        try:
            processes = list(self._live.values())
        finally:
            if locked:
                self._lock.release()
        for process in processes:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + REAP_AFTER_KILL
        left = []
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
                self._live.pop(process.pid, None)
            except subprocess.TimeoutExpired:
                left.append(process.pid)
        return left


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a process that still runs (gunicorn's graceful stop)."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)


def wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for `process`; after `timeout` s SIGKILL it and its workers. True if it exited."""
    try:
        process.wait(timeout=max(0.0, timeout))
        return True
    except subprocess.TimeoutExpired:
        pass
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the master and its workers
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=REAP_AFTER_KILL)  # a process in D state may take longer
    return False
