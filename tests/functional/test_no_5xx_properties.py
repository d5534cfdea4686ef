"""Property: no generated header/body combination makes the runtime answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from eventfn import create_app
from eventfn._tracing import Tracer

from .conftest import settings_for

ATTRS = ["specversion", "id", "source", "type", "subject", "time", "dataschema", "partitionkey"]
header_values = st.one_of(
    st.sampled_from(["1.0", "0.3", "", "eventfn.echo.requested.v1", "2026-01-01T00:00:00Z"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/avro",
        "text/plain",
        "application/json; charset=utf-8",
        "multipart/form-data",
    ]
)
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    tmp = tmp_path_factory.mktemp("props")
    wsgi = create_app(
        "echo",
        settings=settings_for(tmp, None, idempotency=False),
        tracer=Tracer("echo", enabled=False),
        env={},
    )
    yield wsgi.test_client()
    wsgi.close()


def _post(client: Client, headers: dict[str, str], body: bytes) -> int:
    return client.post("/", data=body, headers=headers).status_code


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attrs=st.dictionaries(st.sampled_from(ATTRS), header_values, max_size=len(ATTRS)),
    content_type=content_types,
    body=st.one_of(st.binary(max_size=200), json_bodies.map(lambda v: repr(v).encode())),
)
def test_binary_mode_never_5xx(
    client: Client, attrs: dict[str, str], content_type: str | None, body: bytes
) -> None:
    headers = {f"ce-{name}": value for name, value in attrs.items()}
    if content_type:
        headers["content-type"] = content_type
    assert _post(client, headers, body) < 500


@settings(max_examples=300, deadline=None)
@given(
    document=st.dictionaries(
        st.sampled_from([*ATTRS, "data", "data_base64", "datacontenttype"]),
        st.one_of(header_values, json_bodies),
        max_size=10,
    )
)
def test_structured_mode_never_5xx(client: Client, document: dict[str, object]) -> None:
    import json

    body = json.dumps(document).encode()
    assert _post(client, {"content-type": "application/cloudevents+json"}, body) < 500
