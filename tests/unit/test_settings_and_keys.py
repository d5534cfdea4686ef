"""Settings parsing at the edge and object-key validation."""

from __future__ import annotations

import pytest

from eventfn import ConfigurationError, Settings
from eventfn._objects import InvalidObjectKey, validate_key


def test_defaults_are_documented_values() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8080
    assert settings.workers == 1 and settings.threads == 1
    assert settings.timeout_seconds == 300
    assert settings.idempotency is True
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith(".eventfn/eventfn.db")


def test_env_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "EVENTFN_IDEMPOTENCY": "off",
            "K_SINK": "http://b/ns/default",
            "EVENTFN_DATABASE_URL": "postgresql://x/y",
            "EVENTFN_WORKERS": "3",
        }
    )
    assert settings.port == 9000 and settings.idempotency is False
    assert settings.sink == "http://b/ns/default" and settings.workers == 3
    assert settings.effective_database_url == "postgresql://x/y"


@pytest.mark.parametrize(
    "name,value",
    [
        ("PORT", "eighty"),
        ("EVENTFN_IDEMPOTENCY", "maybe"),
        ("EVENTFN_IDEMPOTENCY_EXPIRY_SECONDS", "soon"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_explicit_values_beat_env() -> None:
    settings = Settings.from_env({"PORT": "9000"}).with_overrides(port=7000, sink=None)
    assert settings.port == 7000


@pytest.mark.parametrize("key", ["documents/a.pdf", "raw/2026/x y.csv", "a" * 1024])
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../x", "a/../b", "a/./b", "a\\b", "a\x00b", "a" * 1025, "é" * 600]
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        validate_key(key)


def test_one_object_store_per_process_and_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a boto3 client costs ~20 ms of CPU: every event of a process shares one."""
    from eventfn._objects import ObjectStore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    local = Settings(s3_endpoint_url="http://127.0.0.1:9", s3_region="eu-west-1")
    store = ObjectStore.shared(local)
    assert ObjectStore.shared(local) is store
    assert ObjectStore.shared(local.with_overrides(bucket="other")) is not store
    assert ObjectStore.shared(local.with_overrides(s3_region="us-east-1")) is not store
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "second")
    assert ObjectStore.shared(local) is not store
