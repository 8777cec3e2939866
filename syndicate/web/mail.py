"""The confirmation email of a double opt-in: one plain-text message with the link that
confirms, sent through `serve.confirm_target` (an smtp or outbox target) as a send would.

The link carries a signed, expiring token naming the subscriber's id, never the address."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from .. import clock
from ..compose.email import clean_header_text
from ..config import Config
from ..deliver import Message, make_target
from ..errors import SyndicateError
from ..keys import MessageKey
from ..recipients import ascii_address
from ..templating import get_template, render_template, site_view
from ..tokens import make_token, signing_key

log = logging.getLogger("syndicate.web")

CONFIRM_TEMPLATE = "web/confirm-email.txt"
# The ledger-like key a confirmation goes under (an outbox names its file after it).
CONFIRM_CHANNEL = "serve-confirm"


def confirm_url(config: Config, subscriber_id: str, now: datetime) -> str:
    """The link that confirms `subscriber_id`, valid for `serve.confirm_hours` from `now`."""
    assert config.serve is not None
    expires = now + timedelta(hours=config.serve.confirm_hours)
    token = make_token("confirm", subscriber_id, signing_key(config), expires=expires)
    return f"{config.serve.public_url}confirm/{token}"


def confirmation_message(
    config: Config, email: str, name: str, list_name: str, url: str, now: datetime
) -> EmailMessage:
    """The message asking `email` to confirm: From the site's sender, the link in its text."""
    assert config.serve is not None
    site = config.site
    text = render_template(
        get_template(config, CONFIRM_TEMPLATE, "text"),
        {
            "site": site_view(site),
            "confirm_url": url,
            "list": list_name,
            "hours": config.serve.confirm_hours,
        },
        during="composing a confirmation email",
    )
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = site.sender
    msg["To"] = formataddr((clean_header_text(name, 100), ascii_address(email)))
    msg["Subject"] = clean_header_text(f"Confirm your subscription to {site.name}")
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=parseaddr(site.sender)[1].rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    return msg


def send_confirmation(config: Config, subscriber_id: str, email: str, name: str, list_name: str) -> bool:
    """Mail the confirmation link through `serve.confirm_target`; whether the target took it.
    Failures are logged (the reader already has their answer: this runs after it)."""
    assert config.serve is not None and config.serve.confirm_target is not None
    target_name = config.serve.confirm_target
    now = clock.now()
    try:
        msg = confirmation_message(
            config, email, name, list_name, confirm_url(config, subscriber_id, now), now
        )
        key = MessageKey(CONFIRM_CHANNEL, target_name, f"confirm:{subscriber_id}", email)
        content_hash = hashlib.sha256(str(msg).encode("utf-8", "replace")).hexdigest()
        target = make_target(target_name, config)
        with target.open() as connection:
            result = connection.send(Message(key, content_hash, lambda: msg))
    except SyndicateError as exc:
        log.warning("confirmation for subscriber %s not sent: %s", subscriber_id, exc)
        return False
    if result.outcome != "sent":
        log.warning(
            "confirmation for subscriber %s not sent: %s %s", subscriber_id, result.outcome, result.detail
        )
        return False
    log.info("confirmation sent to subscriber %s", subscriber_id)
    return True
