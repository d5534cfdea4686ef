"""The tracer configured from the environment: mode, service name, OTLP endpoint."""

from __future__ import annotations

import pytest

from eventfn._errors import ConfigurationError
from eventfn._tracing import (
    EVENTFN_TRACING,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
    tracer_from_env,
    traces_endpoint,
)


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318"}, True),
        ({OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces"}, True),
        ({EVENTFN_TRACING: "auto", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, True),
        ({EVENTFN_TRACING: "", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, True),
        ({EVENTFN_TRACING: "off", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, False),
        ({EVENTFN_TRACING: " ON "}, True),
        ({OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, False),
    ],
)
def test_tracer_from_env_modes(env: dict[str, str], enabled: bool) -> None:
    tracer = tracer_from_env("fn", env)
    try:
        assert tracer.enabled is enabled
    finally:
        tracer.shutdown()


def test_tracer_from_env_rejects_unknown_mode() -> None:
    with pytest.raises(ConfigurationError, match=EVENTFN_TRACING):
        tracer_from_env("fn", {EVENTFN_TRACING: "yes"})


def test_tracer_from_env_service_name() -> None:
    assert tracer_from_env("fn", {}).service_name == "fn"
    assert tracer_from_env("fn", {OTEL_SERVICE_NAME: "billing"}).service_name == "billing"


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, None),
        ({OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318"}, "http://c:4318/v1/traces"),
        ({OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/otlp/"}, "http://c:4318/otlp/v1/traces"),
        (
            {
                OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
                OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:4318/custom",
            },
            "http://t:4318/custom",
        ),
    ],
)
def test_traces_endpoint(env: dict[str, str], endpoint: str | None) -> None:
    assert traces_endpoint(env) == endpoint
