"""Task resources of the workflow engine.

- `function:<name>`: a CloudEvent of type `eventfn.workflow.task.requested.v1` (subject: the
  state name, id derived from the idempotency key, so a resend is the same event) POSTed in
  binary mode to the function's URL (env `WORKFLOW_FUNCTION_URL_<NAME>`, `-` as `_`, or a
  resolver). The reply event's data is the result. 4xx (other than 404/408/409/425/429) is a
  permanent `States.TaskFailed`; 5xx and connection errors are retryable; no answer within the
  state's TimeoutSeconds is `States.Timeout`.
- `s3:putObject` {Key, Body, ContentType?} and `s3:copyObject` {CopySource, Key} on the
  function's bucket (`CopySource` may be `bucket/key` or a key of the same bucket).
- `event:emit` {Type, Data, Subject?, Source?}: published to the broker with a derived id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from eventfn._codec import decode_http, encode_binary
from eventfn._context import derived_id
from eventfn._emitter import RETRYABLE_STATUS
from eventfn._errors import EventfnError
from eventfn._event import Event
from eventfn._wf_retry import TASK_FAILED, TIMEOUT, StateError
from eventfn._wf_steps import TaskFailure

if TYPE_CHECKING:
    import urllib3

    from eventfn._objects import ObjectStore

ENV_FUNCTION_URL_PREFIX: Final = "WORKFLOW_FUNCTION_URL_"
TASK_TYPE: Final = "eventfn.workflow.task.requested.v1"
TASK_KEY_EXTENSION: Final = "workflowtaskkey"
DEFAULT_TIMEOUT: Final = 60.0
_PROBLEM_PREFIX: Final = "urn:eventfn:problem:"


def env_resolver(env: Mapping[str, str]) -> Callable[[str], str | None]:
    """Function name -> URL from `WORKFLOW_FUNCTION_URL_<NAME>` of `env`."""

    def resolve(name: str) -> str | None:
        return env.get(ENV_FUNCTION_URL_PREFIX + name.upper().replace("-", "_"))

    return resolve


def _fail(cause: str, *, retryable: bool, error: str = TASK_FAILED) -> TaskFailure:
    return TaskFailure(StateError(error, cause, retryable))


class TaskInvoker:
    """Calls task resources; raises TaskFailure with the ASL error of a failed call."""

    def __init__(
        self,
        resolve_url: Callable[[str], str | None],
        *,
        source: str = "eventfn/workflow",
        objects: Callable[[], ObjectStore] | None = None,
        emit: Callable[[Event], None] | None = None,
        default_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._resolve_url = resolve_url
        self._source = source
        self._objects = objects
        self._emit = emit
        self._default_timeout = default_timeout
        self._pool: urllib3.PoolManager | None = None

    def __call__(
        self,
        resource: str,
        payload: Any,
        timeout: float | None,
        key: str,
        trace: Mapping[str, str] | None = None,
    ) -> Any:
        try:
            if resource.startswith("function:"):
                name = resource.removeprefix("function:")
                return self._function(name, payload, timeout, key, trace or {})
            if resource == "event:emit":
                return self._emit_event(payload, key)
            if resource in ("s3:putObject", "s3:copyObject"):
                return self._s3(resource, payload)
        except EventfnError as error:
            raise _fail(error.code, retryable=error.retryable) from None
        raise _fail(f"unknown resource {resource}", retryable=False)

    def traced(self, trace: Mapping[str, str]) -> Callable[[str, Any, float | None, str], Any]:
        """This invoker, sending the W3C trace headers `trace` with every function call."""

        def invoke(resource: str, payload: Any, timeout: float | None, key: str) -> Any:
            return self(resource, payload, timeout, key, trace)

        return invoke

    def _function(
        self, name: str, payload: Any, timeout: float | None, key: str, trace: Mapping[str, str]
    ) -> Any:
        import urllib3

        url = self._resolve_url(name)
        if not url:
            raise _fail(f"no URL for function {name}", retryable=False)
        state = key.rsplit("/", 2)[-2] if key.count("/") >= 2 else key
        event = Event(
            type=TASK_TYPE, source=self._source, id=derived_id("workflow-task", key),
            data=payload, subject=state, datacontenttype="application/json",
            extensions={TASK_KEY_EXTENSION: key},
        )  # fmt: skip
        headers, body = encode_binary(event)
        headers = {**headers, **trace}
        if self._pool is None:
            self._pool = urllib3.PoolManager(maxsize=8, retries=False)
        try:
            response = self._pool.request(
                "POST", url, body=body, headers=headers, redirect=False,
                timeout=urllib3.Timeout(total=timeout or self._default_timeout),
            )  # fmt: skip
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise _fail(
                "the function did not answer in time", retryable=True, error=TIMEOUT
            ) from None
        except urllib3.exceptions.HTTPError:
            raise _fail("the function is unreachable", retryable=True) from None
        return _reply(int(response.status), dict(response.headers), response.data)

    def _emit_event(self, payload: Any, key: str) -> Any:
        if self._emit is None or not isinstance(payload, dict) or "Type" not in payload:
            raise _fail("event:emit needs a broker and {Type, Data}", retryable=False)
        event = Event(
            type=str(payload["Type"]), source=str(payload.get("Source", self._source)),
            id=derived_id("workflow-emit", key), data=payload.get("Data"),
            subject=payload.get("Subject"), datacontenttype="application/json",
        )  # fmt: skip
        self._emit(event)
        return {"Id": event.id, "Type": event.type}

    def _s3(self, resource: str, payload: Any) -> Any:
        if self._objects is None or not isinstance(payload, dict) or "Key" not in payload:
            raise _fail(f"{resource} needs object storage and a Key", retryable=False)
        from botocore.exceptions import ClientError

        store, key = self._objects(), str(payload["Key"])
        try:
            if resource == "s3:putObject":
                body = payload.get("Body", "")
                text = body if isinstance(body, str) else json.dumps(body)
                etag = store.put(key, text.encode(), payload.get("ContentType"))
            else:
                source = str(payload.get("CopySource", ""))
                prefix = store.bucket + "/"
                source_key = source.removeprefix(prefix)
                head = store.head(source_key)
                etag = store.put(key, store.get(source_key), head.get("ContentType"))
        except ClientError:
            raise _fail(f"{resource} was refused by object storage", retryable=False) from None
        return {"Bucket": store.bucket, "Key": key, "ETag": etag}


def _reply(status: int, headers: dict[str, str], body: bytes) -> Any:
    if 200 <= status < 300:
        if not body:
            return None
        reply = decode_http({k.lower(): v for k, v in headers.items()}, body)
        return reply.data
    cause = f"status {status}"
    try:
        problem = json.loads(body) if body else {}
        code = str(problem.get("type", "")) if isinstance(problem, dict) else ""
        if code.startswith(_PROBLEM_PREFIX):
            cause = code.removeprefix(_PROBLEM_PREFIX)
    except ValueError:
        pass
    retryable = status >= 500 or status in RETRYABLE_STATUS
    raise _fail(cause, retryable=retryable)
