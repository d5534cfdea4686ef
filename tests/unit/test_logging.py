"""JSON logs: one object per line, context fields, extras, exceptions, idempotent setup."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from eventfn._errors import ConfigurationError
from eventfn._logging import JsonFormatter, configure_logging, get_logger, log_context

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(autouse=True)
def restore_eventfn_logger() -> Iterator[None]:
    logger = logging.getLogger("eventfn")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("csv-ingest", "DEBUG", stream)
    return stream


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_record_is_one_json_line_with_base_fields_and_extras(stream: io.StringIO) -> None:
    get_logger("pipeline").info("rows %s\nloaded", 3, extra={"rows": 3, "table": "orders"})
    [record] = _records(stream)
    assert RFC3339_UTC.fullmatch(record.pop("time"))
    assert record == {
        "level": "INFO",
        "logger": "eventfn.pipeline",
        "message": "rows 3\nloaded",
        "service": "csv-ingest",
        "rows": 3,
        "table": "orders",
    }
    assert stream.getvalue().count("\n") == 1


def test_context_fields_inside_log_context_only(stream: io.StringIO) -> None:
    logger = get_logger("pipeline")
    logger.info("before")
    with log_context(trace_id="a" * 32, event_id="evt-1", event_type="t.v1", event_source=None):
        logger.info("outer")
        with log_context(event_id="evt-2", function="fn"):
            logger.info("inner")
        logger.info("outer again")
    logger.info("after")
    fields = ("trace_id", "event_id", "event_type", "event_source", "function")
    seen = [{k: r[k] for k in fields if k in r} for r in _records(stream)]
    outer = {"trace_id": "a" * 32, "event_id": "evt-1", "event_type": "t.v1"}
    assert seen == [
        {},
        outer,
        {**outer, "event_id": "evt-2", "function": "fn"},
        outer,
        {},
    ]


def test_context_does_not_leak_into_other_threads(stream: io.StringIO) -> None:
    logger = get_logger("worker")
    with log_context(event_id="evt-1"):
        thread = threading.Thread(target=logger.info, args=("from thread",))
        thread.start()
        thread.join()
        logger.info("from caller")
    records = {r["message"]: r for r in _records(stream)}
    assert "event_id" not in records["from thread"]
    assert records["from caller"]["event_id"] == "evt-1"


def test_context_and_extras_cannot_override_base_fields(stream: io.StringIO) -> None:
    with log_context(level="fake", service="fake", event_id="evt-1"):
        get_logger("x").warning("msg", extra={"logger": "fake", "event_id": "evt-extra"})
    [record] = _records(stream)
    assert (record["level"], record["service"], record["logger"]) == (
        "WARNING",
        "csv-ingest",
        "eventfn.x",
    )
    assert record["event_id"] == "evt-extra"


def test_exception_rendered_as_type_and_stack(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad row 7")
    except ValueError:
        get_logger("pipeline").exception("handler failed")
    [record] = _records(stream)
    assert record["level"] == "ERROR"
    assert record["message"] == "handler failed"
    assert record["exc_type"] == "ValueError"
    assert record["stack"].startswith("Traceback (most recent call last):")
    assert "test_exception_rendered_as_type_and_stack" in record["stack"]


def test_unserialisable_extra_is_rendered_as_text(stream: io.StringIO) -> None:
    get_logger("x").info("obj", extra={"when": object})
    [record] = _records(stream)
    assert record["when"] == "<class 'object'>"


def test_configure_logging_is_idempotent_and_keeps_root_untouched() -> None:
    root_handlers = list(logging.getLogger().handlers)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("fn", "INFO", first)
    configure_logging("fn2", "INFO", second)
    logger = logging.getLogger("eventfn")
    # pytest attaches its capture handlers to non-propagating loggers during a test: count ours
    json_handlers = [h for h in logger.handlers if type(h).__name__ == "_JsonHandler"]
    assert len(json_handlers) == 1
    assert logger.propagate is False
    get_logger("x").info("once")
    assert first.getvalue() == ""
    [record] = _records(second)
    assert (record["message"], record["service"]) == ("once", "fn2")
    assert logging.getLogger().handlers == root_handlers


def test_level_filters_records() -> None:
    out = io.StringIO()
    configure_logging("fn", "warning", out)
    logger = get_logger("x")
    logger.info("dropped")
    logger.warning("kept")
    assert [r["message"] for r in _records(out)] == ["kept"]


def test_unknown_level_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        configure_logging("fn", "LOUD", io.StringIO())


def test_get_logger_names_children_of_eventfn() -> None:
    assert get_logger("pipeline").name == "eventfn.pipeline"
    assert get_logger("eventfn._tracing").name == "eventfn._tracing"
    assert get_logger("eventfn").name == "eventfn"
    assert get_logger("eventfnx").name == "eventfn.eventfnx"


def test_formatter_reads_context_without_the_handler_filter() -> None:
    record = logging.LogRecord("eventfn.x", logging.INFO, __file__, 1, "m", (), None)
    with log_context(trace_id="b" * 32):
        line = JsonFormatter("svc").format(record)
    assert json.loads(line)["trace_id"] == "b" * 32
