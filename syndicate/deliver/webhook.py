"""The `webhook` target: a signed JSON POST (the `slack` and `discord` targets build on it).

Bodies are signed by the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
`webhook-signature` = v1 + base64 HMAC-SHA256 of "id.timestamp.body" under a `whsec_` secret),
so receivers verify them with the standard libraries; `webhook-id` goes with every POST, signed
or not: it is the idempotency key a receiver deduplicates on. Connection errors, 5xx and 429
are retried (`http_post`) with exponential backoff and jitter (Retry-After honoured); other 4xx
are not. A message still refused after the retries stays `retry` in the ledger for the next
run; one whose answer was lost after it went out is `unknown`, never retried.
Incoming-webhook URLs are secrets themselves: no error message ever includes the URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import SecretStr

from .. import clock
from ..errors import DeliveryError
from . import Message, Result
from .http_post import HttpConnection, HttpDelivery, HttpSettings, http_session

if TYPE_CHECKING:
    from ..config import Config


class WebhookDelivery(HttpDelivery):
    settings: SignedPostSettings

    def __init__(
        self, name: str, settings: SignedPostSettings, sleep: Callable[[float], None] | None = None
    ) -> None:
        super().__init__(name, settings, sleep)
        self.secret = _decode_secret(name, settings) if settings.secret else None

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[WebhookConnection]:
        with http_session() as session:
            yield WebhookConnection(self, session, stop)

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The JSON this target's receiver expects: the payload itself (chat presets reshape it)."""
        return payload


class WebhookConnection(HttpConnection):
    delivery: WebhookDelivery

    def send(self, message: Message) -> Result:
        d = self.delivery
        payload = message.build()
        if isinstance(payload, EmailMessage):
            payload = email_as_dict(payload)
        body = json.dumps(d.body(payload), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        # The Standard Webhooks idempotency key: the same for every attempt, in this run or a
        # later one (`schedule.unknown: resend`), so a receiver can drop a copy it already has.
        message_id = f"msg_{message.key.digest()}"

        def headers() -> dict[str, str]:
            headers = {"Content-Type": "application/json", "webhook-id": message_id}
            if d.secret is not None:
                timestamp = int(clock.now().timestamp())
                headers.update(
                    {
                        "webhook-timestamp": str(timestamp),
                        "webhook-signature": sign(d.secret, message_id, timestamp, body),
                    }
                )
            return headers

        answer = self.post(message.key, body, headers)
        if isinstance(answer, Result):
            return answer
        status = answer.status_code
        if 200 <= status < 300:
            return Result(message.key, "sent", f"HTTP {status}")
        return Result(message.key, "failed", f"HTTP {status} {answer.reason or ''}".strip())


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` header value."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def summary_text(payload: dict[str, Any]) -> str:
    """The human line a chat preset posts: the payload's `text` (or its post's), then its link."""
    found = payload.get("post")
    post: dict[str, Any] = found if isinstance(found, dict) else {}
    text = str(payload.get("text") or post.get("text") or payload.get("subject") or "")
    link = str(payload.get("link") or post.get("link") or "")
    if link and link not in text:
        text = f"{text}\n{link}" if text else link
    return text


def email_as_dict(email: EmailMessage) -> dict[str, Any]:
    """An email's parts as JSON for automation receivers."""
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    return {
        "subject": str(email["Subject"] or ""),
        "from": str(email["From"] or ""),
        "to": str(email["To"] or ""),
        "text": text.get_content() if text is not None else "",
        "html": html.get_content() if html is not None else "",
    }


def _decode_secret(name: str, settings: SignedPostSettings) -> bytes:
    assert settings.secret is not None
    value = settings.secret.get_secret_value().removeprefix("whsec_").rstrip("=")
    try:  # padding is optional, as in the standard's own libraries
        secret = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        secret = b""
    if not secret:
        raise DeliveryError(
            f"targets.{name}.secret: is not a Standard Webhooks secret (expected whsec_<base64>)"
        )
    return secret


class SignedPostSettings(HttpSettings):
    """A JSON POST, signed when a `secret` is set (Standard Webhooks); `delivery` shapes the body."""

    secret: SecretStr | None = None
    delivery: ClassVar[type[WebhookDelivery]] = WebhookDelivery

    def connect(self, name: str, config: Config) -> WebhookDelivery:
        return self.delivery(name, self)


class WebhookSettings(SignedPostSettings):
    """`type: webhook`: any receiver that takes JSON: the draft as composed, email or post."""

    type: Literal["webhook"]
    what: ClassVar[str] = "a webhook target, which posts JSON"
