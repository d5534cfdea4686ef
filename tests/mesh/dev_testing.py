"""Helpers of the `eventfn dev` subprocess tests: the running mesh and its JSON records.

Loaded by the test modules with `spec_from_file_location` (pytest runs with
`--import-mode=importlib`, so test modules cannot import each other by name).
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
WAIT = 90.0


@dataclass
class DevProcess:
    """A running `eventfn dev --json` and every record it printed so far."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    records: list[dict[str, Any]] = field(default_factory=list)

    def next_record(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; output so far: {self.records}"
        try:
            record = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError(f"timed out; output so far: {self.records}") from None
        assert record is not None, f"eventfn dev exited early: {self.records}"
        self.records.append(record)
        return record

    def wait_for(self, kind: str, timeout: float = WAIT, **match: Any) -> dict[str, Any]:
        """The first record (seen before or next) of `kind` whose fields equal `match`."""
        for record in self.records:
            if record["kind"] == kind and all(record.get(k) == v for k, v in match.items()):
                return record
        deadline = time.monotonic() + timeout
        while True:
            record = self.next_record(deadline)
            if record["kind"] == kind and all(record.get(k) == v for k, v in match.items()):
                return record

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        while (record := self.lines.get(timeout=10)) is not None:
            self.records.append(record)
        return code


def reader(process: subprocess.Popen[str], lines: queue.Queue[dict[str, Any] | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip():
            lines.put(json.loads(line))
    lines.put(None)


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTFN, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def running_dev(tmp_path: Path, manifests: Path) -> Iterator[DevProcess]:
    """`eventfn dev --json` on `manifests`; SIGTERM (then SIGKILL) at the end if still running."""
    state = tmp_path / "state"
    command = [
        EVENTFN, "dev", "--manifests", str(manifests),
        "--functions-dir", str(ROOT / "functions"),
        "--functions-dir", str(DATA / "functions"),
        "--state-dir", str(state), "--port", "0", "--idle-seconds", "120", "--json",
    ]  # fmt: skip
    stderr = (tmp_path / "dev.stderr").open("w")
    env = {**os.environ, "EVENTFN_TRACING": "off"}
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
    )
    handle = DevProcess(process, state)
    threading.Thread(target=reader, args=(process, handle.lines), daemon=True).start()
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # graceful: the mesh stops its functions
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr.close()
