"""The process supervisor of `eventfn dev`: one `eventfn serve` process per Knative Service.

Scaling follows Knative Serving on one machine: a Service with min-scale >= 1 starts at boot and
is restarted when it dies; a Service with min-scale 0 starts on its first request (`resolve`
blocks like the activator until the process answers its readiness probe) and is stopped with
SIGTERM once it has not been resolved for the idle period. Each cold start (spawn -> ready) is
measured and reported.

Idle time counts from the last `resolve`, which the broker calls before every delivery attempt.
A request still running when the idle period ends gets gunicorn's graceful shutdown (SIGTERM,
then `EVENTFN_GRACEFUL_TIMEOUT_SECONDS`), which is what a Knative scale-down does as well.

Stopping is bounded: `stop(timeout)` SIGTERMs every live process (starting ones included) and
SIGKILLs the groups left after `timeout`; `kill_all()` SIGKILLs them at once, the last resort
when a stop hangs. Once the stop flag is set (by either, or through the `stopping` Event an
owner shares) nothing is spawned and a cold start in progress is given up. The process groups
themselves are handled in `_processes`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

from eventfn._logging import get_logger
from eventfn.mesh._dev_pidfiles import PidFiles
from eventfn.mesh._processes import ProcessGroups, terminate

READINESS_PATH = "/health/readiness"
LOOPBACK = "127.0.0.1"
DEFAULT_IDLE_SECONDS = 60.0
DEFAULT_READY_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 30.0
_POLL_FIRST = 0.01
_POLL_MAX = 0.1
_LAUNCH_ATTEMPTS = 2
_FAILED_START_GRACE = 5.0
_REAPER_JOIN = 1.0

_log = get_logger("mesh.supervisor")

Clock = Callable[[], float]
Command = Callable[[str, str], list[str]]


class ServiceUnavailable(ConnectionError):
    """A function cannot be resolved: unknown, failed to start, or the mesh is stopping."""


@dataclass(frozen=True)
class LaunchSpec:
    """How to run one Knative Service locally: its function folder and complete env."""

    service: str
    function: str
    env: Mapping[str, str]
    min_scale: int = 0


@dataclass(frozen=True)
class ColdStart:
    """One start of a function process: spawn until the first successful readiness probe."""

    service: str
    seconds: float
    pid: int
    at: float
    reason: str  # "boot" (min-scale >= 1), "request" (scale from zero) or "restart" (it died)


@dataclass
class _Slot:
    spec: LaunchSpec
    lock: threading.Lock = field(default_factory=threading.Lock)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    last_used: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def default_command(function: str, bind: str) -> list[str]:
    """`<venv>/bin/eventfn serve <function> --bind <bind>` (or `python -m eventfn.cli`)."""
    script = Path(sys.executable).with_name("eventfn")
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "eventfn.cli"]
    return [*prefix, "serve", function, "--bind", bind]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class Supervisor:
    """Starts, probes, scales to zero and stops the function processes of the mesh."""

    def __init__(
        self,
        launches: Mapping[str, LaunchSpec],
        *,
        log_dir: Path,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        clock: Clock = time.monotonic,
        command: Command = default_command,
        on_cold_start: Callable[[ColdStart], None] | None = None,
        on_stop: Callable[[str, str], None] | None = None,
        pidfiles: PidFiles | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self._slots = {name: _Slot(spec) for name, spec in launches.items()}
        self.log_dir = log_dir
        self.idle_seconds = idle_seconds
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._clock = clock
        self._command = command
        self._on_cold_start = on_cold_start
        self._on_stop = on_stop
        self._pidfiles = pidfiles
        self._cold_starts: list[ColdStart] = []
        self._stopping = stopping or threading.Event()  # shared with the owner, if it gives one
        self._groups = ProcessGroups(self._stopping)
        self._reaper: threading.Thread | None = None
        self._http = urllib3.PoolManager(maxsize=4, retries=False)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, reap: bool = True) -> None:
        """Start every min-scale >= 1 function (in parallel) and, if `reap`, the idle reaper."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._pidfiles is not None:
            for service, pid in self._pidfiles.clean_leftovers():
                self._notify_stop(service, f"leftover pid {pid} of an earlier run")
        warm = [slot for slot in self._slots.values() if slot.spec.min_scale >= 1]
        errors: list[ServiceUnavailable] = []

        def boot(slot: _Slot) -> None:
            try:
                with slot.lock:
                    self._launch(slot, "boot")
            except ServiceUnavailable as error:
                errors.append(error)

        threads = [threading.Thread(target=boot, args=(slot,), daemon=True) for slot in warm]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            if not self._stopping.is_set():  # an interrupted start is stopped by its owner
                self.stop()
            raise errors[0]
        if reap:
            self._reaper = threading.Thread(target=self._reap_loop, name="reaper", daemon=True)
            self._reaper.start()

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM every process at once, SIGKILL what is left after `timeout` s (default
        `stop_timeout`); idempotent."""
        budget = self.stop_timeout if timeout is None else timeout
        processes = self._groups.terminate_all()
        deadline = time.monotonic() + budget
        reap = self._groups.reap
        killed = [p.pid for p in processes if not reap(p, deadline - time.monotonic())]
        if killed:
            _log.warning("function processes %s ignored SIGTERM for %.1f s: killed", killed, budget)
        for slot in self._slots.values():
            ended = slot.process
            if ended is not None and ended.poll() is None:
                continue  # survived SIGKILL: its pid file stays for the next run to clean up
            self._forget(slot.spec.service)
            if ended is not None:
                slot.process = None
                reason = "killed" if ended.pid in killed else "shutdown"
                self._notify_stop(slot.spec.service, reason)
        if self._reaper is not None:
            self._reaper.join(_REAPER_JOIN)
        self._http.clear()

    def kill_all(self) -> None:
        """Last resort when a graceful stop hangs: SIGKILL every function's process group
        (starting ones too), reap them within a few seconds and forget their pid files.

        Safe from any thread while another is stuck in `stop`; it calls no callbacks (the
        thread that hangs may hold the printer).
        """
        left = self._groups.kill_all()
        if left:  # their pid files stay: the next run on this state directory ends them
            _log.error("function processes %s survived SIGKILL", left)
            return
        for service in self._slots:
            self._forget(service)

    # -- the broker's Resolver ---------------------------------------------------------------

    def resolve(self, service: str) -> str:
        """The base URL of `service`, starting its process first when it is not running."""
        slot = self._slots.get(service)
        if slot is None:
            known = ", ".join(sorted(self._slots)) or "none"
            raise ServiceUnavailable(f"no function serves {service!r} (known: {known})")
        if self._stopping.is_set():
            raise ServiceUnavailable("the mesh is stopping")
        with slot.lock:
            if self._stopping.is_set():  # it may have been set while this thread waited
                raise ServiceUnavailable("the mesh is stopping")
            if not slot.alive():
                reason = "request" if slot.process is None else "restart"
                self._reap_exited(slot)
                self._launch(slot, reason)
            slot.last_used = self._clock()
            return slot.url

    # -- scale to zero -----------------------------------------------------------------------

    def reap_idle(self) -> list[str]:
        """Stop every min-scale 0 function idle for `idle_seconds`; returns the names stopped."""
        stopped = []
        for name, slot in self._slots.items():
            if slot.spec.min_scale >= 1 or not slot.lock.acquire(blocking=False):
                continue
            try:
                idle = self._clock() - slot.last_used
                if slot.process is not None and idle >= self.idle_seconds:
                    terminate(slot.process)
                    self._retire(slot, self.stop_timeout, "idle")
                    stopped.append(name)
            finally:
                slot.lock.release()
        return stopped

    def revive(self) -> list[str]:
        """Restart min-scale >= 1 functions whose process died; returns their names."""
        revived = []
        for name, slot in self._slots.items():
            if slot.spec.min_scale < 1 or slot.alive() or self._stopping.is_set():
                continue
            with slot.lock:
                if slot.alive() or self._stopping.is_set():
                    continue
                self._reap_exited(slot)
                try:
                    self._launch(slot, "restart")
                    revived.append(name)
                except ServiceUnavailable:
                    _log.warning("function %s could not be restarted", name)
        return revived

    def _reap_loop(self) -> None:
        interval = max(0.05, min(1.0, self.idle_seconds / 4))
        while not self._stopping.wait(interval):
            self.reap_idle()
            self.revive()

    # -- inspection --------------------------------------------------------------------------

    @property
    def cold_starts(self) -> list[ColdStart]:
        """Every process start so far, in order."""
        return list(self._cold_starts)

    def running(self) -> dict[str, int]:
        """Service name -> pid of the processes alive now."""
        return {
            name: slot.process.pid
            for name, slot in self._slots.items()
            if slot.process is not None and slot.alive()
        }

    def log_path(self, service: str) -> Path:
        """Where the stdout and stderr of `service` go."""
        return self.log_dir / f"{service}.log"

    # -- processes ---------------------------------------------------------------------------

    def _launch(self, slot: _Slot, reason: str) -> None:
        """Spawn the process and wait for readiness; the caller holds `slot.lock`."""
        for attempt in range(1, _LAUNCH_ATTEMPTS + 1):
            started = time.monotonic()
            port = free_port()
            process = self._spawn(slot.spec, port)
            outcome = self._wait_ready(process, port)
            if outcome == "ready" and not self._stopping.is_set():
                seconds = time.monotonic() - started
                slot.process, slot.port = process, port
                slot.last_used = self._clock()
                cold = ColdStart(slot.spec.service, seconds, process.pid, time.time(), reason)
                self._cold_starts.append(cold)
                if self._on_cold_start is not None:
                    self._on_cold_start(cold)
                return
            terminate(process)
            if self._stopping.is_set():  # stop() waits for it (and kills it) within its budget
                raise ServiceUnavailable(f"the mesh is stopping: {slot.spec.service} not started")
            self._groups.reap(process, _FAILED_START_GRACE)
            self._forget(slot.spec.service)
            if outcome != "exited" or attempt == _LAUNCH_ATTEMPTS:
                break
        raise ServiceUnavailable(
            f"function {slot.spec.service} did not become ready "
            f"(see {self.log_path(slot.spec.service)})"
        )

    def _spawn(self, spec: LaunchSpec, port: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **spec.env, "PORT": str(port)}
        command = self._command(spec.function, f"{LOOPBACK}:{port}")
        process = self._groups.spawn(command, env, self.log_path(spec.service))
        if process is None:
            raise ServiceUnavailable("the mesh is stopping")
        if self._pidfiles is not None:
            self._pidfiles.record(spec.service, process.pid, port)
        return process

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> str:
        """ "ready", "exited" (the process ended) or "timeout"."""
        url = f"http://{LOOPBACK}:{port}{READINESS_PATH}"
        deadline = time.monotonic() + self.ready_timeout
        pause = _POLL_FIRST
        while time.monotonic() < deadline and not self._stopping.is_set():
            try:
                response = self._http.request(
                    "GET", url, timeout=1.0, headers={"connection": "close"}
                )
                if response.status == 200:
                    return "ready"
            except urllib3.exceptions.HTTPError:
                pass
            try:
                process.wait(timeout=pause)  # the pause between probes ends early on exit
                return "exited"
            except subprocess.TimeoutExpired:
                pause = min(_POLL_MAX, pause * 2)
        return "timeout"

    def _retire(self, slot: _Slot, timeout: float, reason: str) -> None:
        process = slot.process
        if process is None:
            return
        self._groups.reap(process, timeout)
        slot.process = None
        self._forget(slot.spec.service)
        self._notify_stop(slot.spec.service, reason)

    def _reap_exited(self, slot: _Slot) -> None:
        if slot.process is not None:
            code = slot.process.poll()
            _log.warning("function %s exited with status %s", slot.spec.service, code)
            self._groups.ended(slot.process)  # its workers, if the master was killed
            slot.process = None
            self._forget(slot.spec.service)
            self._notify_stop(slot.spec.service, f"exited ({code})")

    def _forget(self, service: str) -> None:
        if self._pidfiles is not None:
            self._pidfiles.forget(service)

    def _notify_stop(self, service: str, reason: str) -> None:
        if self._on_stop is not None:
            self._on_stop(service, reason)
