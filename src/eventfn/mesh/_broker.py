"""The local Broker: Knative's MTChannelBasedBroker data plane on one machine.

Ingress (`POST /<namespace>/<broker>`, or `publish()` in-process) decodes a binary or
structured CloudEvent, applies the arrival rules of `_ingress` (TTL hop budget, arrival time,
binary form), evaluates every Trigger of that Broker and stores the event together with one
delivery per matching Trigger in one SQLite transaction before answering 202.

Dispatch: a small pool of threads takes due deliveries from the in-memory `Schedule` (they
block on a Condition, never poll) and POSTs each in binary mode with `Prefer: reply` and the
`traceparent`/`tracestate` headers received at ingress, over a keep-alive connection per thread
(`_sender`). `_delivery` decides what an attempt's result means (retry with backoff,
dead-letter sink, final failure, reply). A 200 reply carrying a CloudEvent is stored back into
the same Broker, in the transaction that completes the delivery, and evaluated against every
Trigger again; it inherits the hop budget, so a reply loop ends when `knativebrokerttl` runs
out: the reply is then dropped and recorded as a failed hop (in Knative the ingress would answer
400 and the channel would dead-letter the delivery). Replies keep the trace headers of the
response.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventfn._codec import decode_http
from eventfn._errors import EventfnError
from eventfn._event import Event
from eventfn.mesh._delivery import (
    Attempt,
    Clock,
    ManualClock,
    Schedule,
    SystemClock,
    judge,
    knative_ingress,
    request_headers,
)
from eventfn.mesh._filters import Router
from eventfn.mesh._ingress import (
    TTL_EXTENSION,
    IngressApp,
    TTLExceeded,
    UnknownBroker,
    arrival_form,
    remaining_ttl,
    trace_headers,
)
from eventfn.mesh._queue import Queue
from eventfn.mesh._records import (
    DEAD_LETTERED,
    DELIVERED,
    FAILED,
    SUBSCRIBER,
    Hop,
    Job,
    StoredEvent,
    hop_of,
)
from eventfn.mesh._sender import Sender
from eventfn.mesh._topology import DEFAULT_TIMEOUT_SECONDS, Topology, TriggerSpec

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["Broker", "Clock", "Hop", "ManualClock", "Resolver", "SystemClock", "UnknownBroker"]

Resolver = Callable[[str], str]
STAT_KEYS = ("accepted", "delivered", "retried", "dead_lettered", "no_match", "replies")
EXTRA_STAT_KEYS = ("failed", "ttl_exceeded")
KNATIVE_INGRESS_HOSTS = (
    "broker-ingress.knative-eventing.svc.cluster.local",
    "kafka-broker-ingress.knative-eventing.svc.cluster.local",
)
_ERROR_RETRY_SECONDS = 1.0
_ABORT_GRACE = 0.5  # after cutting in-flight connections, how long stop() still waits
_logger = logging.getLogger("eventfn.mesh.broker")


class Broker:
    """Broker ingress, durable queue and Trigger dispatcher for one topology."""

    def __init__(
        self,
        topology: Topology,
        db_path: Path,
        resolver: Resolver,
        *,
        clock: Clock | None = None,
        on_hop: Callable[[Hop], None] | None = None,
        workers: int = 8,
    ) -> None:
        self.topology = topology
        self._queue = Queue(db_path)
        self._resolver = resolver
        self._clock: Clock = clock or SystemClock()
        self._on_hop = on_hop
        self._worker_count = max(1, workers)
        self._sender = Sender()
        self._triggers = {(t.namespace, t.name): t for t in topology.triggers}
        self._router = Router(topology.triggers)
        self._schedule = Schedule(self._clock)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    # --- ingress ----------------------------------------------------------------------------

    def publish(self, headers: Mapping[str, str], body: bytes, namespace: str, broker: str) -> str:
        """Accept one CloudEvent durably (what the HTTP ingress does); returns its id."""
        if self.topology.broker(namespace, broker) is None:
            raise UnknownBroker(f"no broker {namespace}/{broker} is defined")
        started = time.perf_counter()
        lowered = {name.lower(): value for name, value in headers.items()}
        binary = any(name.startswith("ce-") for name in lowered)
        # Like Knative's ingress, a binary event's data is forwarded as is, never parsed.
        event = decode_http(lowered, b"" if binary else body)
        ttl = remaining_ttl(event)
        if ttl <= 0:
            self._count("ttl_exceeded")
            raise TTLExceeded(f"the {TTL_EXTENSION} hop budget of this event is used up")
        stored, triggers = self._stage(event, lowered, body, (namespace, broker), ttl)
        latency = (time.perf_counter() - started) * 1000.0
        hops = self._ingress_hops(stored, triggers, None, latency)
        _, jobs = self._queue.accept(stored, triggers, hops)
        self._accepted(jobs, hops, reply=False)
        return event.id

    def _stage(
        self,
        event: Event,
        headers: Mapping[str, str],
        body: bytes,
        where: tuple[str, str],
        ttl: int,
        *,
        trace: dict[str, str] | None = None,
    ) -> tuple[StoredEvent, list[str]]:
        now = self._clock.now()
        wire, body, extensions = arrival_form(event, headers, body, now)
        triggers = self._router.match(event, *where, extensions=extensions)
        stored = StoredEvent(
            id=event.id,
            type=event.type,
            source=event.source,
            subject=event.subject,
            namespace=where[0],
            broker=where[1],
            headers=wire,
            body=body,
            trace=trace_headers(headers) if trace is None else trace,
            ttl=ttl,
            received_at=now,
        )
        return stored, triggers

    def _ingress_hops(
        self, event: StoredEvent, triggers: list[str], trigger: str | None, latency: float
    ) -> list[Hop]:
        broker = f"{event.namespace}/{event.broker}"
        outcome, status = ("reply", 200) if trigger is not None else ("accepted", 202)
        hops = [self._hop(event, outcome, trigger, broker, status, latency=latency)]
        if not triggers:
            hops.append(self._hop(event, "no-match", None, broker, status))
        return hops

    def _accepted(self, jobs: list[Job], hops: list[Hop], *, reply: bool) -> None:
        self._count("accepted")
        if reply:
            self._count("replies")
        if not jobs:
            self._count("no_match")
        self._emit(hops)  # before scheduling: no delivery hop may be reported ahead of these
        self._schedule.add(jobs)

    # --- dispatcher -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher threads; deliveries pending in SQLite are redelivered."""
        if self._threads:
            return
        if self._sender.aborted:  # started again after a stop that cut connections
            self._sender = Sender()
        self._schedule.open(self._queue.pending())
        self._threads = [
            threading.Thread(target=self._run, name=f"mesh-dispatch-{i}", daemon=True)
            for i in range(self._worker_count)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop the dispatcher threads, letting in-flight attempts finish for `timeout` s.

        Attempts still running then are cut (their connections shut down). An attempt that
        fails while the broker stops does not count: its delivery stays pending as it was (same
        attempt number) and is made again after the next start.
        """
        self._schedule.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if busy := [thread for thread in self._threads if thread.is_alive()]:
            self._sender.abort()
            deadline = time.monotonic() + _ABORT_GRACE
            for thread in busy:
                thread.join(max(0.0, deadline - time.monotonic()))
            message = "%d deliveries in flight after %.1f s were cut (%d still busy)"
            _logger.warning(message, len(busy), timeout, sum(t.is_alive() for t in busy))
        self._threads = []
        self._sender.close()  # idle keep-alive connections would delay a gthread worker's exit

    def close(self) -> None:
        """Stop (if not stopped yet), then release the database."""
        self.stop()
        self._queue.close()

    def wait_idle(self, timeout: float) -> bool:
        """True once no delivery is pending or in flight; False after `timeout` seconds."""
        return self._schedule.wait_idle(timeout)

    def wait_quiet(self, timeout: float) -> float | None:
        """Wait until nothing is in flight or due now; return the next due time (None: idle).

        With a ManualClock, tests alternate `wait_quiet` and `clock.advance_to(due)` to run
        every retry without sleeping. Raises TimeoutError if deliveries keep running.
        """
        return self._schedule.wait_quiet(timeout)

    def _run(self) -> None:
        while (job := self._schedule.take()) is not None:
            try:
                self._attempt(job)
            except Exception:
                if not self._schedule.is_open:  # stopping: the store may be closed already
                    continue
                _logger.exception("delivery %s of %s failed unexpectedly", job.id, job.event.id)
                later = self._clock.now() + _ERROR_RETRY_SECONDS
                self._schedule.again(replace(job, next_at=later))
            finally:
                self._schedule.release()

    # --- one attempt ------------------------------------------------------------------------

    def _attempt(self, job: Job) -> None:
        trigger = self._triggers.get((job.event.namespace, job.trigger))
        if trigger is None:
            hop = self._hop(job.event, "failed", job.trigger, "(trigger removed)", None)
            self._finish(job, FAILED, None, [hop])
            return
        spec = trigger.delivery
        if job.phase == SUBSCRIBER:
            service, uri = trigger.subscriber_service, trigger.subscriber_uri
        else:
            service, uri = spec.dead_letter_service, spec.dead_letter_uri
        url, result = self._send(service, uri, job, spec.timeout)
        if result.status is None and not self._schedule.is_open:
            return  # cut short by stop(): not an attempt, the delivery stays pending as it was
        now = self._clock.now()
        verdict = judge(job, spec, url, result, now)
        hop = self._hop(
            job.event,
            verdict.outcome,
            trigger.name,
            url,
            result.status,
            latency=result.latency_ms,
            attempt=job.attempt + 1,
        )
        if verdict.next is not None:
            self._queue.reschedule(verdict.next, result.status, [hop], now)
            self._schedule.again(verdict.next)
            if verdict.outcome == "retrying":
                self._count("retried")
            self._emit([hop])
        elif verdict.outcome == "delivered":
            self._delivered(job, trigger, result, verdict.reply, [hop])
        else:
            state = DEAD_LETTERED if verdict.outcome == "dead-lettered" else FAILED
            self._finish(job, state, result.status, [hop])

    def _send(
        self, service: str | None, uri: str | None, job: Job, timeout: float | None
    ) -> tuple[str, Attempt]:
        headers, body = request_headers(job), job.event.body
        url = uri or ""
        if service is not None:
            path = "/" + url.lstrip("/")
            timeout = timeout or float(self.topology.services[service].timeout_seconds)
            try:
                url = self._resolver(service).rstrip("/") + path
            except Exception as error:  # the resolver is a callback: any failure is "unreachable"
                if not isinstance(error, OSError):
                    _logger.warning("resolving service %s failed: %r", service, error)
                url = f"http://{service}.{job.event.namespace}.svc.cluster.local{path}"
                return url, Attempt(None, 0.0, error=type(error).__name__)
        internal = knative_ingress(url, KNATIVE_INGRESS_HOSTS)
        if internal is None or self.topology.broker(*internal) is None:
            return url, self._sender.post(url, headers, body, timeout or DEFAULT_TIMEOUT_SECONDS)
        started = time.perf_counter()
        try:
            self.publish(headers, body, *internal)
            status, answer = 202, b""
        except EventfnError as error:
            status, answer = error.status, error.detail.encode()
        return url, Attempt(status, (time.perf_counter() - started) * 1000.0, body=answer)

    def _finish(self, job: Job, state: str, status: int | None, hops: list[Hop]) -> None:
        self._queue.finish(job, state, status, hops, now=self._clock.now())
        self._schedule.done(job)
        self._count("dead_lettered" if state == DEAD_LETTERED else "failed")
        self._emit(hops)

    def _delivered(
        self, job: Job, trigger: TriggerSpec, result: Attempt, reply: Event | None, hops: list[Hop]
    ) -> None:
        staged = None if reply is None else self._stage_reply(job, trigger, reply, result, hops)
        now = self._clock.now()
        stored = self._queue.finish(job, DELIVERED, result.status, hops, reply=staged, now=now)
        self._schedule.done(job)
        self._count("delivered")
        if stored is None:
            self._emit(hops)
        else:
            self._accepted(stored[1], hops, reply=True)

    def _stage_reply(
        self, job: Job, trigger: TriggerSpec, reply: Event, result: Attempt, hops: list[Hop]
    ) -> tuple[StoredEvent, list[str]] | None:
        event = job.event
        ttl = remaining_ttl(reply, inherited=event.ttl)
        trace = trace_headers(result.headers) or dict(event.trace)
        where = (event.namespace, event.broker)
        staged = self._stage(reply, result.headers, result.body, where, ttl, trace=trace)
        if ttl <= 0:
            self._count("ttl_exceeded")
            hops.append(self._hop(staged[0], "failed", trigger.name, "/".join(where), None))
            return None
        hops.extend(self._ingress_hops(staged[0], staged[1], trigger.name, 0.0))
        return staged

    # --- records ----------------------------------------------------------------------------

    def _hop(
        self,
        event: StoredEvent,
        outcome: str,
        trigger: str | None,
        destination: str,
        status: int | None,
        *,
        latency: float = 0.0,
        attempt: int = 0,
    ) -> Hop:
        now = self._clock.now()
        return hop_of(
            event, outcome, trigger, destination, status, at=now, latency=latency, attempt=attempt
        )

    def _emit(self, hops: Iterable[Hop]) -> None:
        if self._on_hop is None:
            return
        for hop in hops:
            try:
                self._on_hop(hop)
            except Exception:
                _logger.exception("the on_hop callback failed")

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    @property
    def stats(self) -> dict[str, int]:
        """Counters since this Broker was created (`failed` and `ttl_exceeded` included)."""
        with self._lock:
            return {key: self._counts[key] for key in STAT_KEYS + EXTRA_STAT_KEYS}

    def events(self, limit: int = 100, type_prefix: str | None = None) -> list[dict[str, Any]]:
        """The event log, newest first, with each event's delivery states."""
        return self._queue.events(limit, type_prefix)

    def hops(self, event_id: str | None = None) -> list[Hop]:
        """The recorded hops of one event (or the latest hops of all events), oldest first."""
        return self._queue.hops(event_id)

    def wsgi(self) -> WSGIApplication:
        """The ingress as a WSGI application (`POST /<namespace>/<broker>`)."""
        return IngressApp(self)
