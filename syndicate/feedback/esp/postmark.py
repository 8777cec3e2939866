"""Postmark bounce and spam-complaint webhooks.

Postmark does not sign its webhooks; its documented protection is HTTP Basic credentials written
into the webhook URL (`https://user:pass@host/path`), which it sends as an Authorization header.
So this checks that header against the configured pair, in constant time. There is no signed
timestamp, so a captured request could be replayed; a replayed bounce only repeats a verdict
already given, and TLS keeps the credentials from being captured in the first place.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from ...validation import Strict
from .. import Feedback, ForgedWebhook, Kind
from .._text import address, header, json_body, one_line

__all__ = ["PostmarkSettings", "verify_and_read"]

# Postmark's bounce Type names. AutoResponder, Subscribe, OpenRelayTest and the like are not
# verdicts on the address and yield nothing.
_KINDS: dict[str, Kind] = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "ManuallyDeactivated": "hard",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
    "Blocked": "soft",
    "SpamComplaint": "complaint",
    "Unsubscribe": "unsubscribe",
}


class PostmarkSettings(Strict):
    # The user and password put in the webhook URL; normally ${POSTMARK_WEBHOOK_USER} and
    # ${POSTMARK_WEBHOOK_PASSWORD}.
    username: SecretStr
    password: SecretStr


def verify_and_read(
    settings: PostmarkSettings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[Feedback]:
    """The bounce or complaint of one Postmark webhook request; ForgedWebhook without the right
    Basic credentials. `now` is unused: Postmark sends no timestamp to check."""
    given = header(headers, "Authorization")
    if not given or not given.lower().startswith("basic "):
        raise ForgedWebhook("the request has no HTTP Basic credentials")
    pair = f"{settings.username.get_secret_value()}:{settings.password.get_secret_value()}"
    expected = base64.b64encode(pair.encode("utf-8"))
    if not hmac.compare_digest(given[6:].strip().encode("utf-8", "replace"), expected):
        raise ForgedWebhook("the request's HTTP Basic credentials are wrong")
    return _feedback(json_body(body))


def _feedback(payload: Any) -> list[Feedback]:
    """A Bounce record (RecordType "Bounce", its Type naming the kind) or a SpamComplaint record.
    Postmark's MessageID is its own id, not the Message-ID header we wrote, so it is not used."""
    if not isinstance(payload, dict) or payload.get("RecordType") not in ("Bounce", "SpamComplaint"):
        return []
    kind_name = "SpamComplaint" if payload["RecordType"] == "SpamComplaint" else str(payload.get("Type"))
    kind = _KINDS.get(kind_name)
    if kind is None:
        return []
    detail = one_line(kind_name, payload.get("Details") or payload.get("Description"))
    return [Feedback(kind, address(payload.get("Email")), None, None, detail, "postmark")]
