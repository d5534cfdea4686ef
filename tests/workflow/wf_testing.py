"""Helpers of the workflow tests: a controllable clock, a loopback task server, chains."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eventfn._codec import decode_http, encode_binary
from eventfn._event import Event


class Clock:
    """Time that only moves when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


Behaviour = Callable[[Event], tuple[int, Any]]


def add_one(event: Event) -> tuple[int, Any]:
    """Reply {"v": v + 1} — the step of the Task chains."""
    return 200, {"v": event.data["v"] + 1}


@contextmanager
def task_server(behaviour: Behaviour = add_one) -> Iterator[tuple[str, list[Event]]]:
    """A loopback function: replies to each task event with `behaviour`; yields (url, received)."""
    received: list[Event] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            event = decode_http({k.lower(): v for k, v in self.headers.items()}, body)
            with lock:
                received.append(event)
            status, data = behaviour(event)
            if 200 <= status < 300:
                reply = Event.new("test.task.replied.v1", "test/tasks", data)
                headers, payload = encode_binary(reply)
            else:
                headers = {"content-type": "application/problem+json"}
                payload = json.dumps({"type": f"urn:eventfn:problem:{data}"}).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()


def pass_chain(length: int) -> dict[str, Any]:
    """S1 -> … -> S<length>: each Pass adds its number under $.trail."""
    states = {
        f"S{i}": {
            "Type": "Pass",
            "Parameters": {"v.$": "$.v", "last": i},
            **({"Next": f"S{i + 1}"} if i < length else {"End": True}),
        }
        for i in range(1, length + 1)
    }
    return {"StartAt": "S1", "States": states}


def task_chain(length: int, retry: bool = False) -> dict[str, Any]:
    """T1 -> … -> T<length>: each Task calls function:adder, which adds one to $.v."""
    retrier = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 5}]
    states = {
        f"T{i}": {
            "Type": "Task",
            "Resource": "function:adder",
            "TimeoutSeconds": 10,
            **({"Retry": retrier} if retry else {}),
            **({"Next": f"T{i + 1}"} if i < length else {"End": True}),
        }
        for i in range(1, length + 1)
    }
    return {"StartAt": "T1", "States": states}


def crash_definitions() -> dict[str, dict[str, Any]]:
    """The three workflows of the crash-resume test: Pass chain, Task chain, caught + Wait."""
    caught = task_chain(3)
    caught["States"]["T2"]["Catch"] = [
        {"ErrorEquals": ["States.ALL"], "Next": "Handled", "ResultPath": "$.error"}
    ]
    caught["States"]["Pause"] = {"Type": "Wait", "Seconds": 0, "Next": "T2"}
    caught["States"]["T1"]["Next"] = "Pause"
    caught["States"]["Handled"] = {
        "Type": "Pass",
        "Result": "handled",
        "ResultPath": "$.h",
        "End": True,
    }
    return {"passes": pass_chain(6), "tasks": task_chain(4), "caught": caught}


def crash_behaviour(data: Any) -> tuple[int, Any]:
    """add one, but a value divisible by 7 is rejected (422: a permanent task failure)."""
    if data["v"] % 7 == 0:
        return 422, "rejected"
    return 200, {"v": data["v"] + 1}


def crash_workflow(index: int) -> str:
    """Which workflow execution `index` runs."""
    return ("passes", "tasks", "caught")[index % 3]
