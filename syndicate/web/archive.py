"""The web archive: the HTML of an email as it went out, from the draft the ledger kept
(`draft_bodies`), with the per-reader placeholders filled with neutral values: no reader's
name or address, and an unsubscribe link to the page that explains where the personal one is."""

from __future__ import annotations

import html
import json
import re

from ..compose.email import PLACEHOLDERS
from ..config import Config
from ..ledger import Ledger
from ..personal import FIELD, field_key, greeting, reader_fields
from ..templating import greeting_source

_FIELD_OF = {marker: name for name, marker in PLACEHOLDERS.items()}
# Every per-reader marker: the named placeholders and any `recipient.<field>` a template used.
_MARKER = re.compile("|".join([*(re.escape(m) for m in PLACEHOLDERS.values()), FIELD.pattern]))


def neutral_values(config: Config) -> dict[str, str]:
    """What replaces each marker in an archived email (unescaped): a reader with no name, no
    address and no attributes (a field's own fallback then shows, as for such a reader), the
    site's greeting for them, and the page explaining where the personal unsubscribe link is."""
    assert config.serve is not None
    fields = reader_fields("", "", {})
    source, where = greeting_source(config)
    fields["greeting"] = greeting(source, fields, where, config.site.language)
    fields["unsubscribe_url"] = f"{config.serve.public_url}unsubscribe"
    return fields


def neutralise(page: str, config: Config) -> str:
    """`page` (HTML) with every per-reader marker replaced by its neutral value, escaped."""
    values = neutral_values(config)

    def value(match: re.Match[str]) -> str:
        named = _FIELD_OF.get(match.group(0))
        key, fallback = (named, None) if named is not None else field_key(match)
        return html.escape(values.get(key) or fallback or "")

    return _MARKER.sub(value, page)


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
    return neutralise(payload["html"], config)
