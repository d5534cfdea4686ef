"""sentiment-analyzer on PostgreSQL: the same labels and the same idempotent upsert as on SQLite
(functions/sentiment-analyzer/test_sentiment_analyzer.py), through the test client against a
real S3 API (moto's server)."""

from __future__ import annotations

from pathlib import Path

import documents_testing as dt
import pytest
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_engine: Engine) -> str:
    """The migrated session database, every table emptied (by `pg_engine`)."""
    return pg_engine.url.render_as_string(hide_password=False)


def test_documents_are_labelled_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.delenv("SENTIMENT_ANALYZER_MAX_CHARS", raising=False)
    with dt.harness("sentiment-analyzer", tmp_path, monkeypatch, database_url=pg_url) as harness:
        dt.check_labels(harness)


@pytest.mark.parametrize("idempotency", [True, False], ids=["idempotent", "upsert-only"])
def test_scoring_twice_keeps_one_row_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str, idempotency: bool
) -> None:
    monkeypatch.delenv("SENTIMENT_ANALYZER_MAX_CHARS", raising=False)
    with dt.harness(
        "sentiment-analyzer", tmp_path, monkeypatch, database_url=pg_url, idempotency=idempotency
    ) as harness:
        dt.check_upsert(harness)
        assert len(harness.sink.events(dt.SCORED)) == (2 if idempotency else 4)
