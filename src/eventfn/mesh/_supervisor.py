"""The process supervisor of `eventfn dev`: one `eventfn serve` process per Knative Service.

Scaling follows Knative Serving on one machine: a Service with min-scale >= 1 starts at boot and
is restarted when it dies; a Service with min-scale 0 starts on its first request (`resolve`
blocks like the activator until the process answers its readiness probe) and is stopped with
SIGTERM once it has not been resolved for the idle period. Each cold start (spawn -> ready) is
measured and reported.

Idle time counts from the last `resolve`, which the broker calls before every delivery attempt.
A request still running when the idle period ends gets gunicorn's graceful shutdown (SIGTERM,
then `EVENTFN_GRACEFUL_TIMEOUT_SECONDS`), which is what a Knative scale-down does as well.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

from eventfn._logging import get_logger
from eventfn.mesh._dev_pidfiles import PidFiles

READINESS_PATH = "/health/readiness"
LOOPBACK = "127.0.0.1"
DEFAULT_IDLE_SECONDS = 60.0
DEFAULT_READY_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 30.0
_POLL_FIRST = 0.01
_POLL_MAX = 0.1
_LAUNCH_ATTEMPTS = 2

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
        self._stopping = threading.Event()
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
            self.stop()
            raise errors[0]
        if reap:
            self._reaper = threading.Thread(target=self._reap_loop, name="reaper", daemon=True)
            self._reaper.start()

    def stop(self) -> None:
        """SIGTERM every process at once, wait for graceful exits, kill what remains."""
        self._stopping.set()
        if self._reaper is not None:
            self._reaper.join(timeout=self.stop_timeout)
        running = [slot for slot in self._slots.values() if slot.process is not None]
        for slot in running:
            _terminate(slot.process)
        deadline = time.monotonic() + self.stop_timeout
        for slot in running:
            self._retire(slot, max(0.1, deadline - time.monotonic()), "shutdown")
        self._http.clear()

    def kill_all(self) -> None:
        """Last resort when a graceful stop hangs: SIGKILL every function's process group."""
        self._stopping.set()
        for slot in list(self._slots.values()):
            process = slot.process
            if process is None:
                continue
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            slot.process = None
            self._forget(slot.spec.service)
            self._notify_stop(slot.spec.service, "shutdown")

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
                    _terminate(slot.process)
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
                if slot.alive():
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
            if outcome == "ready":
                seconds = time.monotonic() - started
                slot.process, slot.port = process, port
                slot.last_used = self._clock()
                cold = ColdStart(slot.spec.service, seconds, process.pid, time.time(), reason)
                self._cold_starts.append(cold)
                if self._on_cold_start is not None:
                    self._on_cold_start(cold)
                return
            _terminate(process)
            _wait_or_kill(process, 5.0)
            self._forget(slot.spec.service)
            if outcome != "exited" or attempt == _LAUNCH_ATTEMPTS:
                break
        raise ServiceUnavailable(
            f"function {slot.spec.service} did not become ready "
            f"(see {self.log_path(slot.spec.service)})"
        )

    def _spawn(self, spec: LaunchSpec, port: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **spec.env, "PORT": str(port)}
        with self.log_path(spec.service).open("ab") as log:
            process = subprocess.Popen(
                self._command(spec.function, f"{LOOPBACK}:{port}"),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the mesh, not functions
            )
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
        _wait_or_kill(process, timeout)
        slot.process = None
        self._forget(slot.spec.service)
        self._notify_stop(slot.spec.service, reason)

    def _reap_exited(self, slot: _Slot) -> None:
        if slot.process is not None:
            code = slot.process.poll()
            _log.warning("function %s exited with status %s", slot.spec.service, code)
            with suppress(ProcessLookupError, PermissionError):  # workers of a killed master
                os.killpg(slot.process.pid, signal.SIGTERM)
            slot.process = None
            self._forget(slot.spec.service)
            self._notify_stop(slot.spec.service, f"exited ({code})")

    def _forget(self, service: str) -> None:
        if self._pidfiles is not None:
            self._pidfiles.forget(service)

    def _notify_stop(self, service: str, reason: str) -> None:
        if self._on_stop is not None:
            self._on_stop(service, reason)


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)


def _wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the master and its workers
        process.wait()
