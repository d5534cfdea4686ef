"""Binary and structured mode decode identically; golden events in tests/data/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventfn import Event, MalformedEvent
from eventfn._codec import decode_http, encode_binary, encode_structured

DATA = Path(__file__).resolve().parents[1] / "data"


def _golden(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((DATA / name).read_text())
    return loaded


def test_golden_binary_and_structured_decode_identically() -> None:
    binary = _golden("echo-requested.binary.json")
    structured = (DATA / "echo-requested.structured.json").read_bytes()
    from_binary = decode_http(binary["headers"], json.dumps(binary["body"]).encode())  # type: ignore[arg-type]
    from_structured = decode_http({"content-type": "application/cloudevents+json"}, structured)
    assert from_binary == from_structured
    assert from_binary.extensions == {"partitionkey": "user-7"}
    assert from_binary.subject == "greetings/hello world"
    assert from_binary.time == "2026-11-29T10:00:00Z"


@pytest.mark.parametrize(
    "data,content_type",
    [
        ({"a": [1, 2, {"b": None}]}, "application/json"),
        ("plain text", "text/plain"),
        (b"\x00\x01binary", "application/octet-stream"),
        (None, None),
    ],
)
def test_round_trip_in_both_modes(data: object, content_type: str | None) -> None:
    kwargs = {"datacontenttype": content_type} if content_type else {}
    event = Event.new("t.v1", "/s", data, subject="a/b c%", extensions={"ext": "v"}, **kwargs)
    for encoder in (encode_binary, encode_structured):
        headers, body = encoder(event)
        decoded = decode_http(headers, body)
        expected = data.encode() if isinstance(data, str) else data
        assert decoded.data == expected
        assert decoded.attributes() == event.attributes()


def test_binary_headers_are_case_insensitive() -> None:
    headers = {"CE-ID": "1", "Ce-Source": "/s", "ce-TYPE": "t", "Ce-SpecVersion": "1.0"}
    assert decode_http(headers, b"").id == "1"


def test_extension_names_must_be_lowercase_alphanumeric() -> None:
    with pytest.raises(MalformedEvent) as error:
        decode_http(
            {
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-specversion": "1.0",
                "ce-no-dash": "x",
            },
            b"",
        )
    assert error.value.field == "no-dash"
