"""Parsing Knative manifests into the topology `eventfn dev` runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfn._errors import ConfigurationError
from eventfn.mesh._topology import DeliverySpec, Topology, load_topology, parse_duration

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data") / "topology"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(DATA)


def test_services_are_parsed_from_the_revision_template(topology: Topology) -> None:
    assert sorted(topology.services) == ["dlq-handler", "notifier", "text-extractor"]
    extractor = topology.services["text-extractor"]
    assert extractor.namespace == "shop"
    assert (extractor.min_scale, extractor.max_scale) == (1, 5)
    assert (extractor.container_concurrency, extractor.timeout_seconds) == (4, 120)
    assert extractor.env == {
        "EVENTFN_FUNCTION": "text_extractor",
        "EVENTFN_IDEMPOTENCY": "true",
        "EVENTFN_MAX_BODY_BYTES": "1048576",
    }
    assert extractor.secret_env == {"AWS_SECRET_ACCESS_KEY": ("storage-credentials", "secret-key")}
    assert extractor.function == "text_extractor"


def test_service_defaults_follow_knative(topology: Topology) -> None:
    notifier = topology.services["notifier"]
    assert (notifier.min_scale, notifier.max_scale) == (0, 0)
    assert (notifier.container_concurrency, notifier.timeout_seconds) == (0, 300)
    assert notifier.function == "notifier"  # no EVENTFN_FUNCTION: the service name
    assert topology.services["dlq-handler"].min_scale == 2  # the older minScale spelling


def test_brokers_keep_class_and_delivery(topology: Topology) -> None:
    default, plain = topology.brokers
    assert (default.name, default.namespace, default.broker_class) == ("default", "shop", "Kafka")
    assert default.delivery == DeliverySpec(
        retry=2, backoff_policy="linear", backoff_delay=2.0, dead_letter_service="dlq-handler"
    )
    assert (plain.broker_class, plain.delivery) == ("MTChannelBasedBroker", None)
    assert topology.broker("shop", "plain") is plain
    assert topology.broker("other", "plain") is None


def test_a_trigger_with_filters_and_its_own_delivery(topology: Topology) -> None:
    trigger = next(t for t in topology.triggers if t.name == "text-extractor-documents")
    assert trigger.filters == [
        {"exact": {"type": "eventfn.storage.object.created.v1"}},
        {"prefix": {"subject": "documents/"}},
        {"not": {"suffix": {"subject": ".tmp"}}},
    ]
    assert trigger.attributes == {}
    assert (trigger.subscriber_service, trigger.subscriber_uri) == ("text-extractor", None)
    assert trigger.delivery == DeliverySpec(
        retry=3,
        backoff_policy="exponential",
        backoff_delay=0.5,
        timeout=90.0,
        dead_letter_uri="http://dlq.example.com/dead",
        retry_after_max=10.0,
    )


def test_a_trigger_without_delivery_inherits_the_brokers(topology: Topology) -> None:
    trigger = next(t for t in topology.triggers if t.name == "notifier-sentiment")
    assert trigger.attributes == {"type": "eventfn.document.sentiment.scored.v1", "tenant": ""}
    assert (trigger.subscriber_service, trigger.subscriber_uri) == ("notifier", "/notify")
    broker = topology.broker("shop", "default")
    assert broker is not None
    assert trigger.delivery is broker.delivery


def test_triggers_in_nested_files_and_lists(topology: Topology) -> None:
    audit = next(t for t in topology.triggers if t.name == "audit-everything")
    assert (audit.subscriber_service, audit.subscriber_uri) == (None, "http://audit.example.com/in")
    assert audit.delivery == DeliverySpec()  # no delivery anywhere: Knative's broker default
    assert audit.delivery.retry == 10
    no_retry = next(t for t in topology.triggers if t.name == "notifier-no-retry")
    # inside an explicit delivery a missing retry means none, as in Knative's dispatcher
    assert (no_retry.delivery.retry, no_retry.delivery.backoff_delay) == (0, 1.0)
    assert no_retry.subscriber_service == "notifier"
    assert [t.name for t in topology.triggers_of("shop", "plain")] == [
        "audit-everything",
        "notifier-no-retry",
    ]


@pytest.mark.parametrize(
    ("iso", "seconds"),
    [
        ("PT0.5S", 0.5),
        ("PT0.2S", 0.2),
        ("PT1M", 60.0),
        ("PT1M30S", 90.0),
        ("PT2H", 7200.0),
        ("P1D", 86400.0),
        ("P1DT2H", 93600.0),
        ("PT0S", 0.0),
        ("PT1,5S", 1.5),
        ("P1W", 604800.0),
    ],
)
def test_parse_duration(iso: str, seconds: float) -> None:
    assert parse_duration(iso) == pytest.approx(seconds)


@pytest.mark.parametrize("iso", ["", "1s", "P", "PT", "-PT1S", "PT1.S", "T1S", "PT1S2M", "5"])
def test_parse_duration_refuses_what_is_not_iso_8601(iso: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_duration(iso)


BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: ns}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: fn, namespace: ns}
spec: {template: {spec: {containers: [{image: x}]}}}
---
"""

