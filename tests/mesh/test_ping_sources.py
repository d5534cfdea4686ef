"""PingSources in the local mesh: their manifests, the topology, the events they send."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ping_testing import BROKER, FULL, MINIMAL, source, write

from eventfn._errors import ConfigurationError
from eventfn.mesh._topology import load_topology


def test_a_full_manifest() -> None:
    ping = source()
    assert (ping.name, ping.namespace) == ("heartbeat", "shop")
    assert ping.schedule.expression == "*/5 * * * *"
    assert ping.timezone == "Europe/Berlin"
    assert ping.content_type == "application/json"
    assert ping.data == b'{"message": "ping"}'
    assert ping.extensions == {"tenant": "acme", "region": "eu-1"}
    assert (ping.broker_namespace, ping.broker) == ("ops", "default")
    assert ping.source == "/apis/v1/namespaces/shop/pingsources/heartbeat"


def test_defaults_of_a_minimal_manifest() -> None:
    ping = source(MINIMAL)
    assert ping.namespace == "default"
    assert ping.timezone == "UTC"
    assert (ping.content_type, ping.data, ping.extensions) == (None, b"", {})
    assert (ping.broker_namespace, ping.broker) == ("default", "default")  # its own namespace


def test_the_schedule_is_read_in_the_timezone() -> None:
    ping = source(schedule="0 9 * * *")  # Europe/Berlin
    fired = ping.next_after(datetime(2024, 7, 1, tzinfo=UTC))
    assert fired.astimezone(UTC) == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)  # CEST = UTC+2


def test_data_base64_is_decoded() -> None:
    raw = b"\x00\xffping"
    ping = source(data=None, dataBase64=base64.b64encode(raw).decode())
    assert ping.data == raw


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dataBase64": "cGluZw=="}, "data or dataBase64, not both"),
        ({"data": None, "dataBase64": "not base64!"}, "dataBase64 is not base64"),
        ({"data": {"message": "ping"}}, "spec.data must be a string"),
        ({"schedule": None}, "spec.schedule is required"),
        ({"schedule": "  "}, "spec.schedule is required"),
        ({"schedule": "61 * * * *"}, "minute '61'"),
        ({"schedule": "0 0 30 2 *"}, "never fires"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone 'Mars/Olympus_Mons'"),
        ({"timezone": "../etc/passwd"}, "unknown timezone"),
        ({"sink": {"uri": "http://example.com/"}}, "to a Broker only"),
        (
            {"sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                              "name": "default"}}},
            "to a Broker only",
        ),
        (
            {"sink": {"ref": {"apiVersion": "eventing.knative.dev/v1beta1", "kind": "Broker",
                              "name": "default"}}},
            "to a Broker only",
        ),
        (
            {"sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker"}}},
            "to a Broker only",
        ),
    ],
)  # fmt: skip
def test_invalid_manifests(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        source(**spec)
    assert message in str(raised.value)
    assert "PingSource shop/heartbeat" in str(raised.value)


def test_load_topology_reads_ping_sources(tmp_path: Path) -> None:
    other_broker = BROKER.replace("namespace: shop", "namespace: ops")
    topology = load_topology(write(tmp_path / "m", BROKER, other_broker, FULL))
    (ping,) = topology.ping_sources
    assert (ping.name, ping.broker_namespace, ping.broker) == ("heartbeat", "ops", "default")


def test_load_topology_refuses_a_ping_source_without_its_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Broker ops/default, is not defined"):
        load_topology(write(tmp_path / "m", BROKER, FULL))  # the Broker is in shop, not ops


# --- events -----------------------------------------------------------------------------------


def test_the_event_of_a_firing() -> None:
    ping = source()
    fired_at = datetime.fromisoformat("2024-07-01T09:05:00+02:00")
    headers, body = ping.event(fired_at)
    assert headers.pop("ce-id")
    assert headers == {
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.sources.ping",
        "ce-source": "/apis/v1/namespaces/shop/pingsources/heartbeat",
        "ce-time": "2024-07-01T07:05:00Z",
        "ce-tenant": "acme",
        "ce-region": "eu-1",
        "content-type": "application/json",
    }
    assert body == b'{"message": "ping"}'


def test_every_event_has_its_own_id_and_no_content_type_without_one() -> None:
    ping = source(MINIMAL)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    ids = {ping.event(at)[0]["ce-id"] for _ in range(3)}
    assert len(ids) == 3
    headers, body = ping.event(at)
    assert "content-type" not in headers
    assert body == b""
