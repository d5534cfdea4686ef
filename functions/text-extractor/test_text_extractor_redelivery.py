"""text-extractor's redeliveries, overwritten versions and objects outside documents/, through the
WSGI test client against a real S3 API (moto's server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import documents_testing as dt
import pytest
from text_extractor_testing import EXTRACTED


def test_redelivery_writes_one_text_object_and_emits_one_event_id(
    extractor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = extractor.s3
    s3.put_bucket_versioning(Bucket=dt.BUCKET, VersioningConfiguration={"Status": "Enabled"})
    event = extractor.upload("documents/a.txt", b"Hello there.", "text/plain")
    again = dt.created_event(
        "documents/a.txt", event.data["etag"], 12, event_id="second-notification"
    )
    responses = [extractor.deliver(e, m) for e, m in ((event, "binary"), (event, "structured"))]
    responses.append(extractor.deliver(again))
    assert [r.status_code for r in responses] == [204, 204, 204]
    versions = s3.list_object_versions(Bucket=dt.BUCKET, Prefix="text/")["Versions"]
    assert [v["Key"] for v in versions] == ["text/documents/a.txt.txt"]
    [emitted] = extractor.sink.events(EXTRACTED)
    # a process with an empty idempotency store (expired records) derives the same id
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    fresh_state = tmp_path / "fresh"
    endpoint = s3.meta.endpoint_url
    with dt.harness("text-extractor", fresh_state, monkeypatch, endpoint=endpoint) as fresh:
        assert fresh.deliver(again).status_code == 204
        [replayed] = fresh.sink.events(EXTRACTED)
    assert replayed.id == emitted.id and replayed.data == emitted.data


def test_an_overwritten_version_is_skipped(extractor: Any) -> None:
    old = extractor.upload("documents/a.txt", b"first version", "text/plain")
    extractor.upload("documents/a.txt", b"second version", "text/plain")
    assert extractor.deliver(old).status_code == 204
    assert extractor.keys("text/") == [] and extractor.sink.received == []


def test_objects_outside_documents_are_ignored(extractor: Any) -> None:
    event = extractor.upload("other/a.txt", b"not mine", "text/plain")
    assert extractor.deliver(event).status_code == 204
    folder = extractor.upload("documents/folder/", b"", None)
    assert extractor.deliver(folder).status_code == 204
    assert extractor.keys("text/") == [] and extractor.sink.received == []
