"""The supervisor runs real `eventfn serve` processes: cold starts, scale to zero, restarts, env."""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from eventfn.mesh._dev_pidfiles import PidFiles
from eventfn.mesh._supervisor import ColdStart, LaunchSpec, ServiceUnavailable, Supervisor

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
IDLE = 60.0


class FakeClock:
    """The supervisor's idle clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def launch(
    service: str, tmp_path: Path, *, min_scale: int = 0, function: str = "probe"
) -> LaunchSpec:
    env = {
        "EVENTFN_FUNCTIONS_DIR": str(DATA / "functions"),
        "EVENTFN_SCHEMAS_DIR": str(ROOT / "schemas"),
        "EVENTFN_STATE_DIR": str(tmp_path / "state"),
        "EVENTFN_TRACING": "off",
        "PROBE_MARKER": f"marker-of-{service}",
    }
    return LaunchSpec(service=service, function=function, env=env, min_scale=min_scale)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> dict[str, list[Any]]:
    return {"cold": [], "stop": []}


def make(
    tmp_path: Path,
    clock: FakeClock,
    events: dict[str, list[Any]],
    *specs: LaunchSpec,
    pidfiles: PidFiles | None = None,
) -> Supervisor:
    return Supervisor(
        {spec.service: spec for spec in specs},
        log_dir=tmp_path / "logs",
        idle_seconds=IDLE,
        ready_timeout=60.0,
        stop_timeout=10.0,
        clock=clock,
        on_cold_start=events["cold"].append,
        on_stop=lambda name, reason: events["stop"].append((name, reason)),
        pidfiles=pidfiles,
    )


@pytest.fixture
def supervisor(
    tmp_path: Path, clock: FakeClock, events: dict[str, list[Any]]
) -> Iterator[Supervisor]:
    sup = make(
        tmp_path,
        clock,
        events,
        launch("lazy", tmp_path),
        launch("warm", tmp_path, min_scale=1),
    )
    sup.start(reap=False)
    yield sup
    sup.stop()


def probe_env(url: str, *names: str) -> dict[str, object]:
    response = urllib3.request("GET", f"{url}/probe/env?names={','.join(names)}", timeout=10.0)
    assert response.status == 200
    body: dict[str, object] = response.json()
    return body


def wait_for_exit_after(action: Callable[[], None], pid: int) -> None:
    """Run `action`, then block until process `pid` has exited (pidfd: no polling)."""
    pidfd = os.pidfd_open(pid)
    try:
        action()
        readable, _, _ = select.select([pidfd], [], [], 30.0)
        assert readable, f"process {pid} did not exit"
    finally:
        os.close(pidfd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_min_scale_one_starts_at_boot_and_zero_waits(
    supervisor: Supervisor, events: dict[str, list[Any]]
) -> None:
    assert set(supervisor.running()) == {"warm"}
    [boot] = supervisor.cold_starts
    assert (boot.service, boot.reason) == ("warm", "boot")
    assert 0 < boot.seconds < 60 and boot.pid == supervisor.running()["warm"]
    assert events["cold"] == [boot]


def test_first_request_cold_starts_and_measures_it(supervisor: Supervisor, tmp_path: Path) -> None:
    url = supervisor.resolve("lazy")
    assert url.startswith("http://127.0.0.1:")
    ready = urllib3.request("GET", f"{url}/health/readiness", timeout=5.0)
    assert ready.status == 200
    cold = [c for c in supervisor.cold_starts if c.service == "lazy"]
    assert [c.reason for c in cold] == ["request"] and cold[0].seconds > 0
    assert supervisor.resolve("lazy") == url  # warm now: no second start
    assert len(supervisor.cold_starts) == 2


def test_env_reaches_the_process(supervisor: Supervisor, tmp_path: Path) -> None:
    url = supervisor.resolve("lazy")
    body = probe_env(url, "PROBE_MARKER", "PORT", "EVENTFN_STATE_DIR")
    assert body["env"] == {
        "PROBE_MARKER": "marker-of-lazy",
        "PORT": url.rsplit(":", 1)[1],
        "EVENTFN_STATE_DIR": str(tmp_path / "state"),
    }
    assert body["master"] == supervisor.running()["lazy"]  # the gunicorn master we spawned


def test_idle_function_stops_and_restarts_on_next_request(
    supervisor: Supervisor, clock: FakeClock, events: dict[str, list[Any]]
) -> None:
    supervisor.resolve("lazy")
    first_pid = supervisor.running()["lazy"]
    clock.now += IDLE - 1
    assert supervisor.reap_idle() == []
    supervisor.resolve("lazy")  # a request resets the idle period
    clock.now += IDLE - 1
    assert supervisor.reap_idle() == []
    clock.now += 2
    assert supervisor.reap_idle() == ["lazy"]
    assert "lazy" not in supervisor.running() and not pid_alive(first_pid)
    assert ("lazy", "idle") in events["stop"]
    assert "warm" in supervisor.running()  # min-scale 1 is never scaled to zero
    url = supervisor.resolve("lazy")
    second_pid = supervisor.running()["lazy"]
    assert second_pid != first_pid
    assert probe_env(url)["master"] == second_pid
    reasons = [c.reason for c in supervisor.cold_starts if c.service == "lazy"]
    assert reasons == ["request", "request"]


def test_a_dead_warm_function_is_revived(
    supervisor: Supervisor, events: dict[str, list[Any]]
) -> None:
    pid = supervisor.running()["warm"]
    wait_for_exit_after(lambda: os.killpg(pid, signal.SIGKILL), pid)  # master and workers
    assert supervisor.revive() == ["warm"]
    assert supervisor.running()["warm"] != pid
    assert [c.reason for c in supervisor.cold_starts if c.service == "warm"][-1] == "restart"
    assert any(name == "warm" and reason.startswith("exited") for name, reason in events["stop"])


def test_concurrent_requests_share_one_cold_start(supervisor: Supervisor) -> None:
    urls: list[str] = []
    threads = [
        threading.Thread(target=lambda: urls.append(supervisor.resolve("lazy"))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(urls)) == 1 and len(urls) == 4
    assert len([c for c in supervisor.cold_starts if c.service == "lazy"]) == 1


def test_unknown_service_is_a_connection_error(supervisor: Supervisor) -> None:
    with pytest.raises(ServiceUnavailable, match="known: lazy, warm") as caught:
        supervisor.resolve("nope")
    assert isinstance(caught.value, OSError)


def test_a_function_that_cannot_start_fails_fast(
    tmp_path: Path, clock: FakeClock, events: dict[str, list[Any]]
) -> None:
    sup = make(tmp_path, clock, events, launch("broken", tmp_path, function="missing"))
    sup.start(reap=False)
    try:
        with pytest.raises(ServiceUnavailable, match="did not become ready"):
            sup.resolve("broken")
        assert "no function 'missing'" in sup.log_path("broken").read_text()
        assert sup.running() == {} and sup.cold_starts == []
    finally:
        sup.stop()


def test_stop_terminates_every_process(
    tmp_path: Path, clock: FakeClock, events: dict[str, list[Any]]
) -> None:
    sup = make(tmp_path, clock, events, launch("a", tmp_path, min_scale=1), launch("b", tmp_path))
    sup.start(reap=False)
    sup.resolve("b")
    pids = sup.running()
    assert set(pids) == {"a", "b"}
    sup.stop()
    assert sup.running() == {}
    assert not any(pid_alive(pid) for pid in pids.values())
    assert sorted(events["stop"]) == [("a", "shutdown"), ("b", "shutdown")]
    with pytest.raises(ServiceUnavailable, match="stopping"):
        sup.resolve("a")
    assert all(isinstance(c, ColdStart) for c in events["cold"])


def test_processes_of_a_hard_killed_mesh_are_stopped_by_the_next(
    tmp_path: Path, clock: FakeClock, events: dict[str, list[Any]]
) -> None:
    pidfiles = PidFiles(tmp_path / "run")
    spec = launch("warm", tmp_path, min_scale=1)
    first = Supervisor({"warm": spec}, log_dir=tmp_path / "logs", pidfiles=pidfiles)
    first.start(reap=False)
    leftover = first.running()["warm"]
    assert (tmp_path / "run" / "warm.pid").read_text().split()[0] == str(leftover)
    # `first` is never stopped, as if its `eventfn dev` had been killed with SIGKILL
    second = make(tmp_path, clock, events, spec, pidfiles=pidfiles)  # same state directory
    try:
        wait_for_exit_after(lambda: second.start(reap=False), leftover)
        assert ("warm", f"leftover pid {leftover} of an earlier run") in events["stop"]
        assert second.running()["warm"] != leftover
    finally:
        second.stop()
        first.stop()
    assert not (tmp_path / "run" / "warm.pid").exists()
