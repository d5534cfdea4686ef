"""Replaying a dead letter: the original event, re-published in binary mode with its own id.

Two targets:
- `broker` (default): the broker ingress (`K_SINK`, or the local mesh's broker). The event is
  evaluated against every Trigger again, so subscribers that had processed it already see it a
  second time and deduplicate it on (source, id) — that is why the id is kept. Replies of the
  subscriber flow as usual.
- `original`: straight to the URL that failed (`knativeerrordest`), bypassing the broker: only
  that subscriber sees the event, but a reply it answers with is not forwarded anywhere.

The request continues the dead letter's trace: a `traceparent` with its trace id and a new span.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from eventfn._codec import encode_binary
from eventfn._deadletters import OK_PREFIX, DeadLetter, replay_event

BROKER = "broker"
ORIGINAL = "original"
TARGETS = (BROKER, ORIGINAL)
DEFAULT_TIMEOUT_SECONDS = 30.0
_TRACE_ID_LENGTH = 32

Post = Callable[[str, dict[str, str], bytes, float], int]
"""POST (url, headers, body, timeout) -> HTTP status; raises OSError when there is no answer."""


@dataclass(frozen=True)
class ReplayResult:
    """How one replay went; `text` is what `last_replay_result` records."""

    ok: bool
    status: int | None
    text: str


@dataclass(frozen=True)
class ReplayRequest:
    """The HTTP request of one replay."""

    url: str
    headers: dict[str, str]
    body: bytes


def build_request(letter: DeadLetter, url: str) -> ReplayRequest:
    """The binary-mode request re-publishing the dead letter's original event to `url`."""
    headers, body = encode_binary(replay_event(letter))
    trace_id = letter.trace_id or ""
    if len(trace_id) == _TRACE_ID_LENGTH and trace_id != "0" * _TRACE_ID_LENGTH:
        headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    return ReplayRequest(url, headers, body)


def replay(
    letter: DeadLetter,
    target: str,
    url: str,
    *,
    post: Post | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> ReplayResult:
    """Send the dead letter's event to `url` once; any 2xx is success."""
    request = build_request(letter, url)
    sender = post or urllib3_post
    started = time.perf_counter()
    try:
        status = sender(request.url, request.headers, request.body, timeout)
    except OSError as error:
        return ReplayResult(False, None, f"failed: {target} unreachable ({type(error).__name__})")
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    if 200 <= status < 300:
        return ReplayResult(True, status, f"{OK_PREFIX} {target} {status} ({elapsed_ms:.0f} ms)")
    return ReplayResult(False, status, f"failed: {target} {status}")


def urllib3_post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
    """POST without retries or redirects; network failures raise OSError."""
    import urllib3

    try:
        response = urllib3.request(
            "POST",
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(total=timeout),
            retries=False,
            redirect=False,
        )
    except urllib3.exceptions.HTTPError as error:
        raise ConnectionError(type(error).__name__) from error
    return int(response.status)
