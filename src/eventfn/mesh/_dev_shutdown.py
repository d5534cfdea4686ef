"""Bounded shutdown of `eventfn dev`: signals through a wake-up pipe, step budgets, a watchdog.

Why the signal handler does not simply set a `threading.Event`: CPython runs Python-level
handlers only in the main thread, between bytecodes. A main thread blocked in `Event.wait()` (a
lock acquire) notices the signal only if it arrives while the thread already sleeps; one that
lands just before (after the last check, before the futex wait: a window that widens on a
loaded machine) only trips a C-level flag nobody looks at again, and the mesh waits forever.
And `Event.set()` inside the handler deadlocks if the signal interrupts the main thread while
it holds that Event's lock. So the C-level handler writes the signal number to a pipe
(`signal.set_wakeup_fd`) and a listener thread acts on it; the main thread is never relied on.

Bound: after the first SIGINT/SIGTERM, or once a stop begins without one (`--exit` after the
demo, a failed start), `eventfn dev` exits within SHUTDOWN_SECONDS (15 s), in whatever phase
it is:
- during start-up the step running is finished (a function's cold start is given up at once),
  the remaining steps are skipped, and the exit status is 128 + the signal number;
- each stop step has a budget (`StopBudget`, 12.5 s in all); a step over its budget is logged
  with its name, and steps that could block without end run detached and are left behind;
- if the process still runs at SHUTDOWN_SECONDS, the watchdog writes the stack of every thread
  to stderr (so the hang can be diagnosed), kills every function process group, logs the step
  it was in and exits with status 1; a second signal does so at once (status 128 + that
  signal's number), unless it comes within REPEAT_WINDOW (1 s) of the first: that is the same
  stop asked twice (`make run` forwards the SIGTERM its process group already received).
  Writing and killing have a few seconds each (`_FORCE_STEP_SECONDS`): a stderr nobody reads
  must not keep the process alive either.
The watchdog runs in any thread; signals are only installed when `eventfn dev` runs in the main
thread (the only one Python delivers them to).
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from types import FrameType, TracebackType

from eventfn._logging import get_logger

REPEAT_WINDOW = 1.0  # a second signal sooner than this after the first is the same stop
SHUTDOWN_SECONDS = 15.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)
FORCED_EXIT = 1
_LISTENER_JOIN = 1.0
_FORCE_STEP_SECONDS = 4.0  # for the stack dump, and again for killing the functions

_log = get_logger("mesh.dev")


@dataclass(frozen=True)
class StopBudget:
    """Seconds each stop step may take (in stop order); 12.5 s in all by default.

    `deliveries` may overrun by the 0.5 s the broker still waits after cutting connections,
    and `functions` by the wait for killed processes to be reaped (normally milliseconds).
    """

    relay: float = 1.5  # the bucket-notification long poll
    deliveries: float = 3.0  # in-flight deliveries finish, then their connections are cut
    functions: float = 5.0  # SIGTERM (gunicorn's graceful stop), then SIGKILL of the group
    ingress: float = 1.0  # the broker's HTTP server
    capture: float = 0.5  # the Teams/Slack webhook capture's HTTP server
    store: float = 0.5  # the broker's SQLite database
    s3: float = 1.0  # the embedded moto server


def run_step(name: str, budget: float, action: Callable[[], object], *, detach: bool) -> None:
    """Run one stop step, logging an error or a step over its budget; never raises.

    `detach` runs the action in a daemon thread and stops waiting for it after `budget`
    seconds: for steps that wait on something outside our control without a timeout.
    """
    started = time.monotonic()
    if detach:
        worker = threading.Thread(
            target=_logged, args=(name, action), name=f"mesh-stop-{name}", daemon=True
        )
        worker.start()
        worker.join(budget)
        if worker.is_alive():
            _log.warning(
                "stopping %s: still busy after its %.1f s budget; left behind", name, budget
            )
            return
    else:
        _logged(name, action)
    elapsed = time.monotonic() - started
    if elapsed > budget:
        _log.warning("stopping %s took %.1f s, over its %.1f s budget", name, elapsed, budget)


def _logged(name: str, action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # one failing step must not keep the others from running
        _log.exception("stopping %s failed", name)


class ShutdownSignals:
    """SIGINT/SIGTERM (main thread only) and the shutdown watchdog, for a `with` block.

    The first signal calls `on_signal(signum)` from a listener thread and starts the clock, as
    `stop_begins()` does; a second signal, or `bound` seconds on that clock without
    `finished()`, dumps every thread's stack, calls `on_force(reason)` and ends the process.
    """

    def __init__(
        self,
        on_signal: Callable[[int], None],
        on_force: Callable[[str], None],
        bound: float = SHUTDOWN_SECONDS,
    ) -> None:
        self._on_signal = on_signal
        self._on_force = on_force
        self._bound = bound
        self.signum: int | None = None
        self._first_signal_at = 0.0
        self._since: float | None = None  # when the stop began: the watchdog's clock
        self._done = threading.Event()
        self._pipe: tuple[int, int] | None = None
        self._previous_fd = -1
        self._previous: dict[int, object] = {}
        self._listener: threading.Thread | None = None

    def __enter__(self) -> ShutdownSignals:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)  # the C-level handler must never block
        self._pipe = (read_end, write_end)
        if threading.current_thread() is threading.main_thread():  # signals only reach it
            self._previous = {sig: signal.signal(sig, _wake_only) for sig in SIGNALS}
            self._previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._listener = threading.Thread(target=self._listen, name="mesh-signals", daemon=True)
        self._listener.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finished()
        if self._pipe is None:
            return
        if self._previous:
            signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(sig, handler)  # type: ignore[arg-type]
        read_end, write_end = self._pipe
        _poke(write_end)
        if self._listener is not None:
            self._listener.join(_LISTENER_JOIN)
        os.close(write_end)
        os.close(read_end)

    def stop_begins(self) -> None:
        """A stop begins (with or without a signal): it must end within the bound from now."""
        if self._since is None:
            self._since = time.monotonic()
            if self._pipe is not None:
                _poke(self._pipe[1])  # the listener starts waiting with a timeout

    def finished(self) -> None:
        """The mesh has stopped: the watchdog stands down."""
        self._done.set()
        if self._pipe is not None:
            _poke(self._pipe[1])

    def _listen(self) -> None:
        assert self._pipe is not None
        read_end = self._pipe[0]
        while not self._done.is_set():
            since = self._since
            wait = None if since is None else max(0.0, since + self._bound - time.monotonic())
            readable, _, _ = select.select([read_end], [], [], wait)
            if self._done.is_set():
                return
            if not readable:
                self._force(f"the shutdown took longer than {self._bound:g} s", FORCED_EXIT)
                return
            for signum in os.read(read_end, 64):
                if signum not in SIGNALS:
                    continue  # a poke, or another signal with a Python handler
                if self.signum is None:
                    self.signum, self._first_signal_at = signum, time.monotonic()
                    self.stop_begins()
                    self._on_signal(signum)
                elif time.monotonic() - self._first_signal_at < REPEAT_WINDOW:
                    continue  # the same stop, asked twice (a parent forwarding it)
                else:
                    self._force(f"a second {signal.Signals(signum).name}", 128 + signum)
                    return

    def _force(self, reason: str, code: int) -> None:
        try:
            _within(_FORCE_STEP_SECONDS, _dump_stacks, reason)
            _within(_FORCE_STEP_SECONDS, self._on_force, reason)
        finally:
            os._exit(code)


def _dump_stacks(reason: str) -> None:
    sys.stderr.write(f"eventfn dev: {reason}; the stack of every thread:\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


def _within(seconds: float, action: Callable[[str], None], reason: str) -> None:
    """Run `action(reason)` in a daemon thread, waiting for it `seconds` at most."""
    worker = threading.Thread(target=action, args=(reason,), name="mesh-force", daemon=True)
    worker.start()
    worker.join(seconds)


def _wake_only(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the wake-up pipe already told the listener."""


def _poke(fd: int) -> None:
    with suppress(OSError):  # full (the listener is awake anyway) or closed
        os.write(fd, b"\0")
