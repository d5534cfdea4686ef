"""The schema registry with Avro: round trips, the JSON reading of Avro types, violations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from schema_testing import AVRO_CT, JSON_CT

from eventfn._errors import SchemaViolation, UndecodableData, UnsupportedContentType
from eventfn._schemas import SchemaRegistry

USER: dict[str, Any] = {
    "user_id": "u-1",
    "email": "ada@example.org",
    "name": "Ada",
    "version": 3,
    "updated_at": 1_700_000_000_000,
}
USER_TIME = datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_avro_round_trip(repo_registry: SchemaRegistry) -> None:
    body, content_type = repo_registry.encode("eventfn.user.created.v1", USER, AVRO_CT)
    assert content_type == AVRO_CT
    decoded = repo_registry.decode("eventfn.user.updated.v1", body, AVRO_CT)
    assert decoded == {**USER, "updated_at": USER_TIME, "tags": []}


def test_avro_encode_accepts_datetimes_and_tags(repo_registry: SchemaRegistry) -> None:
    user = {**USER, "updated_at": USER_TIME, "tags": ["vip"]}
    body, _ = repo_registry.encode("eventfn.user.updated.v1", user, AVRO_CT)
    assert repo_registry.decode("eventfn.user.updated.v1", body, AVRO_CT) == user


def test_avro_type_as_json_reads_like_avro(repo_registry: SchemaRegistry) -> None:
    expected = {**USER, "updated_at": USER_TIME, "tags": []}
    for data in (USER, json.dumps(USER).encode(), json.dumps(USER)):
        assert repo_registry.decode("eventfn.user.created.v1", data, JSON_CT) == expected


def test_avro_type_encoded_as_json(repo_registry: SchemaRegistry) -> None:
    user = {**USER, "updated_at": USER_TIME}
    body, content_type = repo_registry.encode("eventfn.user.created.v1", user, None)
    assert content_type == JSON_CT
    assert json.loads(body) == {**USER, "tags": []}


@pytest.mark.parametrize(
    ("data", "field", "detail"),
    [
        ({**USER, "email": 5}, "$.email", "must be of Avro type string"),
        (
            {k: v for k, v in USER.items() if k != "name"},
            "$.name",
            "is missing or null, expected string",
        ),
        ({**USER, "version": "3"}, "$.version", "must be of Avro type long"),
        (
            {**USER, "updated_at": "yesterday"},
            "$.updated_at",
            "must be of Avro type timestamp-millis",
        ),
        ({**USER, "tags": ["ok", 1]}, "$.tags", "must be of Avro type string"),
        (["not", "a", "record"], "$", "must be of Avro type eventfn.user.User"),
    ],
)
def test_avro_violations(
    repo_registry: SchemaRegistry, data: object, field: str, detail: str
) -> None:
    for operation in (
        lambda: repo_registry.decode("eventfn.user.created.v1", data, JSON_CT),
        lambda: repo_registry.encode("eventfn.user.created.v1", data, AVRO_CT),
    ):
        with pytest.raises(SchemaViolation) as caught:
            operation()
        assert (caught.value.field, caught.value.detail) == (field, detail)


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage bytes that are not avro", b"\x02\xff\xfe", b"\xff" * 12],
    ids=["empty", "text", "bad-utf8", "huge-varint"],
)
def test_garbage_avro_is_undecodable(repo_registry: SchemaRegistry, body: bytes) -> None:
    with pytest.raises(UndecodableData):
        repo_registry.decode("eventfn.user.created.v1", body, AVRO_CT)


def test_trailing_bytes_after_an_avro_record_are_undecodable(repo_registry: SchemaRegistry) -> None:
    body, _ = repo_registry.encode("eventfn.user.created.v1", USER, AVRO_CT)
    with pytest.raises(UndecodableData):
        repo_registry.decode("eventfn.user.created.v1", body + b"\x00", AVRO_CT)


def test_avro_type_refuses_other_content_types(repo_registry: SchemaRegistry) -> None:
    with pytest.raises(UnsupportedContentType):
        repo_registry.decode("eventfn.user.created.v1", b"x", "text/plain")
    with pytest.raises(UnsupportedContentType):
        repo_registry.encode("eventfn.user.created.v1", USER, "text/csv")
