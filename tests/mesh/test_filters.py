"""Trigger filter semantics, case by case against Knative's pkg/eventfilter behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from eventfn._errors import ConfigurationError
from eventfn._event import Event
from eventfn.mesh._filters import (
    Router,
    compile_trigger,
    matches,
    validate_attributes,
    validate_filters,
)
from eventfn.mesh._topology import DeliverySpec, TriggerSpec

EVENT = Event(
    type="com.example.object.created",
    source="/storage/bucket-a",
    id="e-1",
    subject="documents/report.pdf",
    time="2024-05-01T10:00:00.500000+00:00",
    datacontenttype="application/json; charset=utf-8",
    dataschema="https://schemas.example.com/object.json",
    extensions={"tenant": "Acme-EU", "region": "eu-west-1"},
)
NO_SUBJECT = Event(type="com.example.ping", source="/cron", id="e-2")

T = "com.example.object.created"

# (case id, filters, legacy attributes, event, delivered?)
CASES: list[tuple[str, list[dict[str, Any]], dict[str, str], Event, bool]] = [
    ("exact type", [{"exact": {"type": T}}], {}, EVENT, True),
    ("exact is case-sensitive", [{"exact": {"type": T.upper()}}], {}, EVENT, False),
    ("exact mismatch", [{"exact": {"type": "com.example.object.deleted"}}], {}, EVENT, False),
    ("exact is not a prefix match", [{"exact": {"type": "com.example"}}], {}, EVENT, False),
    ("prefix source", [{"prefix": {"source": "/storage/"}}], {}, EVENT, True),
    ("prefix is case-sensitive", [{"prefix": {"source": "/Storage/"}}], {}, EVENT, False),
    ("suffix subject", [{"suffix": {"subject": ".pdf"}}], {}, EVENT, True),
    ("suffix is case-sensitive", [{"suffix": {"subject": ".PDF"}}], {}, EVENT, False),
    ("prefix on an extension", [{"prefix": {"tenant": "Acme"}}], {}, EVENT, True),
    ("suffix on an extension", [{"suffix": {"region": "-1"}}], {}, EVENT, True),
    ("exact on an extension", [{"exact": {"tenant": "Acme-EU"}}], {}, EVENT, True),
    ("extension values are case-sensitive", [{"exact": {"tenant": "acme-eu"}}], {}, EVENT, False),
    ("exact on a missing extension", [{"exact": {"missing": "x"}}], {}, EVENT, False),
    ("prefix on a missing extension", [{"prefix": {"missing": "x"}}], {}, EVENT, False),
    ("suffix on a missing extension", [{"suffix": {"missing": "x"}}], {}, EVENT, False),
    ("exact on an unset subject", [{"exact": {"subject": "x"}}], {}, NO_SUBJECT, False),
    ("prefix on an unset subject", [{"prefix": {"subject": "d"}}], {}, NO_SUBJECT, False),
    ("not of a non-match matches", [{"not": {"exact": {"type": "other"}}}], {}, EVENT, True),
    ("not of a match fails", [{"not": {"exact": {"type": T}}}], {}, EVENT, False),
    ("not of a missing attribute", [{"not": {"exact": {"missing": "x"}}}], {}, EVENT, True),
    (
        "any with one match",
        [{"any": [{"exact": {"type": "a"}}, {"exact": {"type": T}}]}],
        {},
        EVENT,
        True,
    ),
    (
        "any with no match",
        [{"any": [{"exact": {"type": "a"}}, {"exact": {"type": "b"}}]}],
        {},
        EVENT,
        False,
    ),
    (
        "all matching",
        [{"all": [{"prefix": {"source": "/storage/"}}, {"suffix": {"subject": ".pdf"}}]}],
        {},
        EVENT,
        True,
    ),
    (
        "all with one miss",
        [{"all": [{"prefix": {"source": "/storage/"}}, {"suffix": {"subject": ".txt"}}]}],
        {},
        EVENT,
        False,
    ),
    (
        "nested all/any/not",
        [
            {
                "all": [
                    {"any": [{"exact": {"type": "x"}}, {"prefix": {"subject": "documents/"}}]},
                    {"not": {"suffix": {"subject": ".tmp"}}},
                ]
            }
        ],
        {},
        EVENT,
        True,
    ),
    (
        "nested any of failing all and failing not",
        [
            {
                "any": [
                    {"all": [{"exact": {"tenant": "Acme-EU"}}, {"exact": {"region": "us-east-1"}}]},
                    {"not": {"prefix": {"source": "/storage/"}}},
                ]
            }
        ],
        {},
        EVENT,
        False,
    ),
    (
        "any where not fails but the other passes",
        [{"any": [{"not": {"exact": {"type": T}}}, {"exact": {"tenant": "Acme-EU"}}]}],
        {},
        EVENT,
        True,
    ),
    (
        "filters entries are ANDed",
        [
            {"exact": {"type": T}},
            {"prefix": {"source": "/storage/"}},
            {"suffix": {"subject": ".pdf"}},
        ],
        {},
        EVENT,
        True,
    ),
    (
        "one failing entry fails the list",
        [{"exact": {"type": T}}, {"prefix": {"source": "/queue/"}}],
        {},
        EVENT,
        False,
    ),
    ("any of an empty list carries no filter", [{"any": []}], {}, EVENT, True),
    ("all of an empty list carries no filter", [{"all": []}], {}, EVENT, True),
    ("not of an empty filter is no filter", [{"not": {"any": []}}], {}, EVENT, True),
    (
        "empty any does not weaken other entries",
        [{"any": []}, {"exact": {"type": "other"}}],
        {},
        EVENT,
        False,
    ),
    (
        "filters win over a failing legacy filter",
        [{"exact": {"type": T}}],
        {"type": "other"},
        EVENT,
        True,
    ),
    (
        "failing filters ignore a passing legacy filter",
        [{"exact": {"type": "other"}}],
        {"type": T},
        EVENT,
        False,
    ),
    ("empty filters fall back to the legacy filter", [], {"type": "other"}, EVENT, False),
    ("legacy exact matches ANDed", [], {"type": T, "tenant": "Acme-EU"}, EVENT, True),
    ("legacy one mismatch", [], {"type": T, "tenant": "Acme-US"}, EVENT, False),
    ("legacy is case-sensitive", [], {"source": "/STORAGE/bucket-a"}, EVENT, False),
    ("legacy empty value: present extension", [], {"tenant": ""}, EVENT, True),
    ("legacy empty value: missing extension", [], {"missing": ""}, EVENT, False),
    ("legacy empty value: unset subject", [], {"subject": ""}, NO_SUBJECT, False),
    ("legacy empty value: set subject", [], {"subject": ""}, EVENT, True),
    ("no filter at all", [], {}, EVENT, True),
    (
        "schemaurl aliases dataschema",
        [{"exact": {"schemaurl": "https://schemas.example.com/object.json"}}],
        {},
        EVENT,
        True,
    ),
    (
        "datamediatype drops parameters",
        [{"exact": {"datamediatype": "application/json"}}],
        {},
        EVENT,
        True,
    ),
    (
        "time is compared as Go renders it",
        [{"exact": {"time": "2024-05-01T10:00:00.5Z"}}],
        {},
        EVENT,
        True,
    ),
    (
        "time with an offset",
        [],
        {"time": "2024-05-01T12:00:00+02:00"},
        Event(type="t", source="/s", id="i", time="2024-05-01T12:00:00.000+02:00"),
        True,
    ),
    ("specversion", [{"exact": {"specversion": "1.0"}}], {}, EVENT, True),
    ("id", [{"prefix": {"id": "e-"}}], {}, EVENT, True),
]


@pytest.mark.parametrize(
    ("filters", "attributes", "event", "delivered"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_filter_table(
    filters: list[dict[str, Any]], attributes: dict[str, str], event: Event, delivered: bool
) -> None:
    validate_filters(filters, "test")
    validate_attributes(attributes, "test")
    assert matches(compile_trigger(filters, attributes), event) is delivered


def test_the_table_is_large_and_balanced() -> None:
    assert len(CASES) >= 30
    assert 10 <= sum(1 for case in CASES if not case[-1]) <= len(CASES) - 10


INVALID: list[tuple[str, list[Any], str]] = [
    ("cesql is refused", [{"cesql": "type = 'a'"}], "CESQL"),
    (
        "two dialects in one entry",
        [{"exact": {"type": "a"}, "prefix": {"source": "/"}}],
        "multiple dialects",
    ),
    (
        "not beside another dialect",
        [{"exact": {"type": "a"}, "not": {"exact": {"type": "b"}}}],
        "multiple dialects",
    ),
    ("exact with two attributes", [{"exact": {"type": "a", "source": "/b"}}], "exactly one"),
    ("exact with an empty value", [{"exact": {"type": ""}}], "non-empty string"),
    ("prefix with a non-string value", [{"prefix": {"type": 5}}], "non-empty string"),
    ("upper-case attribute name", [{"exact": {"Type": "a"}}], "lowercase"),
    ("unknown dialect", [{"regex": {"type": "a.*"}}], "unknown filter dialect"),
    ("any that is not a list", [{"any": {"exact": {"type": "a"}}}], "must be a list"),
    ("invalid filter nested in any", [{"any": [{"all": [{"cesql": "true"}]}]}], "CESQL"),
    ("invalid filter nested in not", [{"not": {"suffix": {"subject": ""}}}], "non-empty string"),
    ("an entry that is not a mapping", ["type=a"], "must be a mapping"),
]


@pytest.mark.parametrize(
    ("filters", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_filters_are_configuration_errors(filters: list[Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        validate_filters(filters, "Trigger t")


@pytest.mark.parametrize(
    "attributes", [{"Type": "a"}, {"type": 5}, {"9lives": "x"}, {"my-ext": "x"}]
)
def test_invalid_legacy_attributes_are_configuration_errors(attributes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        validate_attributes(attributes, "Trigger t")


def _trigger(
    name: str, broker: str, filters: list[dict[str, Any]], namespace: str = "ns"
) -> TriggerSpec:
    return TriggerSpec(name, namespace, broker, filters, {}, "svc", None, DeliverySpec())


def test_the_router_evaluates_only_the_triggers_of_the_events_broker() -> None:
    router = Router(
        [
            _trigger("created", "default", [{"exact": {"type": T}}]),
            _trigger("all-storage", "default", [{"prefix": {"source": "/storage/"}}]),
            _trigger("other-broker", "audit", [{"exact": {"type": T}}]),
            _trigger("other-namespace", "default", [{"exact": {"type": T}}], namespace="prod"),
            _trigger("deleted", "default", [{"exact": {"type": "com.example.object.deleted"}}]),
        ]
    )
    assert router.match(EVENT, "ns", "default") == ["created", "all-storage"]
    assert router.match(EVENT, "ns", "audit") == ["other-broker"]
    assert router.match(EVENT, "ns", "unknown") == []
