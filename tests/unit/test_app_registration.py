"""Handler registration: loops refused, duplicates refused, frozen after start, matching."""

from __future__ import annotations

import pytest

from eventfn import App, Event, RegistrationError, UnknownEventType


def _noop(event: Event, ctx: object) -> None:
    return None


def test_reply_type_equal_to_input_type_is_refused() -> None:
    app = App("f")
    with pytest.raises(RegistrationError, match="loop"):
        app.on("a.v1", reply_type="a.v1")(_noop)


def test_duplicate_registration_is_refused() -> None:
    app = App("f")
    app.on("a.v1")(_noop)
    with pytest.raises(RegistrationError, match="already registered"):
        app.on("a.v1")(_noop)


def test_same_type_with_different_subject_prefixes_is_allowed() -> None:
    app = App("f")
    app.on("a.v1", subject_prefix="documents/")(_noop)
    app.on("a.v1")(_noop)
    assert len(app.handlers) == 2


def test_registration_closes_when_serving_starts() -> None:
    app = App("f")
    app.on("a.v1")(_noop)
    app.freeze()
    with pytest.raises(RegistrationError, match="already serving"):
        app.on("b.v1")(_noop)
    with pytest.raises(RegistrationError):
        app.on_start(lambda: None)


def test_an_app_without_handlers_cannot_serve() -> None:
    with pytest.raises(RegistrationError, match="no handler"):
        App("empty").freeze()


def test_longest_subject_prefix_wins() -> None:
    app = App("f")
    general = app.on("a.v1")(lambda e, c: "general")
    docs = app.on("a.v1", subject_prefix="documents/")(lambda e, c: "docs")
    pdfs = app.on("a.v1", subject_prefix="documents/pdf/")(lambda e, c: "pdfs")
    assert app.match(Event.new("a.v1", "/s", subject="documents/pdf/x")).func is pdfs
    assert app.match(Event.new("a.v1", "/s", subject="documents/x")).func is docs
    assert app.match(Event.new("a.v1", "/s", subject="other")).func is general
    assert app.match(Event.new("a.v1", "/s")).func is general


def test_unknown_type_names_existing_handlers() -> None:
    app = App("f")
    app.on("a.v1")(_noop)
    app.on("b.v1", subject_prefix="x/")(_noop)
    with pytest.raises(UnknownEventType) as error:
        app.match(Event.new("c.v1", "/s"))
    assert "a.v1" in error.value.detail and "b.v1 (subject x/*)" in error.value.detail
    assert error.value.field == "type"


def test_prefix_only_handler_does_not_take_other_subjects() -> None:
    app = App("f")
    app.on("a.v1", subject_prefix="documents/")(_noop)
    with pytest.raises(UnknownEventType):
        app.match(Event.new("a.v1", "/s", subject="raw/x.csv"))


def test_default_idempotency_key_is_source_and_id_and_can_be_declared() -> None:
    app = App("f")
    app.on("a.v1")(_noop)
    app.on("b.v1", key=lambda e: e.data["order"])(_noop)
    a = Event.new("a.v1", "/s", id="1")
    assert app.match(a).idempotency_key(a) == "/s\x1f1"
    b = Event.new("b.v1", "/s", {"order": "o-9"})
    assert app.match(b).idempotency_key(b) == "o-9"


def test_lifecycle_hooks_run_in_order() -> None:
    calls: list[str] = []
    app = App("f")
    app.on("a.v1")(_noop)
    app.on_start(lambda: calls.append("start1"))
    app.on_start(lambda: calls.append("start2"))
    app.on_stop(lambda: calls.append("stop1"))
    app.on_stop(lambda: calls.append("stop2"))
    app.ready_check(lambda: False)
    app.run_start_hooks()
    app.run_stop_hooks()
    assert calls == ["start1", "start2", "stop2", "stop1"]
    assert app.is_ready() is False
