"""`eventfn serve` under real gunicorn: PORT, replies, readiness, graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from eventfn import Event
from eventfn._codec import encode_binary

ROOT = Path(__file__).resolve().parents[2]
EVENTFN = str(Path(sys.executable).with_name("eventfn"))

SLOW_FUNCTION = """
import pathlib, time
from eventfn import App
app = App("slow")

@app.on("eventfn.slow.requested.v1", idempotent=False)
def slow(event, ctx):
    pathlib.Path(event.data["marker"]).write_text("started")
    time.sleep(float(event.data["seconds"]))
    return None
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert process.poll() is None, "server exited early"
        try:
            response = urllib3.request(
                "GET", f"http://127.0.0.1:{port}/health/readiness", timeout=1.0, retries=False
            )
            if response.status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("server not ready in time")


def _start(function: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    full_env = {**os.environ, **env, "PORT": str(port)}
    process = subprocess.Popen([EVENTFN, "serve", function], env=full_env, cwd=ROOT)
    _wait_ready(port, process)
    return process, port


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "EVENTFN_STATE_DIR": str(tmp_path / "state"),
        "EVENTFN_FUNCTIONS_DIR": str(ROOT / "functions"),
        "EVENTFN_SCHEMAS_DIR": str(ROOT / "schemas"),
        "K_SINK": "http://127.0.0.1:9/unused",
        "EVENTFN_EMIT_RETRIES": "0",
    }


@pytest.fixture
def slow_env(tmp_path: Path, base_env: dict[str, str]) -> dict[str, str]:
    folder = tmp_path / "functions" / "slow"
    folder.mkdir(parents=True)
    (folder / "handler.py").write_text(SLOW_FUNCTION)
    return {**base_env, "EVENTFN_FUNCTIONS_DIR": str(tmp_path / "functions")}


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_serve_answers_on_port_from_env(base_env: dict[str, str], stop: list) -> None:  # type: ignore[type-arg]
    process, port = _start("echo", base_env)
    stop.append(process)
    event = Event.new("eventfn.echo.requested.v1", "/tests", {"message": "gunicorn"})
    headers, body = encode_binary(event)
    response = urllib3.request(
        "POST", f"http://127.0.0.1:{port}/", body=body, headers=headers, timeout=10.0
    )
    # the broker (K_SINK) is unreachable: the echo effect is stored, the emit is retryable
    assert response.status == 503
    assert json.loads(response.data)["type"] == "urn:eventfn:problem:dependency-unavailable"
    assert "retry-after" in response.headers


def test_sigterm_finishes_in_flight_event(
    tmp_path: Path,
    slow_env: dict[str, str],
    stop: list,  # type: ignore[type-arg]
) -> None:
    process, port = _start("slow", slow_env)
    stop.append(process)
    marker = tmp_path / "started"
    event = Event.new(
        "eventfn.slow.requested.v1", "/tests", {"marker": str(marker), "seconds": 1.5}
    )
    headers, body = encode_binary(event)
    result: dict[str, int] = {}

    def send() -> None:
        response = urllib3.request(
            "POST", f"http://127.0.0.1:{port}/", body=body, headers=headers, timeout=20.0
        )
        result["status"] = response.status

    sender = threading.Thread(target=send)
    sender.start()
    end = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.02)
    assert marker.exists(), "handler never started"
    process.send_signal(signal.SIGTERM)
    sender.join(timeout=20)
    assert result.get("status") == 204
    assert process.wait(timeout=20) == 0
