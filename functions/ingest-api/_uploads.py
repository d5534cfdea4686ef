"""`POST /v1/uploads/<prefix>`: one multipart file into the bucket, under `<prefix>/<name>`.

The prefix must be on the allow-list (the storage pipeline's input prefixes) and the token must
grant `uploads:write:<prefix>`. The file name is reduced to a safe last path segment (no
directories, no `..`, no control characters, at most 200 bytes) and the key is checked with
`validate_key`. The file is streamed to S3 with `upload_fileobj` (multipart for large files);
the bucket notification then starts the storage pipeline by itself.
"""

from __future__ import annotations

import io
import mimetypes
import re
import threading
import unicodedata
from typing import IO, Any

from eventfn import DependencyUnavailable, UnsupportedContentType
from eventfn._objects import ObjectStore, validate_key
from eventfn._pipeline import Response
from eventfn._routes import HttpRequest, RouteContext, json_response

from ._auth import Authenticator
from ._config import IngestConfig
from ._errors import InvalidUpload, UnknownUploadPrefix

UPLOADS_PATH = "/v1/uploads/<prefix>"
FILE_FIELD = "file"
MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r"[^\w .()\[\]+,@&'=~-]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class Uploader:
    """Keeps one S3 client (boto3 clients are thread-safe and slow to create)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: ObjectStore | None = None

    def store(self, ctx: RouteContext) -> ObjectStore:
        with self._lock:
            if self._store is None:
                self._store = ObjectStore.from_settings(ctx.settings)
            return self._store

    def __call__(
        self, request: HttpRequest, ctx: RouteContext, config: IngestConfig, auth: Authenticator
    ) -> Response:
        principal = auth.authenticate(request.headers.get("authorization"))
        prefix = request.path_params["prefix"]
        auth.require(principal, f"uploads:write:{prefix}")
        if prefix not in config.upload_prefixes:
            allowed = ", ".join(config.upload_prefixes)
            raise UnknownUploadPrefix(f"uploads go to one of: {allowed}", field="prefix")
        name, stream, content_type = read_file_part(request)
        key = validate_key(f"{prefix}/{name}")
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        store = self.store(ctx)
        upload(store, key, stream, content_type)
        ctx.logger.info("uploaded %d bytes to %s for %s", size, key, principal.subject)
        body = {"bucket": store.bucket, "key": key, "size": size, "content_type": content_type}
        return json_response(201, body)


def read_file_part(request: HttpRequest) -> tuple[str, IO[bytes], str]:
    """The single `file` part of a multipart/form-data body: (safe name, stream, content type)."""
    from werkzeug.formparser import MultiPartParser
    from werkzeug.http import parse_options_header

    media, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary", "")
    if media != "multipart/form-data" or not boundary:
        raise UnsupportedContentType("send multipart/form-data", field="content-type")
    parser = MultiPartParser(max_form_memory_size=64 * 1024, max_form_parts=16)
    try:
        _, files = parser.parse(io.BytesIO(request.body), boundary.encode(), len(request.body))
    except ValueError:
        raise InvalidUpload("the multipart body cannot be parsed", field="body") from None
    parts = files.getlist(FILE_FIELD)
    if len(parts) != 1 or len(files) != 1:
        raise InvalidUpload(f"send exactly one file, in the field '{FILE_FIELD}'", field=FILE_FIELD)
    part = parts[0]
    name = safe_name(part.filename or "")
    return name, part.stream, _content_type(part.mimetype, name)


def safe_name(filename: str) -> str:
    """The last path segment, NFC, unsafe characters replaced by `_`, at most 200 bytes."""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = _SPACES.sub(" ", _UNSAFE.sub("_", name)).strip(" .")
    if not name:
        raise InvalidUpload("the file has no usable name", field="filename")
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix.encode()) > 16:
        stem, dot, suffix = name, "", ""
    budget = MAX_NAME_BYTES - len((dot + suffix).encode())
    stem = stem.encode()[:budget].decode(errors="ignore").rstrip(" .")
    return (stem or "file") + dot + suffix


def _content_type(declared: str, name: str) -> str:
    if declared and _MEDIA_TYPE.match(declared) and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def upload(store: ObjectStore, key: str, stream: IO[bytes], content_type: str) -> None:
    """Stream the file to the bucket; 503 when the store refuses or cannot be reached."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    extra: dict[str, Any] = {"ContentType": content_type}
    try:
        store.client.upload_fileobj(stream, store.bucket, key, ExtraArgs=extra)
    except (S3UploadFailedError, BotoCoreError, ClientError):
        raise DependencyUnavailable(
            "the object store did not take the file", retry_after=1
        ) from None
