"""Signed, opaque tokens for readers' links: `<subscriber id>.<purpose-bound MAC>[.<expiry>]`.

A link never carries an address (it would leak into web logs and proxies, and SpamAssassin
scores an address in a URL as phishing). It carries the subscriber's random id and an
HMAC-SHA256 over (purpose, id, expiry) keyed by `site.unsubscribe_secret`, so a token for one
purpose (confirm a subscription) cannot be replayed for another (unsubscribe), and ids alone
(say, from an export) are not enough to act on a reader. Unsubscribe tokens never expire: an
email from years ago must still unsubscribe (RFC 8058); confirmation tokens do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from .config import Config
from .errors import SyndicateError

__all__ = ["BadToken", "make_token", "read_token", "signing_key"]

MAC_BYTES = 16
PURPOSES = ("unsubscribe", "confirm")


class BadToken(SyndicateError):
    """A token that is malformed, forged, for another purpose, or expired."""


def signing_key(config: Config) -> bytes:
    """`site.unsubscribe_secret`, or the public base URL when none is set (the composer warns:
    ids are random, so tokens stay unguessable, but anyone holding an id could then sign one)."""
    secret = config.site.unsubscribe_secret
    return (secret.get_secret_value() if secret is not None else config.site.base_url).encode("utf-8")


def make_token(purpose: str, subscriber_id: str, key: bytes, expires: datetime | None = None) -> str:
    """The token for `subscriber_id` (URL-safe: letters, digits, `-`, `_` and `.`)."""
    if purpose not in PURPOSES or "." in subscriber_id or not subscriber_id:
        raise ValueError(f"cannot sign {purpose!r} for {subscriber_id!r}")
    stamp = str(int(expires.timestamp())) if expires is not None else ""
    parts = [subscriber_id, _mac(purpose, subscriber_id, stamp, key)]
    return ".".join(parts + [stamp] if stamp else parts)


def read_token(purpose: str, token: str, key: bytes, now: datetime) -> str:
    """The subscriber id a valid token names; BadToken (one line, no detail to an attacker) else."""
    parts = token.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadToken("this link is not valid")
    subscriber_id, mac = parts[0], parts[1]
    stamp = parts[2] if len(parts) == 3 else ""
    if not hmac.compare_digest(mac, _mac(purpose, subscriber_id, stamp, key)):
        raise BadToken("this link is not valid")
    if stamp and (not stamp.isdigit() or int(stamp) < now.timestamp()):
        raise BadToken("this link has expired")
    return subscriber_id


def _mac(purpose: str, subscriber_id: str, stamp: str, key: bytes) -> str:
    digest = hmac.new(key, f"{purpose}\0{subscriber_id}\0{stamp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode("ascii").rstrip("=")
