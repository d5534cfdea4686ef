"""`eventfn dev`: the topology of the manifests, running on this machine.

Start order: topology (fails before anything runs), state directory and the SQL database
(migrated once here), embedded S3 with its buckets and notification queue, broker with its
ingress on a threaded loopback server, function processes (min-scale >= 1 at boot, the others
on demand), the bucket-notification relay; then `dev.json` in the state directory tells
`eventfn upload` where everything is. Stop order is the reverse, functions get SIGTERM.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from werkzeug.serving import BaseWSGIServer

from eventfn._errors import ConfigurationError
from eventfn._settings import DEFAULT_BUCKET, ENV_BUCKET, Settings
from eventfn.mesh._activator import Activator
from eventfn.mesh._broker import Broker
from eventfn.mesh._capture import CapturedMessage, WebhookCapture, with_capture_env
from eventfn.mesh._dev_demo import DemoContext, run_demo
from eventfn.mesh._dev_env import DevEnvironment, DevSecrets, launch_specs
from eventfn.mesh._dev_events import broker_db
from eventfn.mesh._dev_output import MeshPrinter, clock_time
from eventfn.mesh._dev_pidfiles import PidFiles
from eventfn.mesh._http import serve
from eventfn.mesh._ping import PingTicker
from eventfn.mesh._s3 import EmbeddedS3, port_is_free, topology_buckets
from eventfn.mesh._s3_notify import NotificationRelay
from eventfn.mesh._supervisor import LOOPBACK, LaunchSpec, Supervisor
from eventfn.mesh._topology import ServiceSpec, Topology, load_topology

DEV_FILE = "dev.json"
DEFAULT_PORT = 8080
STORAGE_FUNCTION = "storage-source"
TOKEN_ENV = "STORAGE_SOURCE_TOKEN"  # noqa: S105 - a variable name
BROKER_STOP_TIMEOUT = 10.0
STOP_DEADLINE = 40.0  # seconds a graceful stop may take before functions are killed
CAPTURE_LOG = "webhooks.jsonl"


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

    def start(self) -> None:
        """Start everything; on failure, stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        options = self.options
        database_url = _migrate(self.state_dir)
        access = self.s3.start()
        buckets = topology_buckets(self.topology, self.bucket)
        self.s3.create_buckets(buckets)
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
        storage = _storage_service(self.topology)
        token = None if storage is None else _ensure_token(launches, storage, dev.secrets)
        self.supervisor = Supervisor(
            launches,
            log_dir=self.state_dir / "logs",
            idle_seconds=options.idle_seconds,
            on_cold_start=self.printer.cold_start,
            on_stop=self.printer.stopped,
            pidfiles=PidFiles(self.state_dir / "run"),
        )
        self.broker.start()
        self.supervisor.start()
        self.ticker = PingTicker(self.topology.ping_sources, self.broker.publish)
        self.ticker.start()
        if storage is not None and token is not None:
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

    def stop(self) -> None:
        """Stop in reverse order; safe to call on a partly started mesh."""
        self.stopping.set()
        if self.ticker is not None:
            self.ticker.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.broker is not None:
            self.broker.stop(BROKER_STOP_TIMEOUT)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.broker is not None:
            self.broker.close()  # also closes its keep-alive connections, which gunicorn awaits
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.activator is not None:
            self.activator.stop()
        if self.capture is not None:
            self.capture.stop()
        self.s3.stop()

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
    mesh = Mesh(options, topology, printer, state_dir, bucket=_data_bucket(topology))
    with _signals(mesh.stopping):
        mesh.start()
        code = 0
        try:
            info = mesh.describe()
            (state_dir / DEV_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            printer.record("ready", info, _ready_text(mesh, info))
            if options.demo and not run_demo(mesh.demo_context(), options.demo_dir):
                code = 1
            if not options.exit:
                # wake up regularly: a signal that arrives just before a wait without timeout
                # would only be handled when the main thread runs Python code again
                while not mesh.stopping.wait(0.5):
                    pass
        finally:
            printer.message("stopping: functions get SIGTERM and finish what they are doing")
            forced = _stop_within(mesh, STOP_DEADLINE)
            stats = mesh.broker.stats if mesh.broker is not None else {}
            printer.summary(stats)
            with suppress(FileNotFoundError):
                (state_dir / DEV_FILE).unlink()
    if forced:  # a stop step is still stuck in a thread: leave without waiting for it
        sys.stdout.flush()
        os._exit(code)
    return code


def _stop_within(mesh: Mesh, deadline: float) -> bool:
    """Stop the mesh; past `deadline` seconds kill the functions and report the stuck step.

    Returns True when the graceful stop did not finish (its thread is left behind). The stacks
    of every thread go to stderr then, so a hang can be diagnosed instead of waited out.
    """
    stopper = threading.Thread(target=mesh.stop, name="mesh-stop", daemon=True)
    stopper.start()
    stopper.join(deadline)
    if not stopper.is_alive():
        return False
    mesh.printer.message(
        f"stopping took more than {deadline:g} s: killing the remaining function processes"
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    if mesh.supervisor is not None:
        mesh.supervisor.kill_all()
    return True


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


def _storage_service(topology: Topology) -> ServiceSpec | None:
    return next((s for s in topology.services.values() if s.function == STORAGE_FUNCTION), None)


def _ensure_token(
    launches: dict[str, LaunchSpec], storage: ServiceSpec, secrets: DevSecrets
) -> str:
    """The webhook token storage-source checks; one is made up when its env has none."""
    token = secrets.env_value(storage, TOKEN_ENV)
    if token:
        return token
    token = secrets.value("eventfn-dev", "storage-webhook-token")
    spec = launches[storage.name]
    launches[storage.name] = LaunchSpec(
        spec.service, spec.function, {**spec.env, TOKEN_ENV: token}, spec.min_scale
    )
    return token


def _data_bucket(topology: Topology) -> str:
    storage = _storage_service(topology)
    if storage is not None and storage.env.get(ENV_BUCKET):
        return storage.env[ENV_BUCKET]
    return DEFAULT_BUCKET


def _ready_text(mesh: Mesh, info: dict[str, Any]) -> str:
    lines = [
        f"eventfn dev: {len(mesh.topology.services)} functions, "
        f"{len(mesh.topology.triggers)} triggers from {mesh.options.manifests}",
        *(f"  broker {name}: {url}" for name, url in info["brokers"].items()),
        f"  embedded S3: {info['s3']['endpoint_url']} (bucket {info['s3']['bucket']})",
        f"  webhook capture (Teams, Slack): {', '.join(info['webhooks'].values()) or 'off'}",
        f'  function addresses (all in dev.json "services"): {_direct(mesh, info)}',
        f"  state: {mesh.state_dir} (function logs in {mesh.state_dir / 'logs'})",
        f"  running: {', '.join(sorted(info['running'])) or 'none'}; others start on their "
        f"first event and stop after {mesh.options.idle_seconds:g} s idle",
        "  try: eventfn upload <file> --prefix documents/   ·   eventfn events --follow",
    ]
    return "\n".join(lines)


def _pings(topology: Topology) -> str:
    sources = [f"{p.name} ({p.schedule.expression} {p.timezone})" for p in topology.ping_sources]
    return ", ".join(sources) or "none"


def _direct(mesh: Mesh, info: dict[str, Any]) -> str:
    """The addresses of the Services no Trigger delivers to: those are called directly."""
    subscribed = {trigger.subscriber_service for trigger in mesh.topology.triggers}
    urls: dict[str, str] = info["services"]
    direct = [f"{name} {url}" for name, url in urls.items() if name not in subscribed]
    return ", ".join(direct) or "none without a Trigger"


@contextmanager
def _signals(stopping: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stopping` (main thread only); previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        # not stopping.set() here: the handler runs in the main thread, which may hold the
        # event's lock at that moment (a deadlock); a helper thread takes the lock normally
        threading.Thread(target=stopping.set, name="signal-stop", daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
