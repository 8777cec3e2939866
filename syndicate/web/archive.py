"""The web archive: the HTML of an email as it went out, from the draft the ledger kept
(`draft_bodies`), with the per-reader placeholders filled with neutral values: no reader's
name or address, and an unsubscribe link to the page that explains where the personal one is."""

from __future__ import annotations

import html
import json

from ..compose.email import PLACEHOLDERS
from ..config import Config
from ..ledger import Ledger


def neutral_values(config: Config) -> dict[str, str]:
    """What replaces each placeholder in an archived email (unescaped)."""
    assert config.serve is not None
    return {
        "name": "",
        "email": "",
        "greeting": "Hello,",
        "unsubscribe_url": f"{config.serve.public_url}unsubscribe",
    }


def archived_html(config: Config, channel: str, draft_key: str) -> str | None:
    """The email's HTML, or None: no ledger, no such draft, not an email, or none of its
    messages went out yet (a draft is stored just before its first message)."""
    ledger = Ledger.reader(config)
    if ledger is None:
        return None
    try:
        stored = ledger.draft_body(channel, draft_key)
        if stored is None or not ledger.draft_went_out(channel, draft_key):
            return None
    finally:
        ledger.close()
    try:
        payload = json.loads(stored)["payload"]
    except (ValueError, KeyError, TypeError):
        return None
    if (
        not isinstance(payload, dict)
        or payload.get("kind") != "email"
        or not isinstance(payload.get("html"), str)
    ):
        return None
    page: str = payload["html"]
    for field, value in neutral_values(config).items():
        page = page.replace(PLACEHOLDERS[field], html.escape(value))
    return page