BAD_TRIGGERS = [
    (
        "unknown subscriber",
        "subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: nope}}",
        "unknown Service 'nope'",
    ),
    (
        "unsupported ref kind",
        "subscriber: {ref: {apiVersion: messaging.knative.dev/v1, kind: Channel, name: c}}",
        "not supported",
    ),
    ("relative uri without ref", "subscriber: {uri: /path}", "must be absolute"),
    ("no subscriber", "subscriber: {}", "needs a ref or a uri"),
    (
        "unknown broker",
        "subscriber: {uri: 'http://x'}\n  broker: nope",
        "Broker ns/nope is not defined",
    ),
    ("cesql", "subscriber: {uri: 'http://x'}\n  filters: [{cesql: \"type = 'a'\"}]", "CESQL"),
    (
        "bad legacy attribute",
        "subscriber: {uri: 'http://x'}\n  filter: {attributes: {Type: a}}",
        "lowercase",
    ),
    (
        "bad backoff policy",
        "subscriber: {uri: 'http://x'}\n  delivery: {backoffPolicy: fibonacci}",
        "linear or exponential",
    ),
    (
        "bad backoff delay",
        "subscriber: {uri: 'http://x'}\n  delivery: {backoffDelay: 5s}",
        "backoffDelay",
    ),
    (
        "zero timeout",
        "subscriber: {uri: 'http://x'}\n  delivery: {timeout: PT0S}",
        "greater than zero",
    ),
    (
        "negative retry",
        "subscriber: {uri: 'http://x'}\n  delivery: {retry: -1}",
        "must not be negative",
    ),
    (
        "unknown dead-letter service",
        "subscriber: {uri: 'http://x'}\n  delivery:\n    deadLetterSink:\n"
        "      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: gone}",
        "unknown Service 'gone'",
    ),
]


@pytest.mark.parametrize(
    ("spec", "message"), [c[1:] for c in BAD_TRIGGERS], ids=[c[0] for c in BAD_TRIGGERS]
)
def test_invalid_triggers_are_configuration_errors(tmp_path: Path, spec: str, message: str) -> None:
    broker_line = "" if "broker:" in spec else "\n  broker: default"
    trigger = (
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t, namespace: ns}\n"
        f"spec:\n  {spec}{broker_line}\n"
    )
    (tmp_path / "mesh.yaml").write_text(BROKER + trigger)
    with pytest.raises(ConfigurationError, match=message):
        load_topology(tmp_path)


def test_invalid_yaml_and_missing_directories_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_topology(tmp_path / "missing")
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_topology(tmp_path)


def test_a_service_defined_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BROKER)
    (tmp_path / "b.yaml").write_text(BROKER.split("---")[1])
    with pytest.raises(ConfigurationError, match="defined twice"):
        load_topology(tmp_path)


@pytest.mark.skipif(not (ROOT / "k8s").is_dir(), reason="k8s/ has not been rendered yet")
def test_the_rendered_k8s_manifests_load() -> None:
    topology = load_topology(ROOT / "k8s")
    assert topology.brokers
    for trigger in topology.triggers:
        assert trigger.subscriber_service in topology.services or trigger.subscriber_uri
