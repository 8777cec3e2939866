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

The catch-up rule lives here too, for `send --due` and the daemon alike: a send at most
`ON_TIME` late is on time; a later one goes out only as `schedule.catch_up` allows (`skip`:
never; `send`: always; a window like `2d`: if at most that late), and the first digest a route
ever sends covers its own window, not the archive. `due_now` applies it and says which sends it
passed over, for the caller to record; `--backfill` (and naming articles) goes around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from .config import Config, EmailChannel
from .content import Article
from .keys import DraftId, article_key, digest_key
from .schedule import articles_in_window, digest_end_covering, digest_window, latest_digest_end

# What the ledger already holds for a (channel, target): the draft keys with a sent message.
SentKeys = Callable[[str, str], set[str]]
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
ON_TIME = timedelta(minutes=1)  # a send this late is still on time; later, it was missed


class History(Protocol):
    """What the planner asks the ledger (which satisfies this) about sends that went before."""

    def sent_draft_keys(self, channel: str, target: str) -> set[str]: ...

    def settled_draft_keys(self, channel: str, target: str) -> set[str]: ...

    def draft_states(self) -> Mapping[DraftId, str]: ...


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


@dataclass(frozen=True)
class Missed:
    """A send whose time passed longer ago than `schedule.catch_up` allows: recorded as skipped."""

    channel: str
    target: str
    draft_key: str
    due: datetime
    reason: str

    @property
    def draft(self) -> DraftId:
        return (self.channel, self.target, self.draft_key)


@dataclass
class DuePlan:
    """What `due_now` found: the sends to make, those the catch-up policy passes over now, and
    how many it had passed over before (still skipped: `--backfill` sends them)."""

    sends: list[Send] = field(default_factory=list)
    missed: list[Missed] = field(default_factory=list)
    skipped_before: int = 0


def may_catch_up(config: Config, late: timedelta) -> bool:
    """Whether a send this late still goes out under `schedule.catch_up`."""
    window = config.schedule.catch_up_window
    return late <= ON_TIME or window is None or late <= window


def catch_up_since(config: Config, now: datetime, late: timedelta) -> datetime | None:
    """A late digest under a window policy holds only articles at most that old (None: all)."""
    window = config.schedule.catch_up_window
    return None if late <= ON_TIME or window is None else now - window


def missed_reason(config: Config, late: timedelta) -> str:
    return f"missed by {duration(late)} (schedule.catch_up: {config.schedule.catch_up})"


def duration(delta: timedelta) -> str:
    """A lateness as people say it: `3d 4h`, `2h 5m`, `4m 10s`."""
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 60}m {seconds % 60}s"


def digest_articles(
    config: Config, channel: str, articles: Iterable[Article], end: datetime, start: datetime | None = None
) -> list[Article]:
    """The articles `channel`'s digest sent at `end` carries: those published in (start, end],
    newest first, at most the channel's `max_articles`. `start` is by default the scheduled send
    before `end` (the digest's own window); a digest making up for missed ones reaches further
    back (`_due_digest`). Every digest's articles are chosen here, whoever asks: `send`, `queue`,
    the daemon's jobs, the email composer and so `preview`."""
    settings = digest_settings(config, channel)
    if start is None:
        start = digest_window(settings.schedule, config.site.tz, end)[0]
    return articles_in_window(for_channel(config, channel, articles), (start, end), settings.max_articles)


def for_channel(config: Config, channel: str, articles: Iterable[Article]) -> list[Article]:
    """The articles `channel` carries at all: its segment (`articles: {tags: [...]}`). Every
    plan (due, --all, the queue, digests) asks here."""
    segment = config.channels[channel].articles
    return [a for a in articles if segment.accepts(a.tags)]


def first_digest_articles(
    config: Config, channel: str, articles: Sequence[Article], settled: set[str], end: datetime
) -> list[Article]:
    """The first digest a route ever sends covers its own window, not the archive (unless
    `catch_up: send`): a new list is not mailed every article the site ever published."""
    if settled or config.schedule.catch_up == "send":
        return list(articles)
    start = digest_window(digest_settings(config, channel).schedule, config.site.tz, end)[0]
    return [a for a in articles if a.publish_date > start]


def digest_due(
    config: Config,
    channel: str,
    target: str,
    articles: Sequence[Article],
    now: datetime,
    settled: set[str],
    since: datetime | None = None,
) -> list[Send]:
    """The latest digest due by `now`, as far as a catch-up lets it go: only articles published
    since `since` (a late digest under a window policy; None: no limit), the first digest a route
    sends holding its own window only (`first_digest_articles`), and otherwise reaching back to
    the last digest `settled`. `send --due` and the daemon's digest jobs both send this."""
    published = [a for a in articles if a.live(now) and a.publish_date <= now]
    if since is not None:
        published = [a for a in published if a.publish_date >= since]
    end = latest_digest_end(digest_settings(config, channel).schedule, config.site.tz, now)
    chosen = first_digest_articles(config, channel, published, settled, end)
    return _due_digest(config, channel, target, chosen, now, lambda _c, _t: settled)


