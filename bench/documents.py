"""Documents/s of the text-extractor -> sentiment-analyzer chain on the demo PDF, in-process.

Both functions are built with `create_app` (idempotency on, SQLite in a fresh state directory,
schemas validated, tracing off) and called through their WSGI test clients; the object store is
moto's S3 server on loopback, the broker a loopback HTTP server that records what text-extractor
emits. For each document: the `eventfn.storage.object.created.v1` event goes to text-extractor
(HEAD, GET, pypdf, PUT of the text, emit), the emitted `eventfn.document.text.extracted.v1` to
sentiment-analyzer (GET of the text, VADER per sentence, upsert, emit). Every document is the
demo PDF under its own key (`documents/bench-<n>.pdf`, uploaded before timing starts), so every
delivery does the full work: none is an idempotent replay.

The runtime builds a new boto3 client for every event that touches `ctx.objects` (create_app
leaves `Services.objects_factory` unset); the `chain, one S3 client` row measures the same chain
with one client per process (the factory set on both apps after `create_app`), to show what
that costs.

The named baseline, `direct`, is the limit of the same work without eventfn, S3 or a database:
pypdf `PdfReader(...).pages[i].extract_text()` for every page, then VADER `polarity_scores` for
every sentence (a plain regex split). The chain's rate is reported as a share of it.

`cpu ms/doc` is the process's CPU time per document (moto's server threads included): less
sensitive than docs/s to other processes on a shared machine, blind to waits (fsync, sockets).

The targets run in R interleaved rounds (order rotated per round, as bench/runtime.py does);
the table shows medians, and each ratio is taken within a round before its median, so load
from other processes on a shared machine distorts it less. Bounded by `--count` documents and
`--max-seconds` per run.

    .venv/bin/python bench/documents.py [--count 60] [--rounds 3] [--warmup 5]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "eventfn-data"
CREATED = "eventfn.storage.object.created.v1"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Stage:
    """Per-document timings of one stage, in seconds."""

    name: str
    seconds: list[float]

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.seconds)
        return {
            "mean_ms": 1000 * statistics.fmean(ordered),
            "p50_ms": 1000 * ordered[len(ordered) // 2],
            "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        }


def demo_pdf() -> bytes:
    sys.path.insert(0, str(ROOT / "demo"))
    try:
        from builders_documents import quarterly_review_pdf
    finally:
        sys.path.remove(str(ROOT / "demo"))
    content: bytes = quarterly_review_pdf().content
    return content


# -- the baseline ------------------------------------------------------------------------------


def direct(pdf: bytes, count: int, max_seconds: float) -> dict[str, Any]:
    """Documents/s of pypdf extract_text + VADER polarity_scores called directly."""
    from pypdf import PdfReader
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    sentences = 0
    started, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < count and time.perf_counter() - started < max_seconds:
        reader = PdfReader(io.BytesIO(pdf))
        text = "\n".join(page.extract_text() for page in reader.pages)
        parts = [part for part in _SENTENCE_END.split(" ".join(text.split())) if part]
        for part in parts:
            vader.polarity_scores(part)
        sentences = len(parts)
        done += 1
    return {
        "documents_per_second": done / (time.perf_counter() - started),
        "cpu_ms_per_document": 1000 * (time.process_time() - cpu) / done,
        "sentences": sentences,
    }


# -- the chain ---------------------------------------------------------------------------------


@contextmanager
def recording_sink() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bench/default", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def moto_s3() -> Iterator[str]:
    import socket

    import urllib3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    urllib3.request("POST", endpoint + "/moto-api/reset", timeout=10.0)
    try:
        yield endpoint
    finally:
        server.stop()


def _app(function: str, state: Path, sink: str, endpoint: str, *, shared_client: bool) -> Any:
    from eventfn import Settings, create_app
    from eventfn._objects import ObjectStore
    from eventfn._tracing import Tracer

    settings = Settings(
        functions_dir=ROOT / "functions",
        schemas_dir=ROOT / "schemas",
        state_dir=state,
        sink=sink,
        emit_retries=0,
        s3_endpoint_url=endpoint,
        bucket=BUCKET,
        log_level="WARNING",
    )
    wsgi = create_app(function, settings=settings, tracer=Tracer(function, enabled=False), env={})
    if shared_client:
        store = ObjectStore.from_settings(settings)
        wsgi.services.objects_factory = lambda: store
    return wsgi


def _created(key: str, etag: str, size: int) -> Any:
    from eventfn._context import derived_id
    from eventfn._event import Event

    data = {"bucket": BUCKET, "key": key, "size": size, "etag": etag}
    return Event(
        type=CREATED,
        source=f"s3://{BUCKET}",
        id=derived_id("bench", key, etag),
        data=data,
        subject=key,
        datacontenttype="application/json",
    )


def chain(
    pdf: bytes, count: int, warmup: int, max_seconds: float, *, shared_client: bool = False
) -> dict[str, Any]:
    """Documents/s through both functions, and the time of each stage."""
    import boto3

    from eventfn._codec import encode_binary

    stages = [Stage("text-extractor", []), Stage("sentiment-analyzer", [])]
    with tempfile.TemporaryDirectory() as tmp, moto_s3() as endpoint, recording_sink() as sink:
        url, received = sink
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        events = []
        for n in range(warmup + count):
            key = f"documents/bench-{n:05d}.pdf"
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=pdf)["ETag"].strip('"')
            events.append(_created(key, etag, len(pdf)))
        state = Path(tmp)
        extractor = _app("text-extractor", state / "x", url, endpoint, shared_client=shared_client)
        analyzer = _app(
            "sentiment-analyzer", state / "s", url, endpoint, shared_client=shared_client
        )
        clients = extractor.test_client(), analyzer.test_client()
        started, done = 0.0, 0
        for n, event in enumerate(events):
            if n == warmup:
                started, cpu, done = time.perf_counter(), time.process_time(), 0
                for stage in stages:
                    stage.seconds.clear()
            if warmup <= n and time.perf_counter() - started > max_seconds:
                break
            payload: tuple[dict[str, str], bytes] = encode_binary(event)
            for stage, client in zip(stages, clients, strict=True):
                began = time.perf_counter()
                response = client.post("/", data=payload[1], headers=payload[0])
                stage.seconds.append(time.perf_counter() - began)
                if response.status_code != 204:
                    raise SystemExit(f"{stage.name} answered {response.status_code}")
                payload = received[-1]  # what the stage emitted feeds the next
            done += 1
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        extractor.close()
        analyzer.close()
    return {
        "documents": done,
        "seconds": elapsed,
        "documents_per_second": done / elapsed,
        "cpu_ms_per_document": 1000 * cpu / done,
        "stages": {stage.name: stage.summary() for stage in stages},
    }


CHAIN = "chain"
SHARED = "chain, one S3 client"
DIRECT = "direct (pypdf + VADER)"


def one_round(pdf: bytes, args: argparse.Namespace, order: int) -> dict[str, Any]:
    """Every target once, in an order rotated per round; docs/s and ratios to `direct`."""
    targets = [CHAIN, SHARED, DIRECT]
    shift = order % len(targets)
    results: dict[str, Any] = {}
    for target in targets[shift:] + targets[:shift]:
        if target == DIRECT:
            results[target] = direct(pdf, args.count, args.max_seconds)
        else:
            results[target] = chain(
                pdf, args.count, args.warmup, args.max_seconds, shared_client=target == SHARED
            )
    limit = results[DIRECT]["documents_per_second"]
    for result in results.values():
        result["ratio"] = result["documents_per_second"] / limit
    return results


def report(rounds: list[dict[str, Any]]) -> None:
    """Medians over the rounds (the ratio is taken within each round, then the median)."""
    print(f"\n{'target':<28} {'docs/s':>8} {'/ direct':>9} {'cpu ms/doc':>11}   docs/s per round")
    for target in (CHAIN, SHARED, DIRECT):
        rates = [r[target]["documents_per_second"] for r in rounds]
        ratio = statistics.median(r[target]["ratio"] for r in rounds)
        cpu = statistics.median(r[target]["cpu_ms_per_document"] for r in rounds)
        each = " ".join(f"{rate:.1f}" for rate in rates)
        print(f"{target:<28} {statistics.median(rates):>8.1f} {ratio:>9.3f} {cpu:>11.1f}   {each}")
    print(f"\n{'run / stage (median of rounds)':<42} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for target in (CHAIN, SHARED):
        for stage in rounds[0][target]["stages"]:
            values = [r[target]["stages"][stage] for r in rounds]
            cells = [
                statistics.median(v[key] for v in values) for key in ("mean_ms", "p50_ms", "p95_ms")
            ]
            print(f"{target + ' / ' + stage:<42} " + " ".join(f"{c:>8.2f}" for c in cells))
    sentences = rounds[0][DIRECT]["sentences"]
    print(f"\n(direct scores {sentences} sentences per document; load {os.getloadavg()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60, help="timed documents per run (60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed documents first (5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="bound per run (60)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    pdf = demo_pdf()
    print(
        f"demo PDF: {len(pdf)} bytes; {args.rounds} rounds of {args.count} documents per "
        f"target ({args.warmup} warm-up)",
        flush=True,
    )
    rounds = [one_round(pdf, args, n) for n in range(args.rounds)]
    report(rounds)
    result = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "rounds": rounds,
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.output / f"documents-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
