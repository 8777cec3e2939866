"""Mailgun event webhooks (failed, complained, unsubscribed).

Mailgun puts the signature in the JSON body: `signature.signature` is the hex HMAC-SHA256 of
`timestamp + token` keyed by the webhook signing key. A valid signature proves the pair came
from Mailgun but not that this request is new, so the timestamp must be recent
(`max_age_seconds`, 15 minutes by default) and a token is accepted once: tokens seen are kept
for as long as their timestamp would still pass, in this process (a second process behind a
load balancer keeps its own set; the age limit bounds what it could accept twice).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr

from ...validation import Strict
from .. import Feedback, ForgedWebhook, Kind
from .._text import address, check_fresh, json_body, message_id, obj, one_line

__all__ = ["MailgunSettings", "verify_and_read"]

_seen: dict[str, float] = {}  # token -> its timestamp
_seen_lock = threading.Lock()


class MailgunSettings(Strict):
    # The "HTTP webhook signing key" from Mailgun's settings; normally ${MAILGUN_WEBHOOK_KEY}.
    signing_key: SecretStr
    max_age_seconds: int = Field(default=900, gt=0)


def verify_and_read(
    settings: MailgunSettings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[Feedback]:
    """The feedback of one signed Mailgun event; ForgedWebhook if the signature is missing or
    wrong, the timestamp stale, or the token already used."""
    payload = json_body(body)
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict):
        raise ForgedWebhook("the request has no Mailgun signature")
    stamp, token, given = (signature.get(name) for name in ("timestamp", "token", "signature"))
    if not (isinstance(stamp, str | int) and isinstance(token, str) and isinstance(given, str) and token):
        raise ForgedWebhook("the Mailgun signature lacks its timestamp, token or signature")
    key = settings.signing_key.get_secret_value().encode("utf-8")
    expected = hmac.new(key, f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.lower().encode("utf-8", "replace"), expected.encode("ascii")):
        raise ForgedWebhook("the Mailgun signature does not match")
    try:
        moment = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise ForgedWebhook("the Mailgun timestamp is not a number of seconds") from None
    check_fresh(moment, now, settings.max_age_seconds)
    _once(token, moment.timestamp(), now.timestamp() - settings.max_age_seconds)
    return _feedback(payload.get("event-data"))


def _once(token: str, stamp: float, oldest: float) -> None:
    """Remember `token`; ForgedWebhook if it was seen. Tokens older than `oldest` are forgotten:
    their requests fail the age check anyway."""
    with _seen_lock:
        for old in [seen for seen, at in _seen.items() if at < oldest]:
            del _seen[old]
        if token in _seen:
            raise ForgedWebhook("the Mailgun token was already used (a replayed request)")
        _seen[token] = stamp


def _feedback(event: Any) -> list[Feedback]:
    """`failed` (severity permanent -> hard, temporary -> soft), `complained`, `unsubscribed`."""
    if not isinstance(event, dict):
        return []
    name = event.get("event")
    kind: Kind
    if name == "failed":
        kind = "hard" if event.get("severity") == "permanent" else "soft"
    elif name == "complained":
        kind = "complaint"
    elif name == "unsubscribed":
        kind = "unsubscribe"
    else:
        return []
    status = obj(event, "delivery-status")
    original = message_id(obj(obj(event, "message"), "headers").get("message-id"))
    detail = one_line(
        status.get("code"), name, event.get("reason"), status.get("message") or status.get("description")
    )
    return [Feedback(kind, address(event.get("recipient")), None, original, detail, "mailgun")]
