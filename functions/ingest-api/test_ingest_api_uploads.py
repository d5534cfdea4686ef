"""ingest-api's uploads: multipart files streamed into a real S3 API (moto's server on loopback)
under `<prefix>/<safe name>`, and every way an upload is refused."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "eventfn-data"


# the test helpers, importable by name as tests/conftest.py makes them under tests/
sys.path[:0] = [str(ROOT / "tests" / "harness"), str(ROOT / "tests" / "pipelines")]
import domain_testing as dt  # noqa: E402
from loopback_testing import moto_server, s3_client  # noqa: E402

KEY = dt.SigningKey.ec("ec-up")


@dataclass
class Api:
    client: Any

    def token(self, scope: str) -> dict[str, str]:
        return dt.bearer(KEY.sign(dt.claims(scope)))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 server on loopback; ingest-api's settings point at it."""
    with moto_server(monkeypatch) as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield client, endpoint


@pytest.fixture
def uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: Any) -> Iterator[tuple[Api, Any]]:
    client, endpoint = s3
    dt.ingest_env(monkeypatch, INGEST_JWKS_FILE=str(dt.write_jwks(tmp_path / "jwks.json", KEY)))
    with dt.serve(
        "ingest-api", dt.settings(tmp_path, None, s3_endpoint_url=endpoint, bucket=BUCKET)
    ) as wsgi:
        yield Api(wsgi.test_client()), client


def _upload(
    api: Api, prefix: str, files: dict[str, Any], scope: str = "uploads:write:documents"
) -> Any:
    return api.client.post(f"/v1/uploads/{prefix}", data=files, headers=api.token(scope))


def test_an_upload_is_streamed_to_the_bucket_under_prefix_and_safe_name(
    uploads: tuple[Api, Any],
) -> None:
    api, client = uploads
    content = b"revenue up\n" * 1000
    files = {
        "file": (
            io.BytesIO(content),
            "../../etc/Quarterly report (été)\x07.txt",
            "text/plain",
        )
    }
    response = _upload(api, "documents", files)
    assert response.status_code == 201, response.get_data(as_text=True)
    key = "documents/Quarterly report (été).txt"
    assert response.get_json() == {
        "bucket": BUCKET,
        "key": key,
        "size": len(content),
        "content_type": "text/plain",
    }
    stored = client.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == content and stored["ContentType"] == "text/plain"


@pytest.mark.parametrize(
    ("prefix", "files", "scope", "status", "code"),
    [
        (
            "documents",
            {"file": (io.BytesIO(b"x"), "a.txt")},
            "uploads:write:raw",
            403,
            "insufficient-scope",
        ),
        (
            "text",
            {"file": (io.BytesIO(b"x"), "a.txt")},
            "uploads:write:text",
            404,
            "unknown-upload-prefix",
        ),
        (
            "documents",
            {"other": (io.BytesIO(b"x"), "a.txt")},
            "uploads:write:documents",
            400,
            "invalid-upload",
        ),
        (
            "documents",
            {"file": [(io.BytesIO(b"x"), "a.txt"), (io.BytesIO(b"y"), "b.txt")]},
            "uploads:write:documents",
            400,
            "invalid-upload",
        ),
        (
            "documents",
            {"file": (io.BytesIO(b"x"), "..")},
            "uploads:write:documents",
            400,
            "invalid-upload",
        ),
    ],
    ids=["wrong-scope", "prefix-not-allowed", "no-file-field", "two-files", "dot-dot-name"],
)
def test_refused_uploads(
    uploads: tuple[Api, Any], prefix: str, files: dict[str, Any], scope: str, status: int, code: str
) -> None:
    api, client = uploads
    response = _upload(api, prefix, files, scope)
    assert response.status_code == status
    assert dt.problem(response)["type"] == f"urn:eventfn:problem:{code}"
    assert client.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_an_upload_that_is_not_multipart_is_415(uploads: tuple[Api, Any]) -> None:
    api, _ = uploads
    response = api.client.post(
        "/v1/uploads/documents",
        data=b"raw",
        headers={**api.token("uploads:write:documents"), "content-type": "application/pdf"},
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\Users\\ada\\report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..", None),
        (".hidden", "hidden"),
        ("a\x00b\x1fc.txt", "abc.txt"),
        ("rm -rf $HOME; echo.sh", "rm -rf _HOME_ echo.sh"),
        ("e\u0301te\u0301.txt", "été.txt"),
        ("x" * 300 + ".csv", "x" * 196 + ".csv"),
    ],
)
def test_file_names_are_reduced_to_one_safe_segment(filename: str, expected: str | None) -> None:
    from eventfn._loader import load_function

    load_function("ingest-api", ROOT / "functions")
    from eventfn_functions.ingest_api._errors import InvalidUpload
    from eventfn_functions.ingest_api._uploads import safe_name

    if expected is None:
        with pytest.raises(InvalidUpload):
            safe_name(filename)
    else:
        assert safe_name(filename) == expected
