"""`eventfn dev`: the topology of the manifests, running on this machine.

Start order: topology (fails before anything runs), state directory and the SQL database
(migrated once here), embedded S3 with its buckets and notification queue, broker with its
ingress on a threaded loopback server, the Teams/Slack webhook capture (the notifier posts to
it), function processes (min-scale >= 1 at boot, the others on demand), the bucket-notification
relay; then `dev.json` in the state directory tells `eventfn upload` where everything is.

Stop order (each step with a budget, see `_dev_shutdown`): the relay stops polling, the broker
stops dispatching (in-flight deliveries get a moment, then their connections are cut; what did
not finish stays pending in SQLite), functions get SIGTERM (and SIGKILL after their budget) while
the ingress and the webhook capture still accept what they send, then the ingress, the capture,
the event store and the embedded S3 close. Once SIGINT/SIGTERM arrives, in any phase, or a stop
begins without one, the process ends within `SHUTDOWN_SECONDS`; past that a watchdog dumps every
thread's stack to stderr and kills every function process group.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer

from eventfn._errors import ConfigurationError
from eventfn._logging import get_logger
from eventfn._settings import DEFAULT_BUCKET, Settings
from eventfn.mesh._activator import Activator
from eventfn.mesh._broker import Broker
from eventfn.mesh._capture import CapturedMessage, WebhookCapture, with_capture_env
from eventfn.mesh._dev_demo import DemoContext, run_demo
from eventfn.mesh._dev_env import (
    DevEnvironment,
    DevSecrets,
    data_bucket,
    ensure_token,
    launch_specs,
    storage_service,
)
from eventfn.mesh._dev_events import broker_db
from eventfn.mesh._dev_output import MeshPrinter, clock_time
from eventfn.mesh._dev_pidfiles import PidFiles
from eventfn.mesh._dev_ready import ready_text
from eventfn.mesh._dev_shutdown import ShutdownSignals, StopBudget, run_step
from eventfn.mesh._http import serve
from eventfn.mesh._ping import PingTicker
from eventfn.mesh._s3 import EmbeddedS3, port_is_free, topology_buckets
from eventfn.mesh._s3_notify import NotificationRelay
from eventfn.mesh._supervisor import LOOPBACK, ServiceUnavailable, Supervisor
from eventfn.mesh._topology import ServiceSpec, Topology, load_topology

DEV_FILE = "dev.json"
DEFAULT_PORT = 8080
CAPTURE_LOG = "webhooks.jsonl"

_log = get_logger("mesh.dev")


@dataclass(frozen=True)
class DevOptions:
    """The flags of `eventfn dev`."""

    manifests: Path = Path("k8s")
    state_dir: Path = Path(".eventfn")
    port: int | None = None  # None: 8080 when free, else any free port
    idle_seconds: float = 60.0
    demo: bool = False
    exit: bool = False
    functions_dirs: tuple[Path, ...] = (Path("functions"),)
    schemas_dir: Path = Path("schemas")
    demo_dir: Path = Path("demo")
    json_lines: bool = False


@dataclass
class Mesh:
    """Every part of one `eventfn dev` run."""

    options: DevOptions
    topology: Topology
    printer: MeshPrinter
    state_dir: Path
    s3: EmbeddedS3 = field(default_factory=EmbeddedS3)
    broker: Broker | None = None
    supervisor: Supervisor | None = None
    relay: NotificationRelay | None = None
    server: BaseWSGIServer | None = None
    capture: WebhookCapture | None = None
    activator: Activator | None = None
    ticker: PingTicker | None = None
    ingress_url: str = ""
    bucket: str = DEFAULT_BUCKET
    stopping: threading.Event = field(default_factory=threading.Event)
    budget: StopBudget = field(default_factory=StopBudget)
    step: str = "start-up"  # what the mesh is doing, for the shutdown watchdog
    watchdog: ShutdownSignals | None = None  # bounds every stop, with or without a signal
    _stopped: bool = False

    def start(self) -> None:
        """Start everything; on failure, stop what was started and re-raise.

        Once `stopping` is set (a signal) the start-up ends after the step in progress, without
        raising: a cold start in progress is given up; callers check `stopping` afterwards.
        """
        try:
            self._start()
        except ServiceUnavailable:
            if not self.stopping.is_set():
                self.stop()
                raise
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        options = self.options
        database_url = _migrate(self.state_dir)
        if self.stopping.is_set():
            return
        access = self.s3.start()
        buckets = topology_buckets(self.topology, self.bucket)
        self.s3.create_buckets(buckets)
        if self.stopping.is_set():
            return
        self.broker = Broker(
            self.topology, broker_db(self.state_dir), self._resolve, on_hop=self.printer.hop
        )
        self.server = _serve(self.broker, options.port)
        self.ingress_url = f"http://{LOOPBACK}:{self.server.server_port}"
        self.activator = Activator(self.topology, self._resolve, on_call=self.printer.call)
        service_urls = self.activator.start()
        dev = DevEnvironment(
            ingress_url=self.ingress_url,
            state_dir=self.state_dir,
            database_url=database_url,
            schemas_dir=options.schemas_dir.resolve(),
            functions_dirs=[folder.resolve() for folder in options.functions_dirs],
            s3=access,
            secrets=DevSecrets(),
            service_urls=service_urls,
        )
        launches = launch_specs(self.topology, dev)
        self.capture = WebhookCapture(self._notification, self.state_dir / CAPTURE_LOG)
        self.capture.start()
        launches = with_capture_env(launches, self.capture)  # the notifier posts to the capture
        storage = storage_service(self.topology)
        token = None if storage is None else ensure_token(launches, storage, dev.secrets)
        self.supervisor = Supervisor(
            launches,
            log_dir=self.state_dir / "logs",
            idle_seconds=options.idle_seconds,
            on_cold_start=self.printer.cold_start,
            on_stop=self.printer.stopped,
            pidfiles=PidFiles(self.state_dir / "run"),
            stopping=self.stopping,  # a signal gives up cold starts in progress at once
        )
        self.broker.start()
        self.supervisor.start()
        self.ticker = PingTicker(self.topology.ping_sources, self.broker.publish)
        self.ticker.start()
        if storage is not None and token is not None and not self.stopping.is_set():
            self.relay = self._relay(storage, token, buckets)
            self.relay.start()

    def _notification(self, message: CapturedMessage) -> None:
        text = f"{clock_time(message.at)}  {message.line()}"
        self.printer.record("notification", message.record(), text)

    def _resolve(self, service: str) -> str:
        if self.supervisor is None:
            raise ConnectionError("the function supervisor is not running yet")
        return self.supervisor.resolve(service)

    def _relay(self, storage: ServiceSpec, token: str, buckets: list[str]) -> NotificationRelay:
        supervisor = self.supervisor
        assert supervisor is not None
        printer = self.printer
        return NotificationRelay(
            self.s3.client("sqs"),
            self.s3.client("s3"),
            self.s3.notify_queue(buckets),
            target=lambda: supervisor.resolve(storage.name),
            token=token,
            access_key=self.s3.access.access_key,
            on_delivery=lambda delivery: printer.webhook(delivery, storage.name),
            timeout=float(storage.timeout_seconds),
        )

    def interrupt(self, signum: int) -> None:
        """A signal arrived (called from the signal listener thread): stop whatever runs."""
        self.stopping.set()

    def force(self, reason: str) -> None:
        """Last resort before the process exits (the watchdog's thread): kill every function
        process group, starting ones included."""
        step = self.step
        if self.supervisor is not None:
            self.supervisor.kill_all()
        with suppress(OSError):
            (self.state_dir / DEV_FILE).unlink()
        _log.error("eventfn dev: %s (step: %s); function processes killed", reason, step)

    def stop(self) -> None:
        """Stop in order, each step within its budget; safe on a partly started mesh."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        if self.watchdog is not None:
            self.watchdog.stop_begins()
        budget = self.budget
        relay, broker, supervisor, server = self.relay, self.broker, self.supervisor, self.server
        capture, ticker, activator = self.capture, self.ticker, self.activator
        if ticker is not None:
            self._step("PingSources", budget.relay, ticker.stop)
        if relay is not None:
            self._step("bucket notifications", budget.relay, lambda: relay.stop(budget.relay))
        if broker is not None:
            self._step("deliveries", budget.deliveries, lambda: broker.stop(budget.deliveries))
        if supervisor is not None:
            self._step("functions", budget.functions, lambda: supervisor.stop(budget.functions))
        if server is not None:
            self._step("broker ingress", budget.ingress, server.shutdown, detach=True)
            server.server_close()
        if activator is not None:  # after the functions, which may call each other until then
            self._step("function addresses", budget.ingress, activator.stop, detach=True)
        if capture is not None:  # after the functions: the notifier's last posts still arrive
            self._step("webhook capture", budget.capture, capture.stop, detach=True)
        if broker is not None:
            self._step("event store", budget.store, broker.close, detach=True)
        self._step("embedded S3", budget.s3, self.s3.stop, detach=True)
        self.step = "exit"

    def _step(
        self, name: str, seconds: float, action: Callable[[], object], *, detach: bool = False
    ) -> None:
        self.step = name
        run_step(name, seconds, action, detach=detach)

    def describe(self) -> dict[str, Any]:
        """What `dev.json` records and the ready line prints."""
        access = self.s3.access
        brokers = {f"{b.namespace}/{b.name}": self._broker_url(b.namespace, b.name)
                   for b in self.topology.brokers}  # fmt: skip
        return {
            "pid": os.getpid(),
            "started_at": time.time(),
            "state_dir": str(self.state_dir),
            "ingress_url": self.ingress_url,
            "brokers": brokers,
            "event_log": str(broker_db(self.state_dir)),
            "s3": {
                "endpoint_url": access.endpoint_url,
                "region": access.region,
                "access_key": access.access_key,
                "secret_key": access.secret_key,
                "bucket": self.bucket,
            },
            "webhooks": self.capture.env() if self.capture is not None else {},
            "functions": sorted(self.topology.services),
            "services": self.activator.urls() if self.activator is not None else {},
            "running": self.supervisor.running() if self.supervisor else {},
        }

    def _broker_url(self, namespace: str, name: str) -> str:
        return f"{self.ingress_url}/{namespace}/{name}"

    def demo_context(self) -> DemoContext:
        """What `--demo` needs of the running mesh."""
        assert self.broker is not None
        first = self.topology.brokers[0]
        services = set(self.topology.services) | {
            spec.function for spec in self.topology.services.values()
        }
        return DemoContext(
            broker=self.broker,
            relay=self.relay,
            s3=self.s3.client("s3"),
            bucket=self.bucket,
            ingress=self._broker_url(first.namespace, first.name),
            services=services,
            printer=self.printer,
            stopping=self.stopping,
            broker_db=broker_db(self.state_dir),
        )


def run_dev(options: DevOptions, printer: MeshPrinter | None = None) -> int:
    """Run the mesh until Ctrl-C / SIGTERM (or after the demo with `exit`); the exit code."""
    topology = load_topology(options.manifests)
    if not topology.brokers:
        raise ConfigurationError(f"the manifests in {options.manifests} define no Broker")
    state_dir = options.state_dir.resolve()
    _claim(state_dir)
    printer = printer or MeshPrinter(topology, json_lines=options.json_lines)
    mesh = Mesh(options, topology, printer, state_dir, bucket=data_bucket(topology))
    with ShutdownSignals(mesh.interrupt, mesh.force) as shutdown:
        mesh.watchdog = shutdown
        mesh.start()
        if mesh.stopping.is_set():  # interrupted before it was ready
            printer.message("stopping: interrupted during start-up")
            mesh.stop()
            return 128 + shutdown.signum if shutdown.signum is not None else 1
        code = 0
        try:
            mesh.step = "running"
            info = mesh.describe()
            (state_dir / DEV_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            printer.record("ready", info, ready_text(mesh, info))
            if options.demo and not run_demo(mesh.demo_context(), options.demo_dir):
                code = 1
            if not options.exit:
                # the signal listener sets `stopping`; the timed wait is a second line of
                # defence that does not depend on it (nor on a signal reaching this thread)
                while not mesh.stopping.wait(0.5):
                    pass
        finally:
            printer.message("stopping: functions get SIGTERM and finish what they are doing")
            mesh.stop()
            stats = mesh.broker.stats if mesh.broker is not None else {}
            printer.summary(stats)
            with suppress(FileNotFoundError):
                (state_dir / DEV_FILE).unlink()
    return code


def read_dev_file(state_dir: Path) -> dict[str, Any]:
    """The `dev.json` of a running mesh; ConfigurationError when none runs there."""
    path = state_dir / DEV_FILE
    if not path.is_file():
        raise ConfigurationError(f"no `eventfn dev` is running with state directory {state_dir}")
    info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not _pid_alive(int(info.get("pid", 0))):
        raise ConfigurationError(f"the `eventfn dev` that wrote {path} is no longer running")
    return info


def _claim(state_dir: Path) -> None:
    path = state_dir / DEV_FILE
    if path.is_file():
        with suppress(ValueError, OSError):
            pid = int(json.loads(path.read_text(encoding="utf-8")).get("pid", 0))
            if pid != os.getpid() and _pid_alive(pid):
                raise ConfigurationError(
                    f"another `eventfn dev` (pid {pid}) uses {state_dir}; stop it or pass "
                    "--state-dir"
                )
    state_dir.mkdir(parents=True, exist_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _migrate(state_dir: Path) -> str:
    from eventfn._store import upgrade

    url = Settings.from_env().with_overrides(state_dir=state_dir).effective_database_url
    upgrade(url)
    return url


def _serve(broker: Broker, port: int | None) -> BaseWSGIServer:
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else 0
    try:
        return serve(broker.wsgi(), port, "broker-ingress")
    except (OSError, SystemExit):
        raise ConfigurationError(f"the broker ingress cannot listen on port {port}") from None
