"""The names the ledger keys things by: a message, a draft, and the draft keys of digests and
articles. Both the ledger and delivery import them from here, so neither depends on the other,
and a key's format (persisted in every ledger row) is decided in one place."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .content import Article

__all__ = ["DraftId", "MessageKey", "article_key", "digest_key"]

DraftId = tuple[str, str, str]  # (channel, target, draft key), as the ledger names a draft


@dataclass(frozen=True, slots=True)
class MessageKey:
    """What the ledger keys a delivery by: the same key is never sent twice."""

    channel: str
    target: str
    draft_key: str
    recipient: str

    def digest(self) -> str:
        """A stable short id for file names and webhook ids."""
        text = "\x1f".join((self.channel, self.target, self.draft_key, self.recipient))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def draft(self) -> DraftId:
        return (self.channel, self.target, self.draft_key)


def digest_key(channel: str, end: datetime, tz: tzinfo) -> str:
    """The ledger's name for the digest sent at `end`: its channel and local date."""
    return f"{channel}:{end.astimezone(tz):%Y-%m-%d}"


def article_key(channel: str, article: Article) -> str:
    """The ledger's name for one article's email or post on a channel: `channel:slug`, or the
    stem its sends already carry when the article was renamed since (`identity.resolve`)."""
    return f"{channel}:{article.stem or article.slug}"
