"""Load generation on loopback: wrk with a Lua script when installed, else an asyncio client.

Both send the same binary-mode CloudEvent with a unique `ce-id` per request over N keep-alive
connections (reconnecting when a server closes, as gunicorn's sync worker does after every
response), stop after `duration` seconds or `limit` requests, whichever comes first, and count
2xx answers separately from everything else.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.events import BODY, event_headers, raw_request

WRK = "wrk"
PYTHON_CLIENT = "python-asyncio"
_REQUEST_TIMEOUT_S = 10.0


@dataclass
class LoadResult:
    """One bounded load run against one server."""

    client: str
    seconds: float
    ok: int  # 2xx answers
    failed: int  # other statuses, socket errors and timeouts
    p50_ms: float
    p99_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with req/s."""
        return {**asdict(self), "rps": self.rps}


def pick_client(requested: str) -> str:
    """`wrk` when asked for or available (`auto`), else the asyncio client."""
    if requested == "python":
        return PYTHON_CLIENT
    if shutil.which(WRK):
        return WRK
    if requested == "wrk":
        raise SystemExit("bench: --client wrk, but wrk is not on PATH")
    return PYTHON_CLIENT


def run_load(
    client: str, port: int, *, duration: float, connections: int, limit: int, prefix: str
) -> LoadResult:
    """One bounded run with the chosen client."""
    if client == WRK:
        return _run_wrk(port, duration, connections, limit, prefix)
    return asyncio.run(_run_python(port, duration, connections, limit, prefix))


# --- wrk ---------------------------------------------------------------------------------------

_LUA = """
local prefix = "%(prefix)s"
local limit = %(limit)d
local body = '%(body)s'
local headers = %(headers)s
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  ok = 0
  bad = 0
end

function request()
  sent = sent + 1
  headers["ce-id"] = prefix .. "-" .. tid .. "-" .. sent
  return wrk.format("POST", "/", headers, body)
end

function response(status, hdrs, resp_body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
  if ok + bad >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"ok": %%d, "bad": %%d, "duration_us": %%d, "p50_us": %%f, "p99_us": %%f, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    total_ok, total_bad, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    e.connect, e.read, e.write, e.timeout))
end
"""


def _lua_script(prefix: str, limit: int, threads: int) -> str:
    headers = event_headers("x")  # wrk.format adds Content-Length
    table = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}"
    return _LUA % {
        "prefix": prefix,
        "limit": max(1, limit // threads),
        "body": BODY.decode(),
        "headers": table,
    }


def _run_wrk(port: int, duration: float, connections: int, limit: int, prefix: str) -> LoadResult:
    threads = 1
    with tempfile.TemporaryDirectory(prefix="eventfn-bench-wrk-") as tmp:
        script = Path(tmp) / "event.lua"
        script.write_text(_lua_script(prefix, limit, threads))
        argv = [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            f"{int(_REQUEST_TIMEOUT_S)}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/",
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    stats = json.loads(line.removeprefix("BENCHJSON "))
    socket_errors = stats["connect"] + stats["read"] + stats["write"] + stats["timeout"]
    return LoadResult(
        client=WRK,
        seconds=stats["duration_us"] / 1e6,
        ok=stats["ok"],
        failed=stats["bad"] + stats["timeout"],
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        extra={"socket_errors": socket_errors},
    )


# --- asyncio client ----------------------------------------------------------------------------


@dataclass
class _Shared:
    deadline: float
    remaining: int
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    connects: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one response, its body read and discarded."""
    status_line = await reader.readuntil(b"\r\n")
    version, status = status_line.split(b" ", 2)[:2]
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get(b"transfer-encoding") == b"chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    elif b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
    else:
        await reader.read()
        return int(status), False
    keep = headers.get(b"connection") != b"close" and version == b"HTTP/1.1"
    return int(status), keep


async def _connection(port: int, shared: _Shared, prefix: str) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    sent = 0
    while shared.remaining > 0 and time.perf_counter() < shared.deadline:
        shared.remaining -= 1
        sent += 1
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                shared.connects += 1
            started = time.perf_counter()
            writer.write(raw_request(f"{prefix}-{sent}"))
            status, keep = await asyncio.wait_for(_read_response(reader), _REQUEST_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            shared.failed += 1
            keep, status = False, 0
        else:
            shared.latencies.append(time.perf_counter() - started)
            if 200 <= status < 300:
                shared.ok += 1
            else:
                shared.failed += 1
        if not keep and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _run_python(
    port: int, duration: float, connections: int, limit: int, prefix: str
) -> LoadResult:
    started = time.perf_counter()
    shared = _Shared(deadline=started + duration, remaining=limit)
    await asyncio.gather(*(_connection(port, shared, f"{prefix}-{i}") for i in range(connections)))
    seconds = time.perf_counter() - started
    latencies = sorted(shared.latencies)
    return LoadResult(
        client=PYTHON_CLIENT,
        seconds=seconds,
        ok=shared.ok,
        failed=shared.failed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        extra={"connects": shared.connects},
    )


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
