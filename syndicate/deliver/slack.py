"""The `slack` target: a Slack incoming webhook, posting a draft's summary line and link.

Slack reads `&`, `<` and `>` as markup (links, mentions), so user text is escaped to arrive as
text. Delivery, retries and the rule for a lost answer are the webhook's.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from .webhook import SignedPostSettings, WebhookDelivery, summary_text


class SlackDelivery(WebhookDelivery):
    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"text": slack_escape(summary_text(payload))}


def slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions); user text must arrive as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSettings(SignedPostSettings):
    """`type: slack`: `url` is the incoming webhook's (a secret itself: never quoted)."""

    type: Literal["slack"]
    what: ClassVar[str] = "a slack target, which posts a line to a channel"
    delivery = SlackDelivery
