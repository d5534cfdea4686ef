"""text-extractor: documents uploaded under `documents/` in, their plain text out.

Consumes `eventfn.storage.object.created.v1` for keys under `documents/` (PDF, DOCX, plain text,
Markdown, HTML), writes the text as UTF-8 to `text/<key>.txt` in the same bucket and emits
`eventfn.document.text.extracted.v1`. Bad documents (encrypted, corrupt, empty, unsupported,
too large) are refused with a 4xx problem naming the cause, so the broker dead-letters them;
an unreachable object store answers 503 and the broker retries.

One object version (bucket, key, ETag) is the idempotency key: however often and by whichever
notification it arrives, it yields the same text object and the same emitted event id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from eventfn import App, Context, Event
from eventfn._objects import ObjectStore
from eventfn._settings import env_number

from . import fetch, formats
from .documents import extract_docx, extract_pdf
from .errors import DocumentTooLarge, EmptyDocument, NoText
from .language import guess_language
from .markup import extract_html, extract_markdown, extract_text
from .sink import TextSink

CREATED_TYPE = "eventfn.storage.object.created.v1"
EXTRACTED_TYPE = "eventfn.document.text.extracted.v1"
INPUT_PREFIX = "documents/"
OUTPUT_PREFIX = "text/"
OUTPUT_SUFFIX = ".txt"
OUTPUT_CONTENT_TYPE = "text/plain; charset=utf-8"

ENV_MAX_BYTES = "TEXT_EXTRACTOR_MAX_BYTES"
ENV_SPOOL_BYTES = "TEXT_EXTRACTOR_SPOOL_BYTES"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_SPOOL_BYTES = 4 * 1024 * 1024

app = App("text-extractor")


@dataclass(frozen=True)
class ExtractorConfig:
    """Size limit of a document and how much of it (or of its text) is kept in memory."""

    max_bytes: int = DEFAULT_MAX_BYTES
    spool_bytes: int = DEFAULT_SPOOL_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExtractorConfig:
        """`TEXT_EXTRACTOR_MAX_BYTES` (default 50 MiB), `TEXT_EXTRACTOR_SPOOL_BYTES` (4 MiB)."""
        return cls(
            max_bytes=env_number(env, ENV_MAX_BYTES, DEFAULT_MAX_BYTES, int, positive=True),
            spool_bytes=env_number(env, ENV_SPOOL_BYTES, DEFAULT_SPOOL_BYTES, int, positive=True),
        )


class Configured:
    """The configuration, read from the environment when the function starts."""

    def __init__(self) -> None:
        self.config = ExtractorConfig()

    def configure(self) -> None:
        """Start hook."""
        self.config = ExtractorConfig.from_env(os.environ)


configured = Configured()
app.on_start(configured.configure)


def object_version(event: Event) -> str:
    """Idempotency key: bucket, key and ETag (the event id when the ETag is unknown)."""
    data = event.data if isinstance(event.data, dict) else {}
    etag = str(data.get("etag") or "")
    if not etag:
        return f"{event.source}\x1f{event.id}"
    return "\x1f".join(("object", str(data.get("bucket")), str(data.get("key")), etag))


def text_key(key: str) -> str:
    """Where the text of `key` is written: `text/<key>.txt`."""
    return f"{OUTPUT_PREFIX}{key}{OUTPUT_SUFFIX}"


@app.on(CREATED_TYPE, subject_prefix=INPUT_PREFIX, reply_type=None, key=object_version)
def extract(event: Event, ctx: Context) -> None:
    """Extract the text of the created document and announce it."""
    data: dict[str, Any] = event.data
    key, bucket = str(data["key"]), str(data["bucket"])
    if not key.startswith(INPUT_PREFIX) or key.endswith("/"):
        ctx.logger.info("ignored: the key is not a document under %s", INPUT_PREFIX)
        return
    store = ObjectStore(ctx.objects.client, bucket=bucket)
    try:
        version = fetch.head(store, key, str(data.get("etag") or ""))
        fmt = _checked_format(version, data.get("content_type"), configured.config)
        extracted = _extract_and_store(store, version, fmt, configured.config)
    except fetch.Superseded:
        ctx.logger.info("ignored: the object was overwritten since; its new version has an event")
        return
    ctx.emit(EXTRACTED_TYPE, {"bucket": bucket, **extracted}, subject=key)


def _checked_format(
    version: fetch.ObjectVersion, event_content_type: str | None, config: ExtractorConfig
) -> formats.Format:
    """The document's format, once it is known to be non-empty, supported and within limits."""
    if version.size == 0:
        raise EmptyDocument("the object has no bytes", field="size")
    fmt = formats.detect(version.key, version.content_type or event_content_type)
    if version.size > config.max_bytes:
        raise DocumentTooLarge(
            f"the object has {version.size} bytes, the limit is {config.max_bytes}", field="size"
        )
    return fmt


def _extract_and_store(
    store: ObjectStore, version: fetch.ObjectVersion, fmt: formats.Format, config: ExtractorConfig
) -> dict[str, Any]:
    """Download, extract, upload the text; the data of the event to emit (without bucket)."""
    source = fetch.download(
        store, version, max_bytes=config.max_bytes, spool_bytes=config.spool_bytes
    )
    with source, TextSink(config.spool_bytes) as sink:
        pages = _extract(fmt, source, sink, version.content_type, config)
        if sink.chars == 0:
            raise NoText(f"the {fmt.name} document contains no extractable text")
        target = text_key(version.key)
        store.put(target, sink.file(), content_type=OUTPUT_CONTENT_TYPE)
        return {
            "key": version.key,
            "etag": version.etag,
            "text_key": target,
            "chars": sink.chars,
            "pages": pages,
            "language": guess_language(sink.sample),
            "content_type": fmt.content_type,
            "extractor": fmt.extractor,
            "size": version.size,
        }


def _extract(
    fmt: formats.Format,
    source: IO[bytes],
    sink: TextSink,
    content_type: str | None,
    config: ExtractorConfig,
) -> int | None:
    """Write the document's text into `sink`; the page count for PDFs, else None."""
    if fmt is formats.PDF:
        return extract_pdf(source, sink)
    if fmt is formats.DOCX:
        extract_docx(source, sink, config.max_bytes)
        return None
    encoding = formats.text_encoding(source, content_type, fmt)
    if fmt is formats.HTML:
        extract_html(source, sink, encoding)
    elif fmt is formats.MARKDOWN:
        extract_markdown(source, sink, encoding)
    else:
        extract_text(source, sink, encoding)
    return None


@app.on(CREATED_TYPE, reply_type=None, idempotent=False)
def outside_prefix(event: Event, ctx: Context) -> None:
    """Objects outside `documents/` are not this function's: acknowledged and left alone (the
    Trigger's prefix filter normally keeps them away)."""
    ctx.logger.info("ignored: subject outside %s", INPUT_PREFIX)