def due_now(
    config: Config,
    articles: Sequence[Article],
    now: datetime,
    history: History | None,
    *,
    backfill: bool = False,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
) -> DuePlan:
    """What `send --due` sends: everything due by `now` that the catch-up policy allows, and
    (with `backfill`) what it passed over, too. `history` is the ledger (None: nothing sent yet)."""
    plan = DuePlan()
    states: Mapping[DraftId, str] = history.draft_states() if history is not None else {}
    published = [a for a in articles if a.live(now) and a.publish_date <= now]
    for channel, target in _routes(config, channels, targets):
        if is_digest_channel(config, channel):
            _due_digest_with_policy(config, channel, target, published, now, history, states, backfill, plan)
            continue
        for article in for_channel(config, channel, published):
            planned = _article_send(channel, target, article)
            state = states.get((channel, target, planned.draft_key))
            if not backfill and state == "skipped":
                plan.skipped_before += 1
            elif not backfill and state is None and not may_catch_up(config, now - planned.due):
                reason = missed_reason(config, now - planned.due)
                plan.missed.append(Missed(channel, target, planned.draft_key, planned.due, reason))
            else:
                plan.sends.append(planned)
    plan.sends.sort(key=lambda s: (s.due, s.channel, s.target, s.draft_key))
    return plan


def _due_digest_with_policy(
    config: Config,
    channel: str,
    target: str,
    published: list[Article],
    now: datetime,
    history: History | None,
    states: Mapping[DraftId, str],
    backfill: bool,
    plan: DuePlan,
) -> None:
    sent = history.sent_draft_keys(channel, target) if history is not None else set()
    if backfill:  # the explicit archive send: reach back to the last digest that went out
        plan.sends.extend(_due_digest(config, channel, target, published, now, lambda _c, _t: sent))
        return
    settled = history.settled_draft_keys(channel, target) if history is not None else set()
    tz = config.site.tz
    end = latest_digest_end(digest_settings(config, channel).schedule, tz, now)
    key = digest_key(channel, end, tz)
    state = states.get((channel, target, key))
    if state == "skipped":
        plan.skipped_before += 1
        return
    since = None
    if state is None and key not in sent:  # not begun: the policy decides whether it goes out
        late = now - end
        if not may_catch_up(config, late):
            if articles_in_window(published, (BEGINNING, end), 1):
                plan.missed.append(Missed(channel, target, key, end, missed_reason(config, late)))
            return
        since = catch_up_since(config, now, late)
    plan.sends.extend(digest_due(config, channel, target, published, now, settled, since))


def is_digest_channel(config: Config, channel: str) -> bool:
    settings = config.channels[channel]
    return isinstance(settings, EmailChannel) and settings.mode == "digest"


def digest_settings(config: Config, channel: str) -> EmailChannel:
    """A digest channel's settings (its schedule, its `max_articles`), typed as what they are."""
    settings = config.channels[channel]
    if not isinstance(settings, EmailChannel) or settings.mode != "digest":
        raise ValueError(f"{channel!r} is not a digest channel")
    return settings


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
    published = [a for a in articles if a.live(now) and a.publish_date <= now]
    for channel, target in _routes(config, channels, targets):
        if is_digest_channel(config, channel):
            sends.extend(_due_digest(config, channel, target, published, now, sent_keys))
        else:
            sends.extend(_article_send(channel, target, a) for a in for_channel(config, channel, published))
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
    digest per digest channel holding them all (newest first, at most max_articles). The
    digest is the latest scheduled window's draft (`latest_digest_end`), the one `send --due`
    and the daemon send now: named by its window, never by today's date, so `--all` then
    `--due`, or `--all` resumed after midnight, is one draft, not a second one to everyone."""
    sends: list[Send] = []
    chosen = [a for a in articles if a.live(now)]
    for channel, target in _routes(config, channels, targets):
        if is_digest_channel(config, channel):
            picked = digest_articles(config, channel, chosen, datetime.max.replace(tzinfo=UTC), BEGINNING)
            if picked:
                end = latest_digest_end(digest_settings(config, channel).schedule, config.site.tz, now)
                key = digest_key(channel, end, config.site.tz)
                sends.append(Send(channel, target, key, end, tuple(picked), (BEGINNING, now)))
        else:
            sends.extend(
                Send(channel, target, article_key(channel, a), now, (a,))
                for a in for_channel(config, channel, chosen)
            )
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
    future = [a for a in articles if a.live(a.publish_date) and now < a.publish_date <= until]
    for channel, target in _routes(config, channels, targets):
        if not is_digest_channel(config, channel):
            sends.extend(_article_send(channel, target, a) for a in for_channel(config, channel, future))
            continue
        schedule, tz = digest_settings(config, channel).schedule, config.site.tz
        end = latest_digest_end(schedule, tz, now)
        while True:
            end = digest_end_covering(schedule, tz, end + timedelta(microseconds=1))
            if end > until:
                break
            picked = digest_articles(config, channel, articles, end)
            if picked:
                window = digest_window(schedule, tz, end)
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
    schedule, tz = digest_settings(config, channel).schedule, config.site.tz
    end = latest_digest_end(schedule, tz, now)
    # The latest digest is planned even when the ledger has sent some of it: a run that stopped
    # part-way must finish the list (the ledger skips those who have it).
    sent = sent_keys(channel, target) if sent_keys else set()
    earliest = min(a.publish_date for a in published)
    start = digest_window(schedule, tz, end)[0]
    while start > earliest and digest_key(channel, start, tz) not in sent:
        start = digest_window(schedule, tz, start)[0]
    if start <= earliest:
        start = BEGINNING
    picked = digest_articles(config, channel, published, end, start)
    if not picked:
        return []
    return [Send(channel, target, digest_key(channel, end, tz), end, tuple(picked), (start, end))]
