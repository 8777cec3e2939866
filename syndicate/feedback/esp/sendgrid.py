"""SendGrid (Twilio) Event Webhook: bounce, dropped, spamreport and unsubscribe events.

With "Signed Event Webhook Requests" on, SendGrid signs `timestamp + raw body` with ECDSA P-256
and SHA-256, and sends the base64 DER signature in X-Twilio-Email-Event-Webhook-Signature and
the timestamp in X-Twilio-Email-Event-Webhook-Timestamp. The verification key is the base64 DER
public key shown in SendGrid's mail settings. The body must be the raw bytes received: a
re-serialised JSON would not verify. SendGrid documents no tolerance for the timestamp; a
request older than `max_age_seconds` is refused as a replay.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, field_validator

from ...validation import Strict
from .. import Feedback, ForgedWebhook, Kind
from .._text import address, check_fresh, header, json_body, message_id, one_line

__all__ = ["SendgridSettings", "verify_and_read"]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# What a `dropped` event's reason says SendGrid suppressed the address for.
_DROPPED: dict[str, Kind] = {
    "Bounced Address": "hard",
    "Invalid": "hard",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribe",
}


class SendgridSettings(Strict):
    # The verification key (base64 DER, as SendGrid shows it). Public, so not a SecretStr.
    public_key: str
    max_age_seconds: int = Field(default=900, gt=0)

    @field_validator("public_key")
    @classmethod
    def _p256(cls, value: str) -> str:
        _load_key(value)
        return value


def _load_key(value: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise ValueError("is not a base64 DER public key (copy SendGrid's verification key)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("is not an ECDSA P-256 public key")
    return key


def verify_and_read(
    settings: SendgridSettings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[Feedback]:
    """The feedback of a signed batch of SendGrid events; ForgedWebhook if a signature header is
    missing, the signature does not verify, or the timestamp is stale."""
    given, stamp = header(headers, SIGNATURE_HEADER), header(headers, TIMESTAMP_HEADER)
    if not given or not stamp:
        raise ForgedWebhook(f"the request lacks {SIGNATURE_HEADER if not given else TIMESTAMP_HEADER}")
    try:
        signature = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        raise ForgedWebhook("the SendGrid signature is not base64") from None
    try:
        _load_key(settings.public_key).verify(
            signature, stamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise ForgedWebhook("the SendGrid signature does not match") from None
    try:
        moment = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise ForgedWebhook("the SendGrid timestamp is not a number of seconds") from None
    check_fresh(moment, now, settings.max_age_seconds)
    events = json_body(body)
    return (
        [found for event in events if isinstance(event, dict) for found in _feedback(event)]
        if isinstance(events, list)
        else []
    )


def _feedback(event: dict[str, Any]) -> list[Feedback]:
    """bounce (type "blocked" or a 4.x.x status -> soft, else hard), dropped (by its reason),
    spamreport, unsubscribe and group_unsubscribe. `smtp-id` is the Message-ID we wrote."""
    name = event.get("event")
    kind: Kind | None
    if name == "bounce":
        transient = event.get("type") == "blocked" or str(event.get("status", "")).startswith("4")
        kind = "soft" if transient else "hard"
    elif name == "dropped":
        kind = _DROPPED.get(str(event.get("reason")))
    elif name == "spamreport":
        kind = "complaint"
    elif name in ("unsubscribe", "group_unsubscribe"):
        kind = "unsubscribe"
    else:
        kind = None
    if kind is None:
        return []
    detail = one_line(event.get("status"), name, event.get("type"), event.get("reason"))
    return [
        Feedback(
            kind, address(event.get("email")), None, message_id(event.get("smtp-id")), detail, "sendgrid"
        )
    ]
