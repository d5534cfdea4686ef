"""Server processes of the benchmark: spawn on a free loopback port, wait, measure, stop.

Every server runs in its own session (process group), so stopping it stops its workers too;
only processes this module started are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.events import post_event

_POLL_S = 0.005
_STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class Target:
    """How to start one server; `argv` may contain `{port}`, `env` replaces the environment."""

    name: str
    description: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    notes: tuple[str, ...] = ()
    # called before every spawn (e.g. a fresh state directory for a cold start)
    prepare: Callable[[], None] | None = field(default=None, compare=False)


@dataclass
class Server:
    """A running server of one target."""

    target: Target
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(target: Target, log_dir: Path, tag: str) -> tuple[Server, float]:
    """Start `target` on a free port; (server, perf_counter at spawn)."""
    if target.prepare is not None:
        target.prepare()
    port = free_port()
    argv = [part.format(port=port) for part in target.argv]
    env = {key: value.format(port=port) for key, value in target.env.items()}
    log = log_dir / f"{target.name}-{tag}.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=target.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(target, port, process, log), started


def wait_first_2xx(server: Server, started: float, deadline_s: float, id_prefix: str) -> float:
    """Seconds from `started` until a real event got a 2xx; RuntimeError on exit or timeout."""
    end = started + deadline_s
    attempt = 0
    while time.perf_counter() < end:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.target.name} exited early:\n{log_tail(server.log)}")
        attempt += 1
        try:
            status = post_event(server.port, f"{id_prefix}-{attempt}", timeout=deadline_s)
        except OSError:
            time.sleep(_POLL_S)
            continue
        if 200 <= status < 300:
            return time.perf_counter() - started
        time.sleep(_POLL_S)
    raise RuntimeError(
        f"{server.target.name}: no 2xx within {deadline_s:.0f} s\n{log_tail(server.log)}"
    )


def stop(server: Server) -> None:
    """SIGTERM the server's process group, SIGKILL it after a grace period.

    The leader is only reaped after the last group signal, so its pid (the group id) cannot
    have been reused by then.
    """
    process = server.process
    if process.returncode is not None:
        return
    _signal_group(server.pid, signal.SIGTERM)
    if not _exited(server.pid, _STOP_GRACE_S):
        _signal_group(server.pid, signal.SIGKILL)
        _exited(server.pid, _STOP_GRACE_S)
    _signal_group(server.pid, signal.SIGKILL)  # workers left behind by their master
    process.wait(timeout=_STOP_GRACE_S)


def _exited(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` s for `pid` to exit, without reaping it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.02)
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines of a server log."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- memory ------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is parenthesised and may contain spaces: split after it
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _field_kib(path: str, name: str) -> int:
    try:
        text = Path(path).read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(_children(current))
    return found


def tree_rss_mib(pid: int) -> float:
    """VmRSS of `pid` and all its descendants, in MiB (shared pages count in each process)."""
    return sum(_field_kib(f"/proc/{p}/status", "VmRSS:") for p in _tree(pid)) / 1024


def tree_pss_mib(pid: int) -> float:
    """PSS of `pid` and its descendants, in MiB: pages shared after fork are counted once."""
    return sum(_field_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in _tree(pid)) / 1024
