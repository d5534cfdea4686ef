"""Why a document cannot be extracted: permanent errors, each with a code naming the cause.

All of them are 4xx answers, which Knative never retries: the broker sends the event to the
dead-letter sink. None of the statuses is 404, 408, 409 or 429 (those Knative does retry).
"""

from __future__ import annotations

from eventfn import PermanentError


class EncryptedDocument(PermanentError):
    """The document needs a password (a PDF with a user password, an encrypted DOCX)."""

    status = 422
    code = "encrypted-document"
    title = "The document is encrypted"


class CorruptDocument(PermanentError):
    """The bytes are not a readable document of the type they claim to be."""

    status = 422
    code = "corrupt-document"
    title = "The document is corrupt"


class EmptyDocument(PermanentError):
    """The object has no bytes at all."""

    status = 422
    code = "empty-document"
    title = "The document is empty"


class NoText(PermanentError):
    """The document parsed, but holds no extractable text (e.g. a scanned PDF: images only)."""

    status = 422
    code = "no-text"
    title = "The document contains no text"


class UnsupportedDocument(PermanentError):
    """Neither the key's extension nor the stored content type names a supported format."""

    status = 415
    code = "unsupported-document-type"
    title = "Unsupported document type"


class DocumentTooLarge(PermanentError):
    """The object (or a DOCX unpacked, or a PDF stream decompressed) exceeds the size limit."""

    status = 413
    code = "document-too-large"
    title = "The document is too large"


class ObjectNotFound(PermanentError):
    """The object of the event does not exist (deleted since, or a wrong bucket)."""

    status = 422
    code = "object-not-found"
    title = "The object does not exist"
