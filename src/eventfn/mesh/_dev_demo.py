"""`eventfn dev --demo`: feed the sample inputs in, follow every chain, say what happened.

Inputs come from `demo/inputs/manifest.json` (written by `demo/make_inputs.py`). An `upload`
goes into the embedded S3, whose notification reaches storage-source; its chain is the trace
storage-source started for that webhook. An `event` is published to the broker ingress over
HTTP with a fresh `traceparent`; its chain is that trace. Once every webhook is final and the
broker is idle, each chain is checked: every expected event type appeared and no hop failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from eventfn._errors import ConfigurationError
from eventfn.mesh._broker import Broker
from eventfn.mesh._dev_events import event_data
from eventfn.mesh._dev_output import MeshPrinter
from eventfn.mesh._records import Hop
from eventfn.mesh._s3_notify import NotificationRelay, WebhookDelivery

MANIFEST = "manifest.json"
BAD_OUTCOMES = frozenset({"failed", "dead-lettered"})
_SLICE = 0.25


@dataclass(frozen=True)
class DemoSpec:
    """One entry of the inputs manifest."""

    name: str
    kind: str
    path: Path
    description: str
    expect: tuple[str, ...]
    requires: tuple[str, ...]
    key: str | None
    content_type: str | None


@dataclass
class Chain:
    """What became of one input."""

    spec: DemoSpec
    started: float = 0.0
    trace_id: str | None = None
    webhook: WebhookDelivery | None = None
    hops: list[Hop] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class DemoContext:
    """The running mesh, as the demo needs it."""

    broker: Broker
    relay: NotificationRelay | None
    s3: Any
    bucket: str
    ingress: str  # the full URL of the broker the inputs are published to
    services: set[str]
    printer: MeshPrinter
    stopping: threading.Event
    broker_db: Path
    timeout: float = 120.0


def load_inputs(demo_dir: Path) -> list[DemoSpec]:
    """The inputs of `demo_dir/inputs`, (re)built first by `demo_dir/make_inputs.py`."""
    inputs = demo_dir / "inputs"
    builder = demo_dir / "make_inputs.py"
    if builder.is_file():  # deterministic and incremental: only changed files are rewritten
        subprocess.run(
            [sys.executable, str(builder), "--out", str(inputs)], check=True, capture_output=True
        )
    if not (inputs / MANIFEST).is_file():
        raise ConfigurationError(f"no demo inputs in {inputs} (run python demo/make_inputs.py)")
    manifest = json.loads((inputs / MANIFEST).read_text(encoding="utf-8"))
    return [
        DemoSpec(
            name=str(entry["name"]),
            kind=str(entry["kind"]),
            path=inputs / str(entry["file"]),
            description=str(entry.get("description", "")),
            expect=tuple(entry.get("expect", ())),
            requires=tuple(entry.get("requires", ())),
            key=entry.get("key"),
            content_type=entry.get("content_type"),
        )
        for entry in manifest["inputs"]
    ]


def run_demo(ctx: DemoContext, demo_dir: Path) -> bool:
    """Feed every input, wait for the chains, print them; True when every chain succeeded."""
    specs = load_inputs(demo_dir)
    ctx.printer.message(f"demo: {len(specs)} inputs from {demo_dir / 'inputs'}")
    chains = [_start(ctx, spec) for spec in specs]
    deadline = time.monotonic() + ctx.timeout
    for chain in chains:
        if chain.spec.kind == "upload" and not chain.skipped and not chain.errors:
            _await_webhook(ctx, chain, deadline)
    if not _await_idle(ctx, deadline):
        for chain in chains:
            chain.errors.append(f"the broker still had deliveries pending after {ctx.timeout} s")
    recorded = ctx.broker.hops()
    for chain in chains:
        if not chain.skipped:
            _check(chain, recorded)
        _report(ctx, chain)
    ok = all(chain.ok for chain in chains)
    ctx.printer.message(
        f"demo: {sum(c.ok and not c.skipped for c in chains)} chains complete, "
        f"{sum(not c.ok for c in chains)} failed, {sum(bool(c.skipped) for c in chains)} skipped"
    )
    return ok


def _start(ctx: DemoContext, spec: DemoSpec) -> Chain:
    chain = Chain(spec, started=time.time())
    missing = [name for name in spec.requires if name not in ctx.services]
    if missing:
        chain.skipped = f"the topology has no {', '.join(missing)}"
    elif spec.kind == "upload" and (ctx.relay is None or spec.key is None):
        chain.errors.append("uploads need the storage-source function in the topology")
    elif spec.kind == "upload":
        extra = {"ContentType": spec.content_type} if spec.content_type else {}
        body = spec.path.read_bytes()
        ctx.s3.put_object(Bucket=ctx.bucket, Key=spec.key, Body=body, **extra)
    elif spec.kind == "event":
        _publish(ctx, chain)
    else:
        chain.errors.append(f"unknown input kind {spec.kind!r}")
    return chain


def _publish(ctx: DemoContext, chain: Chain) -> None:
    document = json.loads(chain.spec.path.read_text(encoding="utf-8"))
    document["id"] = f"{document.get('id', chain.spec.name)}-{os.urandom(4).hex()}"
    chain.trace_id = os.urandom(16).hex()
    headers = {
        "content-type": "application/cloudevents+json",
        "traceparent": f"00-{chain.trace_id}-{os.urandom(8).hex()}-01",
    }
    body = json.dumps(document).encode()
    try:
        response = urllib3.request("POST", ctx.ingress, body=body, headers=headers, timeout=30.0)
    except urllib3.exceptions.HTTPError:
        chain.errors.append(f"the broker ingress {ctx.ingress} is unreachable")
        return
    if response.status != 202:
        chain.errors.append(f"the broker answered {response.status} to the published event")


def _await_webhook(ctx: DemoContext, chain: Chain, deadline: float) -> None:
    assert ctx.relay is not None and chain.spec.key is not None
    while not ctx.stopping.is_set() and time.monotonic() < deadline:
        found = ctx.relay.wait_for(ctx.bucket, chain.spec.key, _SLICE, after=chain.started)
        if found is not None:
            chain.webhook, chain.trace_id = found, found.trace_id
            if found.outcome != "delivered":
                chain.errors.append(f"storage-source answered {found.status} to the webhook")
            return
    chain.errors.append("no bucket notification reached storage-source in time")


def _await_idle(ctx: DemoContext, deadline: float) -> bool:
    while not ctx.stopping.is_set() and time.monotonic() < deadline:
        if ctx.broker.wait_idle(_SLICE):
            return True
    return ctx.broker.wait_idle(0)


def _check(chain: Chain, recorded: list[Hop]) -> None:
    if chain.trace_id is None:
        return
    chain.hops = [hop for hop in recorded if hop.trace_id == chain.trace_id]
    seen = {hop.event_type for hop in chain.hops}
    for expected in chain.spec.expect:
        if expected not in seen:
            chain.errors.append(f"no {expected} event appeared in the chain")
    for hop in chain.hops:
        if hop.outcome in BAD_OUTCOMES:
            chain.errors.append(f"{hop.event_type} {hop.outcome} at {hop.trigger or 'ingress'}")


def _report(ctx: DemoContext, chain: Chain) -> None:
    printer = ctx.printer
    spec = chain.spec
    payload = {
        "input": spec.name,
        "ok": chain.ok,
        "skipped": chain.skipped,
        "trace_id": chain.trace_id,
        "errors": chain.errors,
        "webhook": None if chain.webhook is None else asdict(chain.webhook),
        "hops": [asdict(hop) for hop in chain.hops],
    }
    printer.record("demo", payload)
    if printer.json_lines:
        return
    target = f"s3://{ctx.bucket}/{spec.key}" if spec.kind == "upload" else ctx.ingress
    printer.message(f"\n▶ {spec.name}: {spec.kind} {spec.path.name} → {target}")
    if chain.skipped:
        printer.message(f"  - skipped: {chain.skipped}")
        return
    for at, line in _timeline(ctx, chain):
        printer.message(f"    +{(at - chain.started) * 1000:6.0f} ms  {line}")
    for line in _results(ctx, chain):
        printer.message(line)
    mark = "✔" if chain.ok else "✘"
    elapsed = (max((h.time for h in chain.hops), default=chain.started) - chain.started) * 1000
    trace = f", one trace {chain.trace_id[:8]}…" if chain.trace_id else ""
    events = len({hop.event_id for hop in chain.hops})
    verdict = "complete" if chain.ok else "FAILED: " + "; ".join(chain.errors)
    counts = f"{_plural(events, 'event')}, {_plural(len(chain.hops), 'hop')}"
    printer.message(f"  {mark} {verdict} ({counts}, {elapsed:.0f} ms{trace})")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _timeline(ctx: DemoContext, chain: Chain) -> list[tuple[float, str]]:
    """(start time, line) of the webhook call and of every hop of the chain."""
    printer = ctx.printer
    lines = []
    if chain.webhook is not None:
        hook = chain.webhook
        text = (
            f"{hook.event_name:<34} webhook → storage-source  {hook.status} {hook.outcome}  "
            f"{hook.latency_ms:.1f} ms  (emitted {hook.emitted})"
        )
        lines.append((hook.time - hook.latency_ms / 1000, text))
    for call in list(printer.calls):
        if chain.trace_id is not None and call.trace_id == chain.trace_id:
            route = f"{call.method} {call.path} → {call.service}"
            text = f"{'direct call':<34} {route}  {call.status}  {call.latency_ms:.1f} ms"
            lines.append((call.time - call.latency_ms / 1000, text))
    for hop in chain.hops:
        cold = printer.cold_by_hop.get((hop.event_id, hop.trigger or "", hop.attempt))
        extra = f"  (cold start {cold:.2f} s)" if cold is not None else ""
        quiet = hop.outcome in ("no-match", "reply")
        timing = "" if quiet else f"  {hop.latency_ms:.1f} ms"
        status = "" if hop.status is None or hop.outcome == "no-match" else f"{hop.status} "
        text = f"{hop.event_type:<34} {printer.route(hop)}  {status}{hop.outcome}{timing}{extra}"
        lines.append((hop.time - hop.latency_ms / 1000, text))
    lines.sort(key=lambda item: item[0])
    return lines


def _shown(value: object) -> str:
    """Binary event data (e.g. Avro) is shown by size, not dumped."""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return repr(value)


def _results(ctx: DemoContext, chain: Chain) -> list[str]:
    """One line per event of the chain: where it ended, and its data."""
    lines = []
    order = list(dict.fromkeys(hop.event_id for hop in chain.hops))
    for event_id in order:
        hops = [hop for hop in chain.hops if hop.event_id == event_id]
        ends = [
            f"→ {ctx.printer.subscriber(h.trigger)} {h.outcome}"
            for h in hops
            if h.trigger is not None and h.outcome not in {"reply", "retrying"}
        ]
        if any(h.outcome == "no-match" for h in hops):
            ends.append("→ no subscriber (yet)")
        data = json.dumps(event_data(ctx.broker_db, event_id), ensure_ascii=False, default=_shown)
        data = data if len(data) <= 140 else data[:137] + "..."
        lines.append(f"  result {hops[0].event_type:<34} {', '.join(ends)}  {data}")
    return lines
