"""notifier's exact JSON for every consumed type, compared with golden files in testdata/
(`EVENTFN_UPDATE_GOLDEN=1` rewrites them; review the diff), posted to a loopback webhook.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from notifier_testing import EVENTS, ROOT, Served, Webhook, event_of, serving

TESTDATA = Path(__file__).resolve().parent / "testdata"
UPDATE_GOLDEN = os.environ.get("EVENTFN_UPDATE_GOLDEN") == "1"
# Types whose schemas other issues own; the golden tests read them without a schema so that
# formatting is tested on its own (test_routes_reference_fields_of_the_schemas checks the names).
UNOWNED = (
    "eventfn.backup.completed.v1",
    "eventfn.backup.failed.v1",
    "eventfn.workflow.execution.failed.v1",
)


@pytest.fixture
def golden_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> Iterator[Served]:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for path in (ROOT / "schemas").iterdir():
        if path.stem not in UNOWNED:
            shutil.copy(path, schemas / path.name)
    with serving(tmp_path, monkeypatch, webhook, schemas_dir=schemas) as handle:
        yield handle


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_exact_json_posted_to_teams_and_slack(golden_served: Served, event_type: str) -> None:
    response = golden_served.deliver(event_of(event_type))
    assert response.status_code == 204, response.get_data(as_text=True)
    for channel in ("teams", "slack"):
        [(_path, headers, body)] = [
            r for r in golden_served.webhook.received if r[0] == f"/{channel}"
        ]
        assert headers["content-type"] == "application/json; charset=utf-8"
        golden = TESTDATA / f"{event_type}.{channel}.json"
        posted = json.loads(body)
        if UPDATE_GOLDEN:
            text = json.dumps(posted, ensure_ascii=False, indent=2) + "\n"
            golden.write_text(text, encoding="utf-8")
        assert posted == json.loads(golden.read_text(encoding="utf-8")), channel
        # the wire bytes are the compact UTF-8 JSON of exactly that document
        assert body == json.dumps(posted, ensure_ascii=False, separators=(",", ":")).encode()


def test_teams_payload_is_an_adaptive_card_message(golden_served: Served) -> None:
    golden_served.deliver(event_of("eventfn.backup.job.failed.v1"))
    [teams] = golden_served.webhook.bodies("/teams")
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "Backup job j-2 FAILED"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Finished"] == "—"  # null renders as a dash
    [slack] = golden_served.webhook.bodies("/slack")
    assert slack["text"] == "Backup job j-2 FAILED"
    assert slack["blocks"][1]["text"]["text"] == "Access denied &lt;kms&gt; &amp; retry later"


def test_missing_fields_render_as_a_dash(golden_served: Served) -> None:
    event = event_of("eventfn.backup.failed.v1")
    golden_served.deliver(event.with_changes(data={"kind": "bucket"}))
    [slack] = golden_served.webhook.bodies("/slack")
    assert slack["blocks"][1]["text"]["text"] == "—"
    assert slack["blocks"][2]["fields"][1]["text"] == "*Snapshot*\n—"
