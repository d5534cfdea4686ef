"""sentiment-analyzer: the sentiment of every extracted document, stored and announced.

Consumes `eventfn.document.text.extracted.v1`, reads the text object, scores it with VADER
sentence by sentence, upserts one row per document version (object key + ETag) into
`document_sentiments` in the event's transaction and emits
`eventfn.document.sentiment.scored.v1` (with the most negative sentence, for notifiers).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventfn import (
    App,
    Context,
    DependencyUnavailable,
    Event,
    InternalError,
    PermanentError,
)
from eventfn._event import utc_now_rfc3339
from eventfn._objects import ObjectStore
from eventfn._settings import env_number
from eventfn._tables_pipelines import document_sentiments

from .scoring import DocumentScore, score_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

EXTRACTED_TYPE = "eventfn.document.text.extracted.v1"
SCORED_TYPE = "eventfn.document.sentiment.scored.v1"
ENV_MAX_CHARS = "SENTIMENT_ANALYZER_MAX_CHARS"
DEFAULT_MAX_CHARS = 2_000_000
_MAX_UTF8_BYTES_PER_CHAR = 4

app = App("sentiment-analyzer")


class TextNotFound(PermanentError):
    """The text object the event names does not exist (deleted since)."""

    status = 422
    code = "text-not-found"
    title = "The extracted text does not exist"


@dataclass(frozen=True)
class AnalyzerConfig:
    """How much of a text is scored: its first `max_chars` characters."""

    max_chars: int = DEFAULT_MAX_CHARS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AnalyzerConfig:
        """`SENTIMENT_ANALYZER_MAX_CHARS` (default 2,000,000)."""
        return cls(max_chars=env_number(env, ENV_MAX_CHARS, DEFAULT_MAX_CHARS, int, positive=True))


class Configured:
    """The configuration, read from the environment when the function starts."""

    def __init__(self) -> None:
        self.config = AnalyzerConfig()

    def configure(self) -> None:
        """Start hook."""
        self.config = AnalyzerConfig.from_env(os.environ)


configured = Configured()
app.on_start(configured.configure)


def document_version(event: Event) -> str:
    """Idempotency key: bucket, key and ETag of the document (the event id without an ETag)."""
    data = event.data if isinstance(event.data, dict) else {}
    etag = str(data.get("etag") or "")
    if not etag:
        return f"{event.source}\x1f{event.id}"
    return "\x1f".join(("document", str(data.get("bucket")), str(data.get("key")), etag))


@app.on(EXTRACTED_TYPE, reply_type=None, key=document_version)
def analyze(event: Event, ctx: Context) -> None:
    """Score the document's text, store the result, announce it."""
    data: dict[str, Any] = event.data
    bucket, key, etag = str(data["bucket"]), str(data["key"]), str(data.get("etag") or "")
    store = ObjectStore(ctx.objects.client, bucket=bucket)
    text, truncated = read_text(store, str(data["text_key"]), configured.config.max_chars)
    score = score_text(text)
    if ctx.tx is None:
        raise InternalError("sentiment-analyzer needs a database")
    upsert_sentiment(
        ctx.tx,
        {
            "object_key": key,
            "etag": etag,
            "text_key": str(data["text_key"]),
            "chars": int(data.get("chars") or len(text)),
            "sentences": score.sentences,
            "compound": score.compound,
            "positive": score.positive,
            "neutral": score.neutral,
            "negative": score.negative,
            "label": score.label,
            "scored_at": utc_now_rfc3339(),
            "source_event": f"{event.source}/{event.id}"[:512],
        },
    )
    ctx.emit(SCORED_TYPE, scored_data(bucket, key, etag, score, truncated), subject=key)


def scored_data(
    bucket: str, key: str, etag: str, score: DocumentScore, truncated: bool
) -> dict[str, Any]:
    """The data of `eventfn.document.sentiment.scored.v1`."""
    return {
        "bucket": bucket,
        "key": key,
        "etag": etag,
        "compound": score.compound,
        "positive": score.positive,
        "neutral": score.neutral,
        "negative": score.negative,
        "label": score.label,
        "sentences": score.sentences,
        "most_negative_sentence": score.most_negative_sentence,
        "most_negative_compound": score.most_negative_compound,
        "truncated": truncated,
    }


def read_text(store: ObjectStore, key: str, max_chars: int) -> tuple[str, bool]:
    """The first `max_chars` characters of the UTF-8 text object, and whether there was more."""
    from botocore.exceptions import ClientError, HTTPClientError

    limit = max_chars * _MAX_UTF8_BYTES_PER_CHAR
    try:
        body = store.open(key)
        try:
            raw = body.read(limit)
            more = bool(body.read(1))
        finally:
            body.close()
    except HTTPClientError:
        raise DependencyUnavailable("object storage failed while reading", retry_after=1) from None
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise TextNotFound(f"text object {key!r} does not exist", field="text_key") from None
        raise
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(raw, final=not more)
    return text[:max_chars], more or len(text) > max_chars


def upsert_sentiment(tx: Connection, row: dict[str, Any]) -> None:
    """Insert the row, or replace the scores of the same document version (idempotent)."""
    dialect = tx.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(document_sentiments)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(document_sentiments)
    else:
        raise InternalError(f"no upsert for the {dialect} database dialect")
    statement = statement.values(**row)
    keys = ("object_key", "etag")
    updates = {name: statement.excluded[name] for name in row if name not in keys}
    tx.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates))
