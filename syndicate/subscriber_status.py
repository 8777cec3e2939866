"""A subscriber's status on a list: the words the store, the CLI and the web service share.

Apart from `subscribers.py` (the database), so `syndicate subscribers list --help` can offer
them without loading SQLAlchemy.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ENDED", "STATUSES", "Status"]

Status = Literal["unconfirmed", "subscribed", "unsubscribed", "bounced", "complained"]
STATUSES: tuple[Status, ...] = ("unconfirmed", "subscribed", "unsubscribed", "bounced", "complained")
ENDED: tuple[Status, ...] = ("unsubscribed", "bounced", "complained")  # never mailed again
