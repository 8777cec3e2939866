"""Personalised test emails built the way the composer will: lazily, one per recipient.

Batches use small text-only emails, so the failure-mode tests spend their time on SMTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from email.message import EmailMessage

from syndicate.deliver import Message, MessageKey

SENDER = "Test Weekly <news@example.com>"


def email_for(address: str, draft: str = "digest-1", body_lines: int = 20, html: bool = True) -> EmailMessage:
    email = EmailMessage()
    email["From"] = SENDER
    email["To"] = address
    email["Subject"] = f"{draft} for {address}"
    body = "\n".join(f"Line {n} of a long enough body for {address}." for n in range(body_lines))
    email.set_content(body)
    if html:
        email.add_alternative(f"<p>{body}</p>", subtype="html")
    return email


def messages_for(
    addresses: Iterable[str], target: str = "newsletter", draft: str = "digest-1", channel: str = "weekly"
) -> Iterator[Message]:
    for address in addresses:
        yield Message(
            MessageKey(channel, target, draft, address),
            content_hash=f"hash-of-{draft}",
            build=lambda address=address: email_for(address, draft, body_lines=3, html=False),
        )


def addresses(count: int, domain: str = "example.org") -> list[str]:
    return [f"reader{n:05d}@{domain}" for n in range(count)]
