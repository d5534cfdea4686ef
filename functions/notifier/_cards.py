"""The two message formats: a Microsoft Teams Adaptive Card and a Slack Block Kit message.

Teams: the incoming-webhook (Workflows) message format, `{"type": "message", "attachments":
[{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content":
<AdaptiveCard 1.4>}]}` — title TextBlock coloured by severity, optional text, a FactSet and a
subtle context line. Slack: `{"text": <fallback>, "blocks": [header, section, fields sections
(at most 10 fields each), context]}` with mrkdwn escaped (`&`, `<`, `>`) and Block Kit's length
limits applied. Both are built only from the event, so the same event gives the same JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventfn import Event

from ._config import Route

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
TEAMS_COLOURS = {"info": "Accent", "good": "Good", "warning": "Warning", "attention": "Attention"}
SLACK_EMOJI = {
    "info": ":information_source:",
    "good": ":white_check_mark:",
    "warning": ":warning:",
    "attention": ":rotating_light:",
}
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_PER_SECTION = 10


@dataclass(frozen=True)
class Message:
    """A rendered notification, independent of the channel."""

    title: str
    text: str | None
    facts: tuple[tuple[str, str], ...]
    severity: str
    context: str


def render_message(route: Route, event: Event) -> Message:
    """Fill the route's templates from the event."""
    context = " · ".join(
        part for part in (event.type, event.source, event.time or "", event.subject or "") if part
    )
    return Message(
        title=route.title.render(event),
        text=None if route.text is None else route.text.render(event),
        facts=tuple((name, template.render(event)) for name, template in route.facts),
        severity=route.severity,
        context=context,
    )


def teams_message(message: Message) -> dict[str, Any]:
    """The Teams incoming-webhook payload carrying one Adaptive Card 1.4."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "weight": "Bolder",
            "size": "Medium",
            "color": TEAMS_COLOURS[message.severity],
            "wrap": True,
        }
    ]
    if message.text:
        body.append({"type": "TextBlock", "text": message.text, "wrap": True})
    if message.facts:
        facts = [{"title": name, "value": value} for name, value in message.facts]
        body.append({"type": "FactSet", "facts": facts})
    body.append(
        {
            "type": "TextBlock",
            "text": message.context,
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    card = {
        "$schema": ADAPTIVE_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "fallbackText": message.title,
        "body": body,
        "msteams": {"width": "Full"},
    }
    attachment = {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def slack_message(message: Message) -> dict[str, Any]:
    """The Slack incoming-webhook payload: fallback text plus Block Kit blocks."""
    header = f"{SLACK_EMOJI[message.severity]} {message.title}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(header, SLACK_HEADER_MAX), "emoji": True},
        }
    ]
    if message.text:
        text = _cut(escape(message.text), SLACK_TEXT_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{escape(name)}*\n{escape(value)}", SLACK_FIELD_MAX)}
        for name, value in message.facts
    ]
    for start in range(0, len(fields), SLACK_FIELDS_PER_SECTION):
        section = fields[start : start + SLACK_FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": section})
    context = _cut(escape(message.context), SLACK_TEXT_MAX)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": _cut(escape(message.title), SLACK_TEXT_MAX), "blocks": blocks}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
