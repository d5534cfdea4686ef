"""sentiment-analyzer through the WSGI test client: real S3 API (moto's server), SQLite and
PostgreSQL tables, a loopback broker stand-in; plus the chain text-extractor -> sentiment-analyzer
on the demo documents."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventfn._loader import load_function

ROOT = Path(__file__).resolve().parents[2]


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import documents_testing as dt  # noqa: E402
from loopback_testing import free_port  # noqa: E402

bd = dt.builders()
load_function("sentiment-analyzer", ROOT / "functions")
from eventfn_functions.sentiment_analyzer.scoring import (  # noqa: E402
    analyzer,
    excerpt,
    label_for,
    score_text,
)
from eventfn_functions.sentiment_analyzer.sentences import split_sentences  # noqa: E402

SCORED = dt.SCORED
POSITIVE, NEGATIVE = dt.POSITIVE, dt.NEGATIVE
extracted_event, publish_text = dt.extracted_event, dt.publish_text


@pytest.fixture
def analyzer_fn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("SENTIMENT_ANALYZER_MAX_CHARS", raising=False)
    with dt.harness("sentiment-analyzer", tmp_path, monkeypatch) as harness:
        yield harness


# -- through the function ----------------------------------------------------------------------


check_labels, check_upsert = dt.check_labels, dt.check_upsert


def test_documents_are_labelled_on_sqlite(analyzer_fn: Any) -> None:
    check_labels(analyzer_fn)


@pytest.mark.parametrize("idempotency", [True, False], ids=["idempotent", "upsert-only"])
def test_scoring_twice_keeps_one_row_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idempotency: bool
) -> None:
    with dt.harness(
        "sentiment-analyzer", tmp_path, monkeypatch, idempotency=idempotency
    ) as harness:
        check_upsert(harness)
        emitted = harness.sink.events(SCORED)
        assert len(emitted) == (2 if idempotency else 4)
        assert len({event.id for event in emitted}) == 2  # one id per document version


def test_a_text_without_sentences_is_neutral(analyzer_fn: Any) -> None:
    assert (
        analyzer_fn.deliver(publish_text(analyzer_fn, "documents/n.txt", "1234\n")).status_code
        == 204
    )
    [data] = [event.data for event in analyzer_fn.sink.events(SCORED)]
    assert (data["label"], data["sentences"], data["compound"], data["neutral"]) == (
        "neutral",
        0,
        0.0,
        1.0,
    )
    assert data["most_negative_sentence"] is None and data["most_negative_compound"] is None


def test_long_texts_are_scored_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTIMENT_ANALYZER_MAX_CHARS", "40")
    with dt.harness("sentiment-analyzer", tmp_path, monkeypatch) as h:
        text = "I love this wonderful gift. " + "I hate this awful rubbish! " * 20
        assert h.deliver(publish_text(h, "documents/long.txt", text)).status_code == 204
        [data] = [event.data for event in h.sink.events(SCORED)]
        [row] = h.sentiments()
    assert data["truncated"] is True and data["label"] == "positive"
    assert row["chars"] == len(text)  # the document's length, not the scored part's


def test_a_missing_text_object_is_a_permanent_error(analyzer_fn: Any) -> None:
    response = analyzer_fn.deliver(
        extracted_event("documents/x.txt", "text/documents/x.txt.txt", 3)
    )
    assert response.status_code == 422
    assert dt.problem(response)["type"] == "urn:eventfn:problem:text-not-found"
    assert analyzer_fn.sentiments() == [] and analyzer_fn.sink.received == []


def test_storage_down_is_retryable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with dt.harness("sentiment-analyzer", tmp_path, monkeypatch, endpoint=endpoint) as h:
        response = h.deliver(extracted_event("documents/x.txt", "text/documents/x.txt.txt", 3))
        assert response.status_code == 503 and h.sentiments() == []
    assert dt.problem(response)["type"] == "urn:eventfn:problem:dependency-unavailable"


# -- the chain on the demo documents -----------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "label"),
    [(bd.quarterly_review_pdf, "positive"), (bd.customer_feedback_docx, "negative")],
    ids=["quarterly-review.pdf", "customer-feedback.docx"],
)
def test_the_demo_documents_through_both_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Any, label: str
) -> None:
    demo = build()
    with (
        dt.harness("text-extractor", tmp_path / "x", monkeypatch) as extractor,
        dt.harness(
            "sentiment-analyzer",
            tmp_path / "s",
            monkeypatch,
            endpoint=extractor.s3.meta.endpoint_url,
        ) as analyzer_h,
    ):
        created = extractor.upload(demo.key, demo.content, demo.content_type)
        assert extractor.deliver(created).status_code == 204
        [extracted] = extractor.sink.events(dt.EXTRACTED)
        assert analyzer_h.deliver(extracted).status_code == 204
        [scored] = analyzer_h.sink.events(SCORED)
        [row] = analyzer_h.sentiments()
    assert scored.subject == demo.key and scored.data["label"] == label == row["label"]
    assert (row["object_key"], row["etag"]) == (demo.key, created.data["etag"])
    assert scored.data["most_negative_sentence"] and scored.data["most_negative_compound"] < -0.5


# -- scoring and sentences ---------------------------------------------------------------------


def test_labels_use_vaders_thresholds() -> None:
    assert [label_for(c) for c in (0.05, 0.0499, 0.0, -0.0499, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "neutral",
        "negative",
    ]


def test_the_compound_is_weighted_by_sentence_length() -> None:
    short, long = "Awful.", "The staff were friendly, helpful and genuinely kind to everyone here."
    vader = analyzer()
    a, b = vader.polarity_scores(short), vader.polarity_scores(long)
    expected = (a["compound"] * len(short) + b["compound"] * len(long)) / (len(short) + len(long))
    score = score_text(f"{short} {long}")
    assert score.sentences == 2 and score.compound == round(expected, 4)
    assert score.label == "positive" and score.most_negative_sentence == short


def test_the_most_negative_sentence_is_cut_to_200_characters() -> None:
    sentence = "This is a terrible, awful, horrible disaster " + "and " * 60 + "nothing else."
    score = score_text(sentence)
    assert len(sentence) > 200 and score.most_negative_sentence is not None
    assert len(score.most_negative_sentence) == 200
    assert score.most_negative_sentence == excerpt(sentence)
    assert score.most_negative_sentence.endswith("\u2026")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? four", ["One.", "Two!", "Three? four"]),
        ("Dr. Smith met J. Doe, e.g. at 3.5 p.m. today. Fine.", [
            "Dr. Smith met J. Doe, e.g. at 3.5 p.m. today.", "Fine."
        ]),
        ('He said "Great." Then left.', ['He said "Great."', "Then left."]),
        (
            "Quarterly review\nRevenue grew strongly in every region we serve and our\n"
            "customers are happy. Costs fell.",
            ["Quarterly review", "Revenue grew strongly in every region we serve and our "
             "customers are happy.", "Costs fell."],
        ),
        ("A strate-\ngy that was written over many lines of a narrow column.", [
            "A strate-gy that was written over many lines of a narrow column."
        ]),
        ("First paragraph without stop\n\nSecond one", [
            "First paragraph without stop", "Second one"
        ]),
        ("--- 42 ---\n\n***", []),
    ],
)  # fmt: skip
def test_sentence_splitting(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_very_long_sentences_are_cut() -> None:
    pieces = split_sentences("word " * 1000)
    assert len(pieces) == 9 and all(len(piece) <= 600 for piece in pieces)


def test_one_analyzer_per_process() -> None:
    barrier = threading.Barrier(8)
    seen: list[int] = []

    def grab() -> None:
        barrier.wait()
        seen.append(id(analyzer()))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and seen[0] == id(analyzer())
