"""The planner: which sends exist and when they are due, from the content alone.

`syndicate send`, `syndicate queue` and the daemon all ask this module, so what `queue` shows is
what `send --due` and the daemon do. The ledger decides what has already gone out; the plan
never stores state of its own.

- Per-article channels (social posts, `mode: single` emails): one send per article and target,
  due at the article's publish date.
- Digest channels: one send per window end (daily or weekly at HH:MM in the site's timezone)
  covering the articles published in that window. A digest that was never sent (the daemon
  was down, or this is the first run) coalesces: its window reaches back to the last digest
  the ledger has for that channel and target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .config import Config, EmailChannel
from .content import Article
from .schedule import (
    article_key,
    articles_in_window,
    digest_end_covering,
    digest_key,
    digest_window,
    latest_digest_end,
)

# What the ledger already holds for a (channel, target): the draft keys with a sent message.
SentKeys = Callable[[str, str], set[str]]
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Send:
    """One draft to deliver through one target at one time."""

    channel: str
    target: str
    draft_key: str
    due: datetime
    articles: tuple[Article, ...]
    window: tuple[datetime, datetime] | None = None

    @property
    def is_digest(self) -> bool:
        return self.window is not None


def is_digest_channel(config: Config, channel: str) -> bool:
    settings = config.channels[channel]
    return isinstance(settings, EmailChannel) and settings.mode == "digest"


def plan_due(
    config: Config,
    articles: Sequence[Article],
    now: datetime,
    *,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
    sent_keys: SentKeys | None = None,
) -> list[Send]:
    """Everything whose time has come by `now`; the ledger later skips what already went out."""
    sends: list[Send] = []
    published = [a for a in articles if not a.draft and a.publish_date <= now]
    for channel, target in _routes(config, channels, targets):
        if is_digest_channel(config, channel):
            sends.extend(_due_digest(config, channel, target, published, now, sent_keys))
        else:
            sends.extend(_article_send(channel, target, a) for a in published)
    return sorted(sends, key=lambda s: (s.due, s.channel, s.target, s.draft_key))


def plan_articles(
    config: Config,
    articles: Sequence[Article],
    now: datetime,
    *,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
) -> list[Send]:
    """Send these articles now, whatever their dates: per-article channels one each, and one
    digest per digest channel holding them all (newest first, at most max_articles)."""
    sends: list[Send] = []
    chosen = [a for a in articles if not a.draft]
    for channel, target in _routes(config, channels, targets):
        if is_digest_channel(config, channel):
            settings = config.channels[channel]
            picked = articles_in_window(
                chosen, (BEGINNING, datetime.max.replace(tzinfo=UTC)), settings.max_articles
            )
            if picked:
                sends.append(
                    Send(
                        channel,
                        target,
                        digest_key(channel, now, config.site.tz),
                        now,
                        tuple(picked),
                        (BEGINNING, now),
                    )
                )
        else:
            sends.extend(Send(channel, target, article_key(channel, a), now, (a,)) for a in chosen)
    return sends


def upcoming(
    config: Config,
    articles: Sequence[Article],
    now: datetime,
    until: datetime,
    *,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
) -> list[Send]:
    """Sends due after `now` and up to `until`, in time order: what the queue shows."""
    sends: list[Send] = []
    future = [a for a in articles if not a.draft and now < a.publish_date <= until]
    for channel, target in _routes(config, channels, targets):
        if not is_digest_channel(config, channel):
            sends.extend(_article_send(channel, target, a) for a in future)
            continue
        settings = config.channels[channel]
        tz = config.site.tz
        end = latest_digest_end(settings.schedule, tz, now)
        while True:
            end = digest_end_covering(settings.schedule, tz, end + timedelta(microseconds=1))
            if end > until:
                break
            window = digest_window(settings.schedule, tz, end)
            picked = articles_in_window(articles, window, settings.max_articles)
            if picked:
                sends.append(Send(channel, target, digest_key(channel, end, tz), end, tuple(picked), window))
    return sorted(sends, key=lambda s: (s.due, s.channel, s.target, s.draft_key))


def _routes(
    config: Config, channels: Iterable[str] | None, targets: Iterable[str] | None
) -> list[tuple[str, str]]:
    wanted_channels = set(channels) if channels else None
    wanted_targets = set(targets) if targets else None
    return [
        (name, target)
        for name, settings in config.channels.items()
        if wanted_channels is None or name in wanted_channels
        for target in settings.targets
        if wanted_targets is None or target in wanted_targets
    ]


def _article_send(channel: str, target: str, article: Article) -> Send:
    return Send(channel, target, article_key(channel, article), article.publish_date, (article,))


def _due_digest(
    config: Config,
    channel: str,
    target: str,
    published: list[Article],
    now: datetime,
    sent_keys: SentKeys | None,
) -> list[Send]:
    """The latest digest due, its window reaching back to the last one the ledger sent."""
    if not published:
        return []
    settings = config.channels[channel]
    tz = config.site.tz
    end = latest_digest_end(settings.schedule, tz, now)
    # The latest digest is planned even when the ledger has sent some of it: a run that stopped
    # part-way must finish the list (the ledger skips those who have it).
    sent = sent_keys(channel, target) if sent_keys else set()
    earliest = min(a.publish_date for a in published)
    start = digest_window(settings.schedule, tz, end)[0]
    while start > earliest and digest_key(channel, start, tz) not in sent:
        start = digest_window(settings.schedule, tz, start)[0]
    if start <= earliest:
        start = BEGINNING
    window = (start, end)
    picked = articles_in_window(published, window, settings.max_articles)
    if not picked:
        return []
    return [Send(channel, target, digest_key(channel, end, tz), end, tuple(picked), window)]
