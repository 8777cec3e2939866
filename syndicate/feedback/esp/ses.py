"""Amazon SES bounce and complaint notifications, delivered by SNS to an HTTPS endpoint.

SNS signs each message with an RSA key whose certificate it publishes at `SigningCertURL`:
SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA, over a canonical string of `Name\\nvalue\\n`
pairs in a fixed order that depends on the message type. The certificate is trusted only from
https on an `sns.<region>.amazonaws.com` host (TLS verified), so a forger cannot point us at a
certificate of their own; it is fetched once per URL and kept. `Timestamp` is signed, and a
message older than `max_age_seconds` is refused as a replay.

A new subscription first sends a SubscriptionConfirmation whose SubscribeURL must be visited:
`verify` returns it (`SnsMessage.subscribe_url`) for the caller to fetch; `verify_and_read`
reads the feedback of a Notification and nothing from the other types.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import Field

from ...validation import Strict
from .. import Feedback, ForgedWebhook, Kind
from .._text import address, check_fresh, json_body, message_id, obj, objects, one_line

__all__ = ["SesSettings", "SnsMessage", "verify", "verify_and_read"]

# Fields signed, in order (AWS: "Verifying the signatures of Amazon SNS messages").
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
_OPTIONAL = {"Subject"}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_BOUNCE_KINDS: dict[str, Kind] = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}

_certs: dict[str, rsa.RSAPublicKey] = {}
_certs_lock = threading.Lock()


class SesSettings(Strict):
    # Topics this endpoint subscribes to; a message from any other is refused (empty: any).
    topic_arns: list[str] = Field(default_factory=list)
    # Hosts (host[:port]) trusted to serve signing certificates besides sns.<region>.amazonaws.com:
    # for tests against a loopback server, never needed in production.
    cert_hosts: list[str] = Field(default_factory=list)
    # A CA bundle for fetching the certificate (default: the system's).
    ca_file: str | None = None
    # SNS retries a failed delivery for about an hour by default; a longer delivery policy
    # needs a larger value here.
    max_age_seconds: int = Field(default=3600, gt=0)


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message: its type, the SubscribeURL to visit for a SubscriptionConfirmation,
    and the decoded JSON of a Notification's Message (None for other types or non-JSON)."""

    type: str
    subscribe_url: str | None
    message: Any


