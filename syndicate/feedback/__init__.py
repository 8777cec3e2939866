"""What readers' mail systems and ESPs say back: bounces, complaints and unsubscribe requests.

Every source (a DSN or ARF report in a mailbox, a mail to the list's unsubscribe address, an
ESP's webhook) is read into the same `Feedback` record, so the subscriber store has one thing to
act on and never needs to know where it came from. Reading is pure: no database, no network
(except fetching and caching an SES signing certificate), and malformed input yields no
records rather than an exception, because a mailbox full of odd mail must not stop the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import SyndicateError

__all__ = ["Feedback", "ForgedWebhook", "Kind", "Source"]

Kind = Literal["hard", "soft", "complaint", "unsubscribe"]
Source = Literal["dsn", "arf", "mailto", "ses", "postmark", "mailgun", "sendgrid"]


@dataclass(frozen=True)
class Feedback:
    """One thing a reader's mail system (or the reader) told us about one address.

    `address` is the reader's address as the report gives it, `subscriber_id` the id a VERP
    envelope address or a verified unsubscribe token names: either may be None, and the store
    should prefer the id (an address in a report may be rewritten by forwarding). `detail` is one
    line for logs: status code and diagnostic, or the feedback type. `token` is the unsubscribe
    token a mailto request carried, kept so the store can check it itself.
    """

    kind: Kind
    address: str | None
    subscriber_id: str | None
    message_id: str | None
    detail: str
    source: Source
    token: str | None = None


class ForgedWebhook(SyndicateError):
    """A webhook whose signature or credentials are missing, wrong or stale. The message says
    which check failed and never contains a secret or the expected signature."""
