"""The `discord` target: a Discord webhook, posting a draft's summary line and link.

Discord takes at most 2,000 characters of `content`, and would ping whoever a text mentions:
`allowed_mentions` is empty, so an article that says @everyone pings nobody. Delivery, retries
and the rule for a lost answer are the webhook's.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from .webhook import SignedPostSettings, WebhookDelivery, summary_text

DISCORD_LIMIT = 2000


class DiscordDelivery(WebhookDelivery):
    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"content": summary_text(payload)[:DISCORD_LIMIT], "allowed_mentions": {"parse": []}}


class DiscordSettings(SignedPostSettings):
    """`type: discord`: `url` is the channel webhook's (a secret itself: never quoted)."""

    type: Literal["discord"]
    what: ClassVar[str] = "a discord target, which posts a line to a channel"
    delivery = DiscordDelivery
