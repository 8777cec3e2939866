"""What became of each send: the facts `syndicate status` and `syndicate queue` show, from the
ledger (opened read-only: these never create or change it) and the planner.

- `read_status()`: totals, the sends with messages left (pending, retry, unknown, in flight)
  with their last error, overdue sends, failures, unknowns, catch-up skips, recent rows.
- `overdue()`: sends the planner says were due by now that are not finished (nor skipped by the
  daemon's catch-up policy): what `queue` marks.
- `recipient_history()`: every message to one address, and the sends part-way that would still
  mail it.
- `article_history()`: every draft holding one article, per channel and target, with its
  recipients by status.

Messages a run did not reach have no row of their own: a `started` draft keeps how many messages
its last run planned, and those without a row are counted as planned minus rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from .config import Config, EmailChannel
from .content import Article, load_articles
from .deliver import MailTargetSettings
from .errors import ContentError, SyndicateError
from .keys import DraftId
from .ledger import Delivery, DraftRow, DraftState, Ledger
from .lock import running_daemon
from .plan import Send, is_digest_channel, plan_due
from .readers import Readers
from .recipients import address_key
from .timeshow import show_time

STATUSES = ("sent", "failed", "retry", "unknown", "in_flight")


@dataclass(frozen=True)
class Progress:
    """One send (a draft on a target) as the ledger has it."""

    draft: DraftId
    state: DraftState | None  # None: messages recorded before drafts were
    planned: int | None  # messages its last run planned (None: not recorded)
    counts: dict[str, int]  # status -> message rows
    pending: int | None  # messages with no row yet (None: not known, the run was not counted)
    error: str | None  # why its last run stopped, or the latest error of its messages
    updated_at: datetime | None

    @property
    def left(self) -> int:
        """Messages that may still go out: pending, retry, unknown and in flight."""
        return (self.pending or 0) + sum(self.counts.get(s, 0) for s in ("retry", "unknown", "in_flight"))

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        channel, target, draft_key = self.draft
        return {
            "channel": channel,
            "target": target,
            "draft": draft_key,
            "state": self.state,
            "planned": self.planned,
            **{status: self.counts.get(status, 0) for status in STATUSES},
            "pending": self.pending,
            "left": self.left,
            "error": self.error,
            "updated": _iso(self.updated_at, tz),
        }


@dataclass(frozen=True)
class Overdue:
    """A send due by now that is not finished."""

    send: Send
    state: DraftState | None  # None: not started; "started": stopped part-way

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        s = self.send
        return {
            "due": _iso(s.due, tz),
            "channel": s.channel,
            "target": s.target,
            "draft": s.draft_key,
            "articles": [a.slug for a in s.articles],
            "state": self.state or "not started",
        }


@dataclass
class Status:
    """Everything `syndicate status` shows."""

    daemon_pid: str | None = None
    totals: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    left: list[Progress] = field(default_factory=list)
    overdue: list[Overdue] = field(default_factory=list)
    content_error: str | None = None  # why overdue sends could not be worked out
    failures: list[Delivery] = field(default_factory=list)  # rows failed or retry
    unknowns: list[Delivery] = field(default_factory=list)
    skipped: list[tuple[DraftId, str]] = field(default_factory=list)
    recent: list[Delivery] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.totals or self.skipped or self.left)

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        return {
            "daemon": {"running": self.daemon_pid is not None, "pid": self.daemon_pid},
            "totals": [
                {"channel": channel, "target": target, **dict.fromkeys(STATUSES, 0), **counts}
                for (channel, target), counts in sorted(self.totals.items())
            ],
            "left": [p.as_dict(tz) for p in self.left],
            "overdue": [o.as_dict(tz) for o in self.overdue],
            "content_error": self.content_error,
            "failures": [delivery_dict(d, tz) for d in self.failures],
            "unknown": [delivery_dict(d, tz) for d in self.unknowns],
            "skipped": [
                {"channel": c, "target": t, "draft": k, "reason": reason}
                for (c, t, k), reason in self.skipped
            ],
            "recent": [delivery_dict(d, tz) for d in self.recent],
            "feedback": [f.as_dict() for f in self.feedback],
        }


# Gmail's and Yahoo's bulk-sender line (2024): keep spam complaints under 0.3 % of messages.
COMPLAINT_LINE = 0.003


@dataclass(frozen=True)
class Feedback:
    """What came back from one email send (a draft on a target): bounces and complaints."""

    draft: DraftId
    sent: int
    bounced: int
    complained: int

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.sent if self.sent else 0.0

    @property
    def over_the_line(self) -> bool:
        return self.complaint_rate >= COMPLAINT_LINE

    def as_dict(self) -> dict[str, Any]:
        channel, target, draft_key = self.draft
        return {
            "channel": channel,
            "target": target,
            "draft": draft_key,
            "sent": self.sent,
            "bounced": self.bounced,
            "complained": self.complained,
            "bounce_rate": round(self.bounce_rate, 6),
            "complaint_rate": round(self.complaint_rate, 6),
            "over_complaint_line": self.over_the_line,
        }


@dataclass
class RecipientHistory:
    """What one reader got: each message row for the address, and sends part-way that would
    still mail it (their target lists it and it has no row yet)."""

    address: str
    deliveries: list[Delivery]
    pending: list[Progress]

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        return {
            "recipient": self.address,
            "deliveries": [delivery_dict(d, tz) for d in self.deliveries],
            "pending": [p.as_dict(tz) for p in self.pending],
        }


@dataclass(frozen=True)
class ArticleSend:
    """One draft holding the article, on one target, and its message rows."""

    progress: Progress
    digest: bool
    deliveries: list[Delivery]

    def by_status(self) -> dict[str, list[str]]:
        """status -> recipients (none for a post: its one message has no recipient)."""
        found: dict[str, list[str]] = {}
        for d in self.deliveries:
            if d.key.recipient:
                found.setdefault(d.status, []).append(d.key.recipient)
        return found


@dataclass
class ArticleHistory:
    """Who got one article: every draft that held it, per channel and target."""

    slug: str
    title: str | None
    sends: list[ArticleSend]
    unmatched_digests: int  # digest drafts recorded before the ledger kept their articles

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        return {
            "article": self.slug,
            "title": self.title,
            "sends": [
                {**s.progress.as_dict(tz), "digest": s.digest, "recipients": s.by_status()}
                for s in self.sends
            ],
            "unmatched_digests": self.unmatched_digests,
        }


def read_status(config: Config, now: datetime, *, recent: int = 20) -> Status:
    """The ledger and the plan as `syndicate status` shows them; `recent` rows of the latest."""
    status = Status(daemon_pid=running_daemon(config.state_dir))
    articles: list[Article] = []
    try:
        articles = load_articles(config).articles
    except SyndicateError as exc:
        status.content_error = str(exc)
    with reader(config) as ledger:
        if not status.content_error:
            status.overdue = _overdue(config, articles, now, ledger)
        if ledger is None:
            return status
        status.totals = ledger.counts()
        status.left = sends_left(ledger)
        status.failures = ledger.failures()
        status.unknowns = ledger.unknowns()
        status.skipped = ledger.skipped_drafts()
        status.recent = ledger.recent(recent)
        status.feedback = [
            Feedback(draft, counts["sent"], counts.get("bounced", 0), counts.get("complained", 0))
            for draft, counts in sorted(ledger.feedback_counts().items())
        ]
    return status


def overdue(
    config: Config,
    articles: Sequence[Article],
    now: datetime,
    *,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
) -> list[Overdue]:
    """Sends due by `now` (the planner's `plan_due`, as `send --due` plans them) that are not
    finished: never started, or stopped part-way. Sends the daemon's catch-up policy skipped
    are not overdue (`status` lists them with their reason)."""
    with reader(config) as ledger:
        return _overdue(config, articles, now, ledger, channels, targets)


def sends_left(ledger: Ledger) -> list[Progress]:
    """Sends with messages that may still go out: a started run's messages with no row yet
    (pending), and rows left retry, unknown or in flight."""
    rows = {row.draft: row for row in ledger.drafts()}
    started = {draft for draft, row in rows.items() if row.state == "started"}
    found = [
        _progress(ledger, draft, rows.get(draft)) for draft in sorted(started | ledger.unsettled_drafts())
    ]
    return [p for p in found if p.left or p.pending is None]


def recipient_history(config: Config, address: str) -> RecipientHistory:
    """Every message to `address` (its case ignored) with its status and time, and the sends
    part-way whose target lists the address and have not reached it yet."""
    history = RecipientHistory(address.strip(), [], [])
    with reader(config) as ledger:
        if ledger is None:
            return history
        history.deliveries = ledger.deliveries_to(address)
        has_row = {(d.key.channel, d.key.target, d.key.draft_key) for d in history.deliveries}
        listed: dict[str, bool] = {}
        wanted = address_key(address)
        history.pending = [
            p
            for p in sends_left(ledger)
            if p.pending != 0 and p.draft not in has_row and _lists(config, *p.draft[:2], wanted, listed)
        ]
    return history


def article_history(config: Config, slug: str) -> ArticleHistory:
    """Every draft in the ledger holding the article `slug`, with its recipients by status.

    A draft's articles are in the ledger since its `articles` column: a per-article draft
    recorded before is still found by its key (`channel:slug`), a digest is not (counted in
    `unmatched_digests`). A slug neither in the content folder nor in the ledger is a mistake."""
    try:
        found = {a.slug: a for a in load_articles(config).articles}.get(slug)
    except SyndicateError:  # no content folder: the ledger still answers
        found = None
    history = ArticleHistory(slug, found.title if found else None, [], 0)
    with reader(config) as ledger:
        if ledger is not None:
            rows = {row.draft: row for row in ledger.drafts()}
            for draft in sorted(ledger.known_drafts() | set(rows)):
                row, channel = rows.get(draft), draft[0]
                digest = channel in config.channels and is_digest_channel(config, channel)
                if row is not None and row.articles is not None:
                    holds = slug in row.articles
                elif digest:
                    history.unmatched_digests += 1
                    continue
                else:  # a per-article draft is named `channel:slug` (keys.article_key)
                    holds = draft[2] == f"{channel}:{slug}"
                if holds:
                    progress = _progress(ledger, draft, row)
                    history.sends.append(ArticleSend(progress, digest, ledger.deliveries_of(draft)))
    if found is None and not history.sends:
        raise ContentError(
            f"{slug}: no such article in the content folder or the ledger (expected an article's slug)"
        )
    return history


@contextmanager
def reader(config: Config) -> Iterator[Ledger | None]:
    """The ledger read-only, or None when nothing was ever recorded."""
    ledger = Ledger.reader(config)
    try:
        yield ledger
    finally:
        if ledger is not None:
            ledger.close()


def delivery_dict(delivery: Delivery, tz: tzinfo) -> dict[str, Any]:
    key = delivery.key
    return {
        "channel": key.channel,
        "target": key.target,
        "draft": key.draft_key,
        "recipient": key.recipient,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "detail": delivery.last_error,  # the error; for a sent message, the server's id or the file
        "updated": _iso(delivery.updated_at, tz),
        "sent_at": _iso(delivery.sent_at, tz),
    }


def _overdue(
    config: Config,
    articles: Sequence[Article],
    now: datetime,
    ledger: Ledger | None,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
) -> list[Overdue]:
    states = ledger.draft_states() if ledger is not None else {}
    sent: dict[tuple[str, str], set[str]] = {}

    def sent_keys(channel: str, target: str) -> set[str]:
        if (channel, target) not in sent:
            sent[channel, target] = ledger.sent_draft_keys(channel, target) if ledger is not None else set()
        return sent[channel, target]

    late = []
    for planned in plan_due(config, articles, now, channels=channels, targets=targets, sent_keys=sent_keys):
        state = states.get((planned.channel, planned.target, planned.draft_key))
        if state in ("finished", "skipped"):
            continue
        if state is None and planned.draft_key in sent_keys(planned.channel, planned.target):
            continue  # sent by a version that did not record drafts yet
        late.append(Overdue(planned, state))
    return late


def _progress(ledger: Ledger, draft: DraftId, row: DraftRow | None) -> Progress:
    counts = ledger.message_counts(draft)
    started = row is not None and row.state == "started"
    pending: int | None = 0
    if row is not None and started:
        pending = None if row.planned is None else max(0, row.planned - sum(counts.values()))
    error = row.detail if row is not None and started else None
    if error is None and any(counts.get(s) for s in ("failed", "retry", "unknown")):
        error = ledger.last_error(draft)
    return Progress(
        draft=draft,
        state=row.state if row else None,
        planned=row.planned if row else None,
        counts=counts,
        pending=pending,
        error=error,
        updated_at=row.updated_at if row else None,
    )


def _lists(config: Config, channel: str, target: str, wanted: str, listed: dict[str, bool]) -> bool:
    """Whether a channel's email on a mail target goes to `wanted` (as `address_key` names it);
    never for other channels and targets. The target's readers are read a chunk at a time
    (`Readers.chunks()`) until the address turns up, so asking about a list of a million costs
    one chunk's memory, not a set of every address on it. `listed` keeps each target's answer
    for the other sends to it."""
    channel_settings, settings = config.channels.get(channel), config.targets.get(target)
    if not isinstance(channel_settings, EmailChannel) or not isinstance(settings, MailTargetSettings):
        return False
    if target not in listed:
        try:
            chunks = Readers(target, settings, config, write=False).chunks()
            listed[target] = any(address_key(r.email) == wanted for chunk in chunks for r in chunk)
            del chunks  # a stop part-way: the generator is closed, its store let go, now
        except SyndicateError:  # an unreadable list: nothing can be said of who is on it
            listed[target] = False
    return listed[target]


def _iso(moment: datetime | None, tz: tzinfo) -> str | None:
    return show_time(moment, tz, to="second", form="iso") if moment else None
