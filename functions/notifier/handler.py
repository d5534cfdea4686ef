"""notifier: outcomes of the pipelines as Microsoft Teams cards and Slack Block Kit messages.

Consumes the outcome events listed in `NOTIFIED_TYPES`; `routes.yaml` (or the file named by
`NOTIFIER_CONFIG`) says, per type, which channels get a message, under which condition, and
what it says. Messages are POSTed to `NOTIFIER_TEAMS_WEBHOOK_URL` / `NOTIFIER_SLACK_WEBHOOK_URL`
(Secrets in the cluster, the capture endpoint of `eventfn dev` locally); a channel without a URL
is disabled (warned about at start).

Delivery is at least once. The runtime's idempotency middleware records the event as done in
the transaction that commits after the handler returned, so a redelivered event that completed
posts nothing. Two windows remain where a message can be posted twice: a crash (or lost
database) between the post and that commit, and a failure of the second channel after the
first one was posted (the broker's retry posts to both again).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from eventfn import App, ConfigurationError, Context, Event

from ._cards import render_message, slack_message, teams_message
from ._config import NotifierConfig, load_config
from ._webhook import RetryPolicy, WebhookPoster

ENV_CONFIG = "NOTIFIER_CONFIG"
ENV_TEAMS_URL = "NOTIFIER_TEAMS_WEBHOOK_URL"
ENV_SLACK_URL = "NOTIFIER_SLACK_WEBHOOK_URL"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "routes.yaml"
NOTIFIED_TYPES = (
    "eventfn.backup.log.audited.v1",
    "eventfn.backup.job.failed.v1",
    "eventfn.backup.completed.v1",
    "eventfn.backup.failed.v1",
    "eventfn.dataset.file.processed.v1",
    "eventfn.inventory.rejected.v1",
    "eventfn.document.sentiment.scored.v1",
    "eventfn.deadletter.recorded.v1",
    "eventfn.workflow.execution.failed.v1",
)

app = App("notifier")


class Notifier:
    """The handler; configuration and webhook URLs are read when the function starts."""

    def __init__(self) -> None:
        self.config = NotifierConfig({}, "(not configured)")
        self.urls: dict[str, str] = {}
        self.poster = WebhookPoster()

    def configure(self, env: Mapping[str, str] | None = None) -> None:
        """Start hook: load the routes, the webhook URLs and the retry policy."""
        env = os.environ if env is None else env
        config = load_config(Path(env.get(ENV_CONFIG) or DEFAULT_CONFIG))
        unknown = sorted(set(config.routes) - set(NOTIFIED_TYPES))
        if unknown:
            raise ConfigurationError(
                f"{config.source}: routes for {unknown}, which the notifier does not consume "
                f"(it consumes {', '.join(NOTIFIED_TYPES)})"
            )
        self.urls = webhook_urls(env)
        poster = self.poster
        self.poster = WebhookPoster(
            RetryPolicy.from_env(env),
            poster.transport,
            poster.sleep,
            poster.clock,
            poster.wall_clock,
        )
        self.config = config

    def disabled_channels(self) -> list[str]:
        """Channels some route uses but that have no webhook URL."""
        used = {channel for route in self.config.routes.values() for channel in route.channels}
        return sorted(used - set(self.urls))

    def __call__(self, event: Event, ctx: Context) -> None:
        route = self.config.routes.get(event.type)
        if route is None:
            ctx.logger.info("no route for %s; nothing posted", event.type)
            return
        if not route.applies(event):
            ctx.logger.info("%s does not meet its route's conditions; nothing posted", event.type)
            return
        message = render_message(route, event)
        for channel in route.channels:
            url = self.urls.get(channel)
            if url is None:
                ctx.logger.warning(
                    "%s has no webhook URL; %s not posted there", channel, event.type
                )
                continue
            payload = teams_message(message) if channel == "teams" else slack_message(message)
            attempts = self.poster.post(channel, url, payload)
            ctx.logger.info("posted %s to %s (%d attempt(s))", event.type, channel, attempts)


def webhook_urls(env: Mapping[str, str]) -> dict[str, str]:
    """The configured webhook URL of each channel; ConfigurationError for one that is not
    http(s) (without echoing it: it is a secret)."""
    urls: dict[str, str] = {}
    for channel, name in (("teams", ENV_TEAMS_URL), ("slack", ENV_SLACK_URL)):
        url = env.get(name, "").strip()
        if not url:
            continue
        if not url.lower().startswith(("https://", "http://")):
            raise ConfigurationError(f"{name} must be an http(s) URL")
        urls[channel] = url
    return urls


def _warn_disabled() -> None:
    disabled = notifier.disabled_channels()
    if disabled:
        import logging

        logging.getLogger("function.notifier").warning(
            "no webhook URL for %s: messages routed there are skipped", ", ".join(disabled)
        )


notifier = Notifier()
app.on_start(notifier.configure)
app.on_start(_warn_disabled)
for _event_type in NOTIFIED_TYPES:
    app.on(_event_type, reply_type=None)(notifier)
