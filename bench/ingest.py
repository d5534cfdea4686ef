"""Authenticated POSTs/s through ingest-api into the local mesh: what JWT verification and schema
validation cost.

One `eventfn dev` subprocess runs a broker and two copies of ingest-api (both kept warm, gthread,
`EVENTFN_THREADS` threads, idempotency off):

- `secure`: RS256 tokens verified against a JWKS file (key generated here), issuer, audience,
  expiry and scope checked, the body validated against `eventfn.order.confirmed.v1`;
- `open`: the same function with `INGEST_AUTH=off INGEST_VALIDATE=off EVENTFN_ALLOW_INSECURE=1`
  (it says so loudly in its log), the body published as sent.

Both get the same requests — one bearer token (signed once; verification runs on every request)
and an order with three items — from `--clients` keep-alive connections, for `--duration`
seconds per round, in `--rounds` interleaved rounds; every 202 is an event the broker has durably
stored. Reported: the median req/s of each, p50/p99 latency, and secure/open (target >= 0.7).
Loopback only; bounded by time. Results also go to bench/results/ingest-<UTC timestamp>.json.

    .venv/bin/python bench/ingest.py [--duration 5] [--rounds 3] [--clients 8] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jwt
import urllib3
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROOT = Path(__file__).resolve().parents[1]
EVENTFN = str(Path(sys.executable).with_name("eventfn"))
ORDER = "eventfn.order.confirmed.v1"
ISSUER = "https://auth.bench.eventfn/"
AUDIENCE = "eventfn-ingest"
TARGET_RATIO = 0.7
START_TIMEOUT = 90.0
SERVICE = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: {name}, namespace: bench}}
spec:
  template:
    metadata:
      annotations: {{autoscaling.knative.dev/min-scale: "1"}}
    spec:
      containerConcurrency: {threads}
      timeoutSeconds: 30
      containers:
        - name: function
          image: ghcr.io/eventfn/ingest-api:bench
          env:
            - {{name: EVENTFN_FUNCTION, value: ingest-api}}
            - {{name: EVENTFN_THREADS, value: "{threads}"}}
            - {{name: EVENTFN_IDEMPOTENCY, value: "false"}}
            - {{name: K_SINK, value: http://broker-ingress/bench/default}}
{extra}"""
BROKER = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: bench}
spec: {}
---"""
SECURE_ENV = f"""            - {{name: INGEST_JWT_ALGORITHMS, value: "RS256"}}
            - {{name: INGEST_JWT_ISSUER, value: "{ISSUER}"}}
            - {{name: INGEST_JWT_AUDIENCE, value: "{AUDIENCE}"}}
"""
OPEN_ENV = """            - {name: INGEST_AUTH, value: "off"}
            - {name: INGEST_VALIDATE, value: "off"}
            - {name: EVENTFN_ALLOW_INSECURE, value: "1"}
"""


@dataclass
class Round:
    """One load period against one target."""

    target: str
    seconds: float
    accepted: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.accepted / self.seconds


def write_topology(root: Path, threads: int) -> tuple[Path, str]:
    """Manifests for the two services, the JWKS file, and a token valid for an hour."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "bench", "alg": "RS256"}
    (root / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    manifests = root / "manifests"
    manifests.mkdir()
    services = [
        SERVICE.format(name="secure", threads=threads, extra=SECURE_ENV),
        SERVICE.format(name="open", threads=threads, extra=OPEN_ENV),
    ]
    (manifests / "bench.yaml").write_text(BROKER + "\n---\n".join(services))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 3600}
    claims["scope"] = f"events:write:{ORDER}"
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    return manifests, token


@contextmanager
def mesh(root: Path, manifests: Path) -> Iterator[dict[str, str]]:
    """`eventfn dev` with the two services; yields service name -> URL."""
    state = root / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFN_", "INGEST_"))}
    env.update(EVENTFN_TRACING="off", INGEST_JWKS_FILE=str(root / "jwks.json"))
    command = [
        EVENTFN, "dev", "--manifests", str(manifests), "--state-dir", str(state),
        "--functions-dir", str(ROOT / "functions"), "--schemas-dir", str(ROOT / "schemas"),
        "--port", "0", "--idle-seconds", "600", "--json",
    ]  # fmt: skip
    with (root / "dev.out").open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield wait_ready(process, state, ("secure", "open"))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(
    process: subprocess.Popen[bytes], state: Path, services: tuple[str, ...]
) -> dict[str, str]:
    """The services' URLs once dev.json exists (from the pid files: `<pid> <port>`)."""
    deadline = time.monotonic() + START_TIMEOUT
    while not (state / "dev.json").is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"eventfn dev did not start (see {state.parent / 'dev.out'})")
        time.sleep(0.1)
    urls = {}
    for name in services:
        _, port = (state / "run" / f"{name}.pid").read_text().split()
        urls[name] = f"http://127.0.0.1:{port}"
    return urls


