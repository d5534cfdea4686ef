"""Pid files of the function processes, so a mesh that died hard leaves no orphans behind.

`eventfn dev` stops its functions itself on Ctrl-C and SIGTERM. When it is killed (SIGKILL, a
crash), the processes it started run on in sessions of their own; the next `eventfn dev` on the
same state directory finds their pid files and sends SIGTERM to each leftover process group,
after checking that the pid still belongs to an `eventfn serve` bound to the recorded port (so
a reused pid is never signalled).
"""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from pathlib import Path


class PidFiles:
    """One `<service>.pid` file (`<pid> <port>`) per running function process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def record(self, service: str, pid: int, port: int) -> None:
        """Remember a started process."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path(service).write_text(f"{pid} {port}\n", encoding="ascii")

    def forget(self, service: str) -> None:
        """The process of `service` ended."""
        with suppress(FileNotFoundError):
            self._path(service).unlink()

    def clean_leftovers(self) -> list[tuple[str, int]]:
        """SIGTERM the process groups of a previous run that are still alive; (service, pid)."""
        stopped = []
        for path in sorted(self.directory.glob("*.pid")) if self.directory.is_dir() else []:
            try:
                pid_text, port_text = path.read_text(encoding="ascii").split()
                pid, port = int(pid_text), int(port_text)
            except (OSError, ValueError):
                pid, port = 0, 0
            if pid > 0 and _is_function_process(pid, port):
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)  # the gunicorn master leads its own group
                    stopped.append((path.stem, pid))
            path.unlink()
        return stopped

    def _path(self, service: str) -> Path:
        return self.directory / f"{service}.pid"


def _is_function_process(pid: int, port: int) -> bool:
    """Whether `pid` runs `eventfn serve ... --bind 127.0.0.1:<port>` (Linux /proc)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in arguments and f"127.0.0.1:{port}".encode() in arguments
