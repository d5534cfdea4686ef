"""The workflow function's configuration and its engine over the function's SQL store."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from eventfn._context import derived_id
from eventfn._errors import ConfigurationError, EventfnError
from eventfn._event import Event, utc_now_rfc3339
from eventfn._settings import env_number
from eventfn._wf_definition import Definition, load_directory
from eventfn._wf_engine import WorkflowEngine
from eventfn._wf_tasks import TaskInvoker, env_resolver

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from eventfn import Context
    from eventfn._emitter import Emitter
    from eventfn._objects import ObjectStore
    from eventfn._settings import Settings

ENV_DEFINITIONS_DIR: Final = "WORKFLOW_DEFINITIONS_DIR"
ENV_TRIGGERS: Final = "WORKFLOW_TRIGGERS"
DEFAULT_DEFINITIONS: Final = Path(__file__).parent / "definitions"
EXECUTION_EVENT: Final = "eventfn.workflow.execution.{}.v1"
ENV_SCHEDULER_INTERVAL: Final = "WORKFLOW_SCHEDULER_INTERVAL_SECONDS"
ENV_RESUME_AFTER: Final = "WORKFLOW_RESUME_AFTER_SECONDS"
DEFAULT_RESUME_AFTER: Final = 300.0  # the Service's timeoutSeconds: no request lives longer
DEFAULT_INTERVAL: Final = 1.0
_log = logging.getLogger("eventfn.workflow.scheduler")


class Scheduler:
    """The scheduler loop of one process: every `interval` seconds, fire due timers and re-send
    unsent final events. (Resuming executions a dead pod left ready is the PingSource tick's
    job: a live request may be stepping them right now.)"""

    def __init__(self, engine: WorkflowEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workflow-scheduler", daemon=True)

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """End the loop (waits for the current round)."""
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._engine.run_due()
                self._engine.announce_pending()
            except EventfnError:
                _log.warning("scheduler round failed; the next one tries again", exc_info=True)


@dataclass(frozen=True)
class Trigger:
    """Events of `type` (and subject prefix) start `workflow`."""

    type: str
    workflow: str
    subject_prefix: str = ""


def parse_triggers(raw: str | None, known: Mapping[str, Definition]) -> list[Trigger]:
    """`WORKFLOW_TRIGGERS`: a JSON list of {type, workflow, subject_prefix?}."""
    if not raw:
        return []
    try:
        items = json.loads(raw)
        triggers = [Trigger(**item) for item in items]
    except (ValueError, TypeError):
        raise ConfigurationError(f"{ENV_TRIGGERS} must be a JSON list of triggers") from None
    for trigger in triggers:
        if trigger.workflow not in known:
            raise ConfigurationError(
                f"{ENV_TRIGGERS} names an unknown workflow {trigger.workflow!r}"
            )
    return triggers


def execution_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """The data of an execution event."""
    output = row.get("output")
    return {
        "execution_id": row["id"],
        "workflow": row["workflow"],
        "name": row["name"],
        "status": row["status"],
        "output": json.loads(output) if output else None,
        "error": row.get("error"),
        "cause": row.get("cause"),
    }


class Workflows:
    """Definitions, triggers and task URLs (read at start) plus a lazily built engine."""

    def __init__(self) -> None:
        self.definitions: dict[str, Definition] = {}
        self.triggers: list[Trigger] = []
        self._env: dict[str, str] = {}
        self._lock = threading.RLock()
        self._db: Engine | None = None
        self._invoker: TaskInvoker | None = None
        self._emitter: Emitter | None = None
        self._scheduler: Scheduler | None = None
        self.interval = DEFAULT_INTERVAL
        self.resume_after = DEFAULT_RESUME_AFTER

    def configure(self, env: Mapping[str, str]) -> None:
        """Start hook: load and validate every definition; a bad one stops the function."""
        directory = Path(env.get(ENV_DEFINITIONS_DIR) or DEFAULT_DEFINITIONS)
        if not directory.is_dir():
            raise ConfigurationError(f"workflow definitions directory {directory} does not exist")
        self.definitions = load_directory(directory)
        self.triggers = parse_triggers(env.get(ENV_TRIGGERS), self.definitions)
        self.interval = env_number(env, ENV_SCHEDULER_INTERVAL, DEFAULT_INTERVAL, float, minimum=0)
        self.resume_after = env_number(
            env, ENV_RESUME_AFTER, DEFAULT_RESUME_AFTER, float, minimum=0
        )
        self.stop()
        with self._lock:
            self._env = dict(env)
            if self._db is not None:
                self._db.dispose()
            self._db, self._invoker, self._emitter = None, None, None

    def trigger_for(self, event: Event) -> str | None:
        """The workflow an event of another type starts, if any."""
        for trigger in self.triggers:
            if trigger.type == event.type and (event.subject or "").startswith(
                trigger.subject_prefix
            ):
                return trigger.workflow
        return None

    def engine(self, ctx: Context) -> WorkflowEngine:
        """An engine for this event (its trace goes on the execution events); the first call
        also starts the scheduler loop of this process."""
        engine = self._engine(ctx.settings, ctx.trace.headers())
        with self._lock:
            if self._scheduler is None and self.interval > 0:
                scheduler_engine = self._engine(ctx.settings, {})
                self._scheduler = Scheduler(scheduler_engine, self.interval)
                self._scheduler.start()
        return engine

    def stop(self) -> None:
        """Stop hook: end the scheduler loop."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.stop()

    def _engine(self, settings: Settings, trace: Mapping[str, str]) -> WorkflowEngine:
        db, invoker, emitter = self._shared(settings)
        source = settings.event_source

        def notify(kind: str, row: Mapping[str, Any]) -> None:
            ident = str(row["id"])
            event = Event(
                type=EXECUTION_EVENT.format(kind), source=source,
                id=derived_id("workflow-execution-event", ident, kind, str(row["redrive_count"])),
                data=execution_data(row), subject=ident, time=utc_now_rfc3339(),
                datacontenttype="application/json",
            )  # fmt: skip
            emitter.emit(event, trace)

        return WorkflowEngine(db, self.definitions, invoker.traced(trace), notify=notify)

    def _shared(self, settings: Settings) -> tuple[Engine, TaskInvoker, Emitter]:
        with self._lock:
            if self._db is None:
                from eventfn._store import create_engine_from_url, upgrade

                self._db = create_engine_from_url(settings.effective_database_url)
                if settings.auto_migrate:
                    upgrade(self._db)
            if self._invoker is None or self._emitter is None:
                from eventfn._emitter import Emitter
                from eventfn._schemas import SchemaRegistry

                directory = settings.schemas_dir
                catalog = SchemaRegistry.from_directory(directory) if directory.is_dir() else None
                self._emitter = Emitter.from_settings(settings, catalog)
                self._invoker = self._make_invoker(settings, self._emitter)
            return self._db, self._invoker, self._emitter

    def _make_invoker(self, settings: Settings, emitter: Emitter) -> TaskInvoker:
        store: list[ObjectStore] = []

        def objects() -> ObjectStore:
            if not store:
                from eventfn._objects import ObjectStore

                store.append(ObjectStore.from_settings(settings))
            return store[0]

        return TaskInvoker(
            env_resolver(self._env),
            source=settings.event_source,
            objects=objects,
            emit=emitter.emit,
        )