def order_body(n: int) -> bytes:
    items = [{"sku": f"SKU-{(n + i) % 97:03d}", "quantity": 1 + i} for i in range(3)]
    return json.dumps(
        {"order_id": f"bench-{n}", "items": items, "customer": {"id": "c-1"}}
    ).encode()


def load(url: str, token: str, target: str, clients: int, seconds: float) -> Round:
    """`clients` threads POSTing orders over keep-alive connections for `seconds`."""
    result = Round(target, seconds)
    lock = threading.Lock()
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", int(url.rsplit(":", 1)[1]), maxsize=1)
        accepted = failed = 0
        latencies: list[float] = []
        n = index * 1_000_000
        while (started := time.perf_counter()) < stop_at:
            n += 1
            response = pool.request(
                "POST", f"/v1/events/{ORDER}", body=order_body(n), headers=headers, retries=False
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status == 202:
                accepted += 1
            else:
                failed += 1
        pool.close()
        with lock:
            result.accepted += accepted
            result.failed += failed
            result.latencies_ms.extend(latencies)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def check_security(urls: dict[str, str], token: str) -> dict[str, int]:
    """The secure endpoint refuses a missing token and a bad body; the open one does not."""
    http = urllib3.PoolManager()
    path = f"/v1/events/{ORDER}"
    bad = json.dumps({"order_id": "x", "items": []}).encode()
    json_ct = {"content-type": "application/json"}
    return {
        "secure_without_token": http.request(
            "POST", urls["secure"] + path, body=order_body(0), headers=json_ct
        ).status,
        "secure_bad_body": http.request(
            "POST",
            urls["secure"] + path,
            body=bad,
            headers={**json_ct, "authorization": f"Bearer {token}"},
        ).status,
        "open_without_token_bad_body": http.request(
            "POST", urls["open"] + path, body=bad, headers=json_ct
        ).status,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def summarise(rounds: list[Round]) -> dict[str, dict[str, float]]:
    summary = {}
    for target in ("secure", "open"):
        mine = [r for r in rounds if r.target == target]
        latencies = [value for r in mine for value in r.latencies_ms]
        summary[target] = {
            "rps": statistics.median(r.rps for r in mine),
            "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99),
            "failed": sum(r.failed for r in mine),
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round (<= 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (<= 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (<= 64)")
    parser.add_argument("--threads", type=int, default=4, help="ingest-api threads (<= 32)")
    args = parser.parse_args()
    if not (
        0 < args.duration <= 30
        and 0 < args.rounds <= 10
        and 0 < args.clients <= 64
        and 0 < args.threads <= 32
    ):
        parser.error(
            "out of bounds: --duration <= 30, --rounds <= 10, --clients <= 64, --threads <= 32"
        )
    with tempfile.TemporaryDirectory(prefix="eventfn-bench-ingest-") as tmp:
        root = Path(tmp)
        manifests, token = write_topology(root, args.threads)
        with mesh(root, manifests) as urls:
            statuses = check_security(urls, token)
            for target in ("secure", "open"):
                load(urls[target], token, target, args.clients, 1.0)  # warm-up
            rounds = []
            for index in range(args.rounds):
                order = ("secure", "open") if index % 2 == 0 else ("open", "secure")
                rounds += [load(urls[t], token, t, args.clients, args.duration) for t in order]
    report(args, statuses, rounds)
    return 0


def report(args: argparse.Namespace, statuses: dict[str, int], rounds: list[Round]) -> None:
    summary = summarise(rounds)
    ratio = summary["secure"]["rps"] / summary["open"]["rps"] if summary["open"]["rps"] else 0.0
    print(
        f"ingest-api -> eventfn dev broker: {args.clients} clients, {args.threads} threads, "
        f"{args.rounds} x {args.duration:g} s; load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'target':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-202':>8}")
    for target, row in summary.items():
        print(
            f"{target:<8} {row['rps']:>8.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['failed']:>8.0f}"
        )
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"secure/open = {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
    print("sanity: " + ", ".join(f"{k}={v}" for k, v in statuses.items()))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "args": vars(args),
        "load_average": os.getloadavg(),
        "summary": summary,
        "ratio": ratio,
        "sanity": statuses,
        "rounds": [
            {"target": r.target, "rps": r.rps, "accepted": r.accepted, "failed": r.failed}
            for r in rounds
        ],
    }
    (results / f"ingest-{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
