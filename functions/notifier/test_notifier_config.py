"""notifier's pure parts: templates, the routing configuration, Retry-After and retry settings."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from eventfn import ConfigurationError, Event
from eventfn._loader import load_function, module_name

ROOT = Path(__file__).resolve().parents[2]
load_function("notifier", ROOT / "functions")
handler_module: ModuleType = __import__(module_name("notifier") + ".handler", fromlist=["x"])
from eventfn_functions.notifier._config import parse_config  # noqa: E402
from eventfn_functions.notifier._template import MAX_VALUE, compile_template  # noqa: E402
from eventfn_functions.notifier._webhook import RetryPolicy, retry_after  # noqa: E402

EVENT = Event(
    type="eventfn.inventory.rejected.v1",
    source="/eventfn/inventory-updater",
    id="e-1",
    subject="order-9",
    time="2026-11-28T12:00:00Z",
    data={
        "order_id": "order-9",
        "items": [{"sku": "A", "requested": 2}, {"sku": "B", "requested": 1}],
        "tags": ["x", "y"],
        "score": -0.71842,
        "ok": False,
        "empty": [],
        "none": None,
        "long": "z" * 1000,
    },
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Order {data.order_id}", "Order order-9"),
        ("{data.items.1.sku} of {data.items}", "B of sku=A, requested=2; sku=B, requested=1"),
        ("{data.tags}", "x, y"),
        ("{data.score}", "-0.71842"),
        ("{data.score:+.2f}", "-0.72"),
        ("{data.order_id:>10}", "   order-9"),
        ("{data.order_id:.2f}", "order-9"),  # a spec the value does not take is ignored
        ("{data.ok}", "no"),
        ("{data.empty}|{data.none}|{data.nothing.deeper}|{data.items.7}", "—|—|—|—"),
        (
            "{subject} {id} {type} {time}",
            "order-9 e-1 eventfn.inventory.rejected.v1 2026-11-28T12:00:00Z",
        ),
        ("{{literal}} {data.order_id}", "{literal} order-9"),
    ],
)
def test_templates_render_safely(template: str, expected: str) -> None:
    assert compile_template(template, "t").render(EVENT) == expected


def test_long_values_are_cut() -> None:
    text = compile_template("{data.long}", "t").render(EVENT)
    assert len(text) == MAX_VALUE and text.endswith("…")


def test_data_that_is_not_json_renders_as_missing() -> None:
    event = EVENT.with_changes(data=b"\x00binary", datacontenttype="application/octet-stream")
    assert compile_template("{data.order_id}/{data}", "t").render(event) == "—/—"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{data.order_id", "unmatched"),
        ("a } b", "unmatched"),
        ("{order_id}", "must start with data"),
        ("{subject.x}", "must start with data"),
        ("{data.__class__.__init__}", ""),  # a plain key lookup: harmless, but check it parses
        ("{data.a b}", "not a field path"),
        ("{data.x:{data.y}}", "unmatched"),
        ("{data.x:99999999}", "format spec"),
        ("{data.x!r}", "not a field path"),
    ],
)
def test_malformed_templates_are_refused(template: str, message: str) -> None:
    if not message:
        assert compile_template(template, "t").render(EVENT) == "—"
        return
    with pytest.raises(ConfigurationError, match=message):
        compile_template(template, "routes.x.title")


def _config(route: dict[str, Any], **top: Any) -> Any:
    return parse_config({"routes": {"eventfn.x.v1": route}, **top}, "cfg")


def test_config_defaults_and_channels() -> None:
    config = _config({"title": "t"}, defaults={"channels": ["slack"]})
    route = config.routes["eventfn.x.v1"]
    assert route.channels == ("slack",) and route.severity == "info" and route.when == ()
    route = _config({"title": "t", "channels": ["teams", "teams"]}).routes["eventfn.x.v1"]
    assert route.channels == ("teams",)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"title": "t", "channels": ["email"]}, "not one of"),
        ({"title": "t", "colour": "red"}, "unknown keys"),
        ({"text": "t"}, "needs a title"),
        ({"title": "t", "severity": "panic"}, "severity"),
        ({"title": "t", "facts": [{"a": "1", "b": "2"}]}, "one `name: template`"),
        ({"title": "t", "facts": {"a": "1"}}, "expected a list"),
        ({"title": "t", "when": [{"field": "data.x", "between": [1, 2]}]}, "one op of"),
        ({"title": "t", "when": [{"field": "data.x", "lte": "low"}]}, "needs a number"),
        ({"title": "t", "when": [{"field": "data.x", "in": "abc"}]}, "needs a list"),
        ({"title": "t", "when": [{"field": "x", "eq": 1}]}, "must start with data"),
    ],
)
def test_config_errors_name_the_route(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        _config(route)
    assert "routes.eventfn.x.v1" in str(raised.value)


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"field": "data.score", "lte": -0.5}, True),
        ({"field": "data.score", "lt": -0.8}, False),
        ({"field": "data.score", "gte": -0.8}, True),
        ({"field": "data.score", "gt": 0}, False),
        ({"field": "data.order_id", "eq": "order-9"}, True),
        ({"field": "data.order_id", "ne": "order-9"}, False),
        ({"field": "data.order_id", "in": ["order-1", "order-9"]}, True),
        ({"field": "data.order_id", "lte": 0}, False),  # not a number
        ({"field": "data.ok", "lte": 1}, False),  # booleans are not numbers
        ({"field": "data.missing", "ne": "x"}, False),  # missing never satisfies
    ],
)
def test_conditions(condition: dict[str, Any], holds: bool) -> None:
    route = _config({"title": "t", "when": [condition]}).routes["eventfn.x.v1"]
    assert route.applies(EVENT) is holds


def test_routes_for_types_the_notifier_does_not_consume_stop_the_start(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"routes": {"eventfn.echo.replied.v1": {"title": "t"}}}))
    with pytest.raises(ConfigurationError, match="does not consume"):
        handler_module.Notifier().configure({"NOTIFIER_CONFIG": str(path)})


def test_unreadable_config_files_are_configuration_errors(tmp_path: Path) -> None:
    notifier = handler_module.Notifier()
    with pytest.raises(ConfigurationError, match="cannot read"):
        notifier.configure({"NOTIFIER_CONFIG": str(tmp_path / "absent.yaml")})
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [unclosed\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        notifier.configure({"NOTIFIER_CONFIG": str(broken)})


def test_shipped_routes_cover_every_consumed_type() -> None:
    notifier = handler_module.Notifier()
    slack = "https://hooks.slack.test/services/T0/B0/x"
    notifier.configure({"NOTIFIER_TEAMS_WEBHOOK_URL": " ", "NOTIFIER_SLACK_WEBHOOK_URL": slack})
    assert set(notifier.config.routes) == set(handler_module.NOTIFIED_TYPES)
    assert notifier.urls == {"slack": slack} and notifier.disabled_channels() == ["teams"]


def test_a_webhook_url_that_is_not_http_stops_the_start() -> None:
    with pytest.raises(ConfigurationError, match="NOTIFIER_SLACK_WEBHOOK_URL must be") as raised:
        handler_module.Notifier().configure({"NOTIFIER_SLACK_WEBHOOK_URL": "s3cr3t-token"})
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),
        ("Fri, 15 Jan 2027 07:00:00 GMT", 0.0),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after(header: str, seconds: float | None) -> None:
    assert retry_after({"retry-after": header}, 1_800_000_000.0) == seconds


def test_retry_policy_from_env() -> None:
    policy = RetryPolicy.from_env({"NOTIFIER_MAX_ATTEMPTS": "2", "NOTIFIER_MAX_TOTAL_SECONDS": "9"})
    assert (policy.max_attempts, policy.max_total_seconds) == (2, 9.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    with pytest.raises(ConfigurationError):
        RetryPolicy.from_env({"NOTIFIER_MAX_ATTEMPTS": "0"})
    with pytest.raises(ConfigurationError):
        RetryPolicy.from_env({"NOTIFIER_TIMEOUT_SECONDS": "fast"})
