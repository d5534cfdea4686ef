"""The fast binary-mode path agrees with the cloudevents SDK (v2 core), used here as the oracle."""

from __future__ import annotations

from datetime import datetime

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from eventfn import Event, MalformedEvent
from eventfn._binary import decode_binary, encode_binary

NAMES = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "dataschema",
    "time",
    "traceid",
    "partitionkey",
    "data",
    "Bad",
    "x-y",
    "a1",
]
values = st.one_of(
    st.sampled_from(
        [
            "1.0",
            "0.3",
            "",
            "2026-11-29T10:00:00Z",
            "2026-11-29T10:00:00.123456789+02:00",
            "2026-11-29",
            "yesterday",
            "a%20b",
            "%zz",
            "ü",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12),
)


def _sdk_attributes(headers: dict[str, str]) -> dict[str, object] | None:
    # the SDK's constructor fills a missing id and time (for creating events); on the wire both
    # are the sender's: a request without an id is malformed, one without a time has none
    if not all(f"ce-{name}" in headers for name in ("specversion", "id", "source", "type")):
        return None
    try:
        message = ce_http.HTTPMessage(headers=headers, body=b"")
        event = ce_http.from_binary(message, JSONFormat(), CloudEvent)
    except (BaseCloudEventException, ValueError, TypeError, OverflowError):
        return None
    attributes = dict(event.get_attributes())
    if "ce-time" not in headers:
        attributes.pop("time", None)
    if attributes.get("specversion") != "1.0":
        return None
    return attributes


def _ours(headers: dict[str, str]) -> Event | None:
    try:
        return decode_binary(headers, b"")
    except MalformedEvent:
        return None


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), values, max_size=len(NAMES)))
def test_accepts_and_rejects_what_the_sdk_does(attrs: dict[str, str]) -> None:
    headers = {"ce-" + name.lower(): value for name, value in attrs.items()}
    oracle = _sdk_attributes(headers)
    ours = _ours(headers)
    assert (oracle is None) == (ours is None), (headers, oracle, ours)
    if ours is None or oracle is None:
        return
    expected = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in oracle.items()
    }
    got = ours.attributes()
    if "time" in got:
        got["time"] = datetime.fromisoformat(got["time"].replace("Z", "+00:00")).isoformat()
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    subject=st.text(max_size=30),
    source=st.text(min_size=1, max_size=30),
    extension=st.text(max_size=20),
)
def test_our_encoding_decodes_identically_in_the_sdk(
    subject: str, source: str, extension: str
) -> None:
    event = Event.new(
        "t.v1",
        source,
        {"k": subject},
        subject=subject or None,
        extensions={"ext": extension or "x"},
    )
    headers, body = encode_binary(event)
    sdk = ce_http.from_binary(ce_http.HTTPMessage(headers, body), JSONFormat(), CloudEvent)
    assert sdk.get_source() == source
    assert sdk.get_subject() == (subject or None)
    assert sdk.get_extension("ext") == (extension or "x")
    assert sdk.get_data() == {"k": subject}
    assert decode_binary(headers, body) == event
