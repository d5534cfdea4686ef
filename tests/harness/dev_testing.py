"""`eventfn dev --json` as a user runs it, for the end-to-end tests: a subprocess on given
manifests and functions, its JSON records read as they come, stopped gracefully at the end.

Importable by name: tests/conftest.py puts this directory on sys.path.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
WAIT = 120.0  # generous bound for a record the mesh is expected to print; never a sleep
STOP_SECONDS = 60.0  # SIGTERM's grace before SIGKILL
DRAIN_SECONDS = 10.0  # how long the output may still come once the process has exited


@dataclass
class DevProcess:
    """A running `eventfn dev --json` and every record it printed so far."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    records: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False  # its output ended (the reader put None)

    def start_reader(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def _take(self, timeout: float) -> dict[str, Any] | None:
        """The next record (also kept in `records`); None once the output has ended."""
        record = self.lines.get(timeout=timeout)
        if record is None:
            self.ended = True
        else:
            self.records.append(record)
        return record

    def all(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        """The records seen so far of `kind` whose fields equal `match`."""
        return [
            record
            for record in self.records
            if record["kind"] == kind and all(record.get(k) == v for k, v in match.items())
        ]

    def wait_count(
        self, count: int, kind: str, timeout: float = WAIT, **match: Any
    ) -> list[dict[str, Any]]:
        """The first `count` records of `kind` matching `match`, waiting for them to appear."""
        deadline = time.monotonic() + timeout
        while len(found := self.all(kind, **match)) < count:
            wanted = f"{count} {kind} {match}"
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {wanted}: {self.records}"
            assert not self.ended, f"eventfn dev exited early: {self.records}"
            try:
                record = self._take(remaining)
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {wanted}: {self.records}") from None
            assert record is not None, f"eventfn dev exited early: {self.records}"
        return found[:count]

    def wait_for(self, kind: str, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """The first record (seen before or next) of `kind` whose fields equal `match`."""
        return self.wait_count(1, kind, timeout, **match)[0]

    def read_to_end(self) -> None:
        """Keep the rest of the output of an exited process in `records`."""
        while not self.ended:
            self._take(DRAIN_SECONDS)

    def stop(self) -> int:
        """SIGTERM (graceful: the mesh stops its functions), SIGKILL if it does not end in time;
        then the rest of its output. Its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.read_to_end()
        return self.process.returncode

    def info(self) -> dict[str, Any]:
        """dev.json: what the running mesh announces (brokers, its embedded S3)."""
        return dict(json.loads((self.state_dir / "dev.json").read_text(encoding="utf-8")))

    def s3(self) -> tuple[Any, str]:
        """A client of the mesh's embedded S3 and its data bucket."""
        import boto3

        info = self.info()["s3"]
        client = boto3.client(
            "s3",
            endpoint_url=info["endpoint_url"],
            region_name=info["region"],
            aws_access_key_id=info["access_key"],
            aws_secret_access_key=info["secret_key"],
        )
        return client, info["bucket"]

    def service_url(self, service: str) -> str:
        """The loopback URL of a running function, from the pid file the supervisor writes."""
        _, port = (self.state_dir / "run" / f"{service}.pid").read_text().split()
        return f"http://127.0.0.1:{port}"


def clean_env(drop: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """This process's environment without EVENTFN_* (nor names starting with `drop`), tracing
    off, plus `extra`."""
    prefixes = ("EVENTFN_", *drop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, "EVENTFN_TRACING": "off", **extra}


def run_eventfn(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`eventfn ARGS` from the repository root, its output captured."""
    return subprocess.run(
        [EVENTFN, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        check=False,
    )


@contextmanager
def running_dev(
    workdir: Path,
    manifests: Path,
    *,
    functions_dirs: Sequence[Path] = (),
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    idle_seconds: int = 120,
) -> Iterator[DevProcess]:
    """`eventfn dev --json` on `manifests` with the repository's functions (and
    `functions_dirs`), its state in `workdir`/state and its stderr in `workdir`/dev.stderr;
    stopped at the end if still running. `env`: its environment (default: `clean_env()`)."""
    state = workdir / "state"
    extra_dirs = [arg for path in functions_dirs for arg in ("--functions-dir", str(path))]
    command = [
        EVENTFN, "dev", "--manifests", str(manifests),
        "--functions-dir", str(ROOT / "functions"), *extra_dirs,
        "--state-dir", str(state), "--port", "0", "--idle-seconds", str(idle_seconds), "--json",
        *extra_args,
    ]  # fmt: skip
    with (workdir / "dev.stderr").open("w") as stderr:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=clean_env() if env is None else dict(env),
        )
        dev = DevProcess(process, state)
        dev.start_reader()
        try:
            yield dev
        finally:
            dev.stop()
