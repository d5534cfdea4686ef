"""`eventfn dev` stops within its bound whatever it is doing when SIGTERM arrives.

The `hang` function (tests/mesh/data/functions/hang) never finishes its start-up and ignores
SIGTERM, so the mesh must give up the start (at boot or on a cold start) and kill its process
group; the test checks that both of its processes are gone. A stop step that hangs is left to
the watchdog, which dumps every thread's stack and ends the process (the last tests, on
`ShutdownSignals` in a child process).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import urllib3
from dev_testing import WAIT, DevProcess, run_eventfn, running_dev

from eventfn.mesh._dev_shutdown import FORCED_EXIT, REPEAT_WINDOW, SHUTDOWN_SECONDS

DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.timeout(240)


HANG_MANIFESTS = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: default, namespace: hang-test}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: hang, namespace: hang-test}}
spec:
  template:
    metadata: {{annotations: {{autoscaling.knative.dev/min-scale: "{min_scale}"}}}}
    spec:
      containers: [{{image: hang, env: [{{name: HANG_TEST_PORT, value: "{port}"}}]}}]
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: hang-all, namespace: hang-test}}
spec:
  broker: default
  filters: [{{exact: {{type: test.hang.v1}}}}]
  subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: hang}}}}
"""


@contextmanager
def hanging_function(tmp_path: Path, min_scale: int) -> Iterator[tuple[Path, socket.socket]]:
    """Manifests of the `hang` function, and the socket it reports to while it starts."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(WAIT)
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        port = server.getsockname()[1]
        text = HANG_MANIFESTS.format(min_scale=min_scale, port=port)
        (manifests / "hang.yaml").write_text(text, encoding="utf-8")
        yield manifests, server


def sigterm_while_starting(
    dev: DevProcess, server: socket.socket, again_after: str | None = None
) -> int:
    """Once `hang` is inside its start-up, SIGTERM the mesh; its exit code (a forced exit by
    the watchdog would be FORCED_EXIT). With `again_after`, a second SIGTERM follows once the
    mesh printed that message.

    Also checks that both processes of the function (gunicorn master and worker) are gone.
    """
    try:
        connection, _ = server.accept()
    except TimeoutError:
        raise AssertionError(f"the hang function never started: {dev.records}") from None
    with connection:
        worker, master = (int(pid) for pid in connection.makefile().readline().split())
        pidfds = [os.pidfd_open(pid) for pid in (worker, master)]
        try:
            dev.process.send_signal(signal.SIGTERM)
            if again_after is not None:  # not at once: the kernel merges pending signals
                dev.wait_for("message", text=again_after)
                # the message comes after the mesh took the first signal: from here on, a
                # signal is past REPEAT_WINDOW (not a repeat of the first) once it has elapsed
                time.sleep(REPEAT_WINDOW)
                dev.process.send_signal(signal.SIGTERM)
            code = dev.process.wait(timeout=SHUTDOWN_SECONDS + 30)
            for pidfd in pidfds:  # readable once the process has exited
                assert select.select([pidfd], [], [], 5.0)[0], "a function process survived"
        finally:
            for pidfd in pidfds:
                os.close(pidfd)
    return code


def test_sigterm_during_start_up_exits_within_the_bound(tmp_path: Path) -> None:
    with (
        hanging_function(tmp_path, min_scale=1) as (manifests, server),
        running_dev(tmp_path, manifests, functions_dirs=[DATA / "functions"]) as dev,
    ):
        code = sigterm_while_starting(dev, server)
    assert code == 128 + signal.SIGTERM  # interrupted before it was ready
    dev.read_to_end()
    assert not any(record["kind"] == "ready" for record in dev.records)


def test_a_second_sigterm_kills_at_once(tmp_path: Path) -> None:
    with (
        hanging_function(tmp_path, min_scale=1) as (manifests, server),
        running_dev(tmp_path, manifests, functions_dirs=[DATA / "functions"]) as dev,
    ):
        stopping = "stopping: interrupted during start-up"
        code = sigterm_while_starting(dev, server, again_after=stopping)
    assert code == 128 + signal.SIGTERM
    stderr = (tmp_path / "dev.stderr").read_text(encoding="utf-8")
    assert "a second SIGTERM" in stderr  # forced: `hang` ignores SIGTERM and is not waited for


def test_a_stop_asked_twice_at_once_is_one_graceful_stop(tmp_path: Path) -> None:
    """`make run` forwards the SIGTERM its process group already got (and a terminal may add a
    SIGINT): signals within REPEAT_WINDOW of the first do not force the exit."""
    with (
        hanging_function(tmp_path, min_scale=0) as (manifests, _),
        running_dev(tmp_path, manifests, functions_dirs=[DATA / "functions"]) as dev,
    ):
        dev.wait_for("ready")
        dev.process.send_signal(signal.SIGTERM)
        dev.process.send_signal(signal.SIGINT)  # another signal: the kernel cannot merge them
        code = dev.process.wait(timeout=SHUTDOWN_SECONDS + 30)
    assert code == 0, (tmp_path / "dev.stderr").read_text(encoding="utf-8")


def test_sigterm_during_a_cold_start_exits_within_the_bound(tmp_path: Path) -> None:
    with (
        hanging_function(tmp_path, min_scale=0) as (manifests, server),
        running_dev(tmp_path, manifests, functions_dirs=[DATA / "functions"]) as dev,
    ):
        ready = dev.wait_for("ready")
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "hang-1",
            "ce-source": "/tests/mesh",
            "ce-type": "test.hang.v1",
            "content-type": "application/json",
        }
        url = ready["brokers"]["hang-test/default"]
        answer = urllib3.request("POST", url, headers=headers, body=b"{}", timeout=10.0)
        assert answer.status == 202
        code = sigterm_while_starting(dev, server)  # the broker is cold-starting `hang`
    assert code == 0  # a normal stop: the watchdog's forced exit would be FORCED_EXIT
    events = run_eventfn("events", "--json", "--state-dir", str(dev.state_dir))
    [logged] = [json.loads(line) for line in events.stdout.splitlines()]
    assert (logged["id"], logged["status"]) == ("hang-1", "pending")  # delivered after a restart


WATCHDOG_CHILD = textwrap.dedent(
    """
    import sys
    import threading

    from eventfn.mesh._dev_shutdown import ShutdownSignals


    def stuck_step():  # a stop step that never returns
        threading.Event().wait()


    def interrupted(signum):
        print("signal", signum, flush=True)


    def forced(reason):
        print("forced:", reason, flush=True)


    with ShutdownSignals(interrupted, forced, bound=float(sys.argv[1])) as shutdown:
        print("ready", flush=True)
        if sys.argv[2] == "stop":
            shutdown.stop_begins()
        stuck_step()
    """
)


@contextmanager
def watched_child(begin: str, bound: float = 0.5) -> Iterator[subprocess.Popen[str]]:
    """A child process stuck in a step under `ShutdownSignals`, once it is ready; with `begin`
    "stop" the stop begins without a signal, with "wait" it only waits."""
    child = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG_CHILD, str(bound), begin],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=WAIT)


def test_a_stop_that_hangs_is_ended_with_the_stacks_of_every_thread() -> None:
    with watched_child("stop") as child:
        out, err = child.communicate(timeout=WAIT)
    assert child.returncode == FORCED_EXIT
    assert "forced: the shutdown took longer than 0.5 s" in out
    assert "the stack of every thread" in err and "in stuck_step" in err


def test_sigterm_reaches_a_main_thread_blocked_in_a_wait() -> None:
    with watched_child("wait") as child:
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=WAIT)
    assert child.returncode == FORCED_EXIT  # the step still hangs after the signal: the bound
    assert out.startswith(f"signal {signal.SIGTERM.value}\nforced: "), out
    assert "in stuck_step" in err


def test_a_second_sigterm_ends_a_hanging_stop_at_once() -> None:
    with watched_child("wait", bound=3600) as child:  # only the second signal can end it
        assert child.stdout is not None
        child.send_signal(signal.SIGTERM)
        assert child.stdout.readline() == f"signal {signal.SIGTERM.value}\n"
        time.sleep(REPEAT_WINDOW)  # the line came after the first was taken: not a repeat
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=WAIT)
    assert child.returncode == 128 + signal.SIGTERM
    assert "forced: a second SIGTERM" in out and "in stuck_step" in err