def verify(settings: SesSettings, headers: Mapping[str, str], body: bytes, now: datetime) -> SnsMessage:
    """The message, after checking its signature, certificate URL, topic and age; ForgedWebhook
    naming the check that failed otherwise."""
    fields = json_body(body)
    if not isinstance(fields, dict):
        raise ForgedWebhook("the body is not an SNS message")
    kind = fields.get("Type")
    if kind not in _SIGNED:
        raise ForgedWebhook("the SNS message type is missing or unknown")
    version = fields.get("SignatureVersion")
    if version not in _HASHES:
        raise ForgedWebhook("the SNS SignatureVersion is missing or unknown")
    if settings.topic_arns and fields.get("TopicArn") not in settings.topic_arns:
        raise ForgedWebhook("the SNS message is from a topic this endpoint does not subscribe to")
    try:
        signature = base64.b64decode(str(fields.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise ForgedWebhook("the SNS signature is not base64") from None
    key = _signing_key(settings, fields.get("SigningCertURL"))
    try:
        key.verify(signature, _canonical(kind, fields), padding.PKCS1v15(), _HASHES[version]())
    except InvalidSignature:
        raise ForgedWebhook("the SNS signature does not match the message") from None
    try:
        stamp = datetime.fromisoformat(str(fields["Timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        stamp = None
    if stamp is None or stamp.utcoffset() is None:
        raise ForgedWebhook("the SNS Timestamp is not an instant with its offset")
    check_fresh(stamp, now, settings.max_age_seconds)
    subscribe_url = fields.get("SubscribeURL") if kind == "SubscriptionConfirmation" else None
    message = None
    if kind == "Notification":
        try:
            message = json.loads(fields["Message"])
        except ValueError:
            message = None
    return SnsMessage(kind, subscribe_url, message)


def verify_and_read(
    settings: SesSettings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[Feedback]:
    """The bounces and complaints of a verified SES notification; [] for deliveries and other
    event types. A verified SubscriptionConfirmation is confirmed (its SubscribeURL visited, on
    an SNS host only): SNS sends nothing else to an endpoint until then."""
    verified = verify(settings, headers, body, now)
    if verified.subscribe_url is not None:
        confirm_subscription(settings, verified.subscribe_url)
    return _feedback(verified.message)


def confirm_subscription(settings: SesSettings, url: str) -> None:
    """GET the SubscribeURL of a verified confirmation, over verified TLS, only on an SNS host
    (or one of `cert_hosts`): a signed message cannot make this endpoint fetch anything else."""
    parts = urlsplit(url)
    trusted = parts.netloc in settings.cert_hosts or bool(_SNS_HOST.fullmatch(parts.hostname or ""))
    if parts.scheme != "https" or not trusted:
        raise ForgedWebhook("the SubscribeURL is not an https URL on an SNS host")
    try:
        answer = requests.get(url, timeout=10, verify=settings.ca_file or True, allow_redirects=False)
    except requests.RequestException as exc:
        raise ForgedWebhook(f"the SubscribeURL could not be visited ({type(exc).__name__})") from None
    if answer.status_code != 200:
        raise ForgedWebhook(f"the SubscribeURL answered {answer.status_code}")


def _canonical(kind: str, fields: dict[str, Any]) -> bytes:
    lines = []
    for name in _SIGNED[kind]:
        value = fields.get(name)
        if value is None and name in _OPTIONAL:
            continue
        if not isinstance(value, str):
            raise ForgedWebhook(f"the SNS message has no {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def _signing_key(settings: SesSettings, url: object) -> rsa.RSAPublicKey:
    """The RSA key of the certificate at `url`, fetched over verified TLS from an SNS host."""
    if not isinstance(url, str):
        raise ForgedWebhook("the SNS message has no SigningCertURL")
    parts = urlsplit(url)
    trusted = parts.netloc in settings.cert_hosts or bool(_SNS_HOST.fullmatch(parts.hostname or ""))
    if parts.scheme != "https" or not trusted or parts.username or not parts.path.endswith(".pem"):
        raise ForgedWebhook("the SNS SigningCertURL is not an https .pem URL on an SNS host")
    with _certs_lock:
        key = _certs.get(url)
    if key is not None:
        return key
    try:
        answer = requests.get(url, timeout=10, verify=settings.ca_file or True)
        answer.raise_for_status()
        certificate = x509.load_pem_x509_certificate(answer.content)
    except (requests.RequestException, ValueError) as error:
        raise ForgedWebhook(
            f"the SNS signing certificate cannot be fetched ({type(error).__name__})"
        ) from None
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ForgedWebhook("the SNS signing certificate has no RSA key")
    with _certs_lock:
        _certs[url] = public
    return public


def _feedback(notification: Any) -> list[Feedback]:
    """SES's JSON (`notificationType`, or `eventType` from event publishing): a Bounce object with
    bouncedRecipients, or a Complaint with complainedRecipients. The original Message-ID is in
    mail.commonHeaders when the configuration includes original headers; mail.messageId is
    SES's own id, not the one we wrote, so it is not used."""
    if not isinstance(notification, dict):
        return []
    kind_name = notification.get("notificationType") or notification.get("eventType")
    original = message_id(obj(obj(notification, "mail"), "commonHeaders").get("messageId"))
    if kind_name == "Bounce":
        bounce = obj(notification, "bounce")
        kind = _BOUNCE_KINDS.get(str(bounce.get("bounceType")), "soft")
        return [
            Feedback(
                kind,
                address(rcpt.get("emailAddress")),
                None,
                original,
                one_line(
                    rcpt.get("status"),
                    bounce.get("bounceType"),
                    bounce.get("bounceSubType"),
                    rcpt.get("diagnosticCode"),
                ),
                "ses",
            )
            for rcpt in objects(bounce, "bouncedRecipients")
        ]
    if kind_name == "Complaint":
        complaint = obj(notification, "complaint")
        detail = one_line("complaint", complaint.get("complaintFeedbackType"))
        return [
            Feedback("complaint", address(rcpt.get("emailAddress")), None, original, detail, "ses")
            for rcpt in objects(complaint, "complainedRecipients")
        ]
    return []
