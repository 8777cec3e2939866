"""Sending: compose what the plan says is due, then dispatch it through each target's ledger.

One draft is composed once (the costly Jinja -> MJML -> premailer step) and personalised per
recipient as it goes out. A dry run writes the very same messages to a dry-run outbox folder and
touches no server and no ledger. The CLI's `send` and the daemon's jobs both call `send()`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from . import clock
from .compose.email import PLACEHOLDERS, EmailDraft, compose_digest, compose_single
from .compose.mime import build_message
from .compose.social import SocialPost, compose_post
from .config import Config, EmailChannel, SmtpTarget
from .content import Article, Problem, load_articles
from .deliver import Message, MessageKey, Result, make_target
from .dispatch import Report, dispatch, goes_out
from .errors import ContentError, DeliveryError
from .ledger import LEDGER_FILE, Ledger
from .plan import Send, plan_articles, plan_due
from .recipients import Recipient, RecipientProblem, load_recipients
from .state import state_path

Selection = Literal["due", "all"]
Draft = EmailDraft | SocialPost
# Target types that take a composed email as a MIME message; the rest get JSON.
MIME_TYPES = {"smtp", "outbox"}


@dataclass
class Outcome:
    """What one `send()` did: a dispatch report per (draft, target), and everything noticed."""

    sends: list[Send] = field(default_factory=list)
    reports: list[tuple[Send, Report]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    recipient_problems: list[RecipientProblem] = field(default_factory=list)
    recipients: dict[str, list[Recipient]] = field(default_factory=dict)
    dry_run_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return all(report.ok for _, report in self.reports)

    def totals(self) -> dict[str, dict[str, int]]:
        """Sent, failed, pending and skipped per target: the summary table."""
        table: dict[str, dict[str, int]] = {}
        for planned, report in self.reports:
            row = table.setdefault(planned.target, dict.fromkeys(SUMMARY_COLUMNS, 0))
            for column in SUMMARY_COLUMNS:
                row[column] += getattr(report, column)
        return table


SUMMARY_COLUMNS = ("sent", "failed", "pending", "skipped", "recovered")


def send(
    config: Config,
    *,
    select: Selection | Sequence[str] = "due",
    paths: Iterable[Path] | None = None,
    channels: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
    dry_run: bool = False,
    dry_run_dir: Path | None = None,
    resend: bool = False,
    now: datetime | None = None,
    on_start: Callable[[Send, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Compose and deliver. `select` is "due" (what the schedule says is due by now), "all"
    (every published article now, one digest per digest channel), or article slugs or paths
    (these articles now, even future-dated ones).

    `on_start(send, messages)` and `on_result(result)` let a caller draw progress; `stop` (the
    CLI's signals) ends the run after the messages in flight, as in `deliver()`.
    """
    now = now or clock.now()
    loaded = load_articles(config, paths)
    outcome = Outcome(problems=list(loaded.problems))
    outcome.dry_run_dir = (dry_run_dir or state_path(config, "dry-run")) if dry_run else None
    sends = _plan(config, loaded.articles, select, now, channels, targets, dry_run)
    return deliver(config, sends, outcome, resend=resend, stop=stop, on_start=on_start, on_result=on_result)


def deliver(
    config: Config,
    sends: Sequence[Send],
    outcome: Outcome | None = None,
    *,
    resend: bool = False,
    stop: threading.Event | None = None,
    on_start: Callable[[Send, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Outcome:
    """Compose each planned send once and dispatch it through the ledger: the one path that
    `syndicate send` and the daemon's jobs share. A dry run (`outcome.dry_run_dir` set) writes
    there instead and records nothing. `stop` ends the run after the messages in flight; the
    sends it never reached are reported too, their messages still due counted as pending."""
    outcome = outcome or Outcome()
    outcome.sends.extend(sends)
    if not sends:
        return outcome
    ledger = None if outcome.dry_run_dir else Ledger.from_config(config)
    try:
        drafts: dict[tuple[str, str], Draft | None] = {}
        for planned in sends:
            if stop is not None and stop.is_set():
                outcome.reports.append((planned, _not_reached(config, planned, outcome, ledger, resend)))
                continue
            draft_id = (planned.channel, planned.draft_key)
            if draft_id not in drafts:
                drafts[draft_id] = _compose(config, planned, outcome.problems)
            draft = drafts[draft_id]
            if draft is None:
                continue
            target = make_target(planned.target, config, outcome.dry_run_dir)
            count, messages = _messages(config, planned, draft, outcome)
            if on_start is not None:
                on_start(planned, count)
            ids = (planned.channel, planned.target, planned.draft_key)
            try:
                if ledger is not None:
                    ledger.set_draft_state(ids, "started")
            except DeliveryError as exc:  # a ledger that refuses writes (full disk): send nothing
                report = Report(planned.target, pending=count, paused=True, error=str(exc))
                outcome.reports.append((planned, report))
                continue
            # A target that cannot be reached at all (server down, bad TLS) stops only itself:
            # its messages stay pending for the next run, the other targets carry on.
            report = dispatch(
                messages,
                target,
                ledger,
                resend=resend,
                unknown=config.schedule.unknown,
                on_result=on_result,
                stop=stop,
            )
            if ledger is not None and report.pending == 0 and not report.paused:
                # Not written (full disk), the draft stays `started`: the daemon resumes it,
                # and finds every message settled.
                with contextlib.suppress(DeliveryError):
                    ledger.set_draft_state(ids, "finished")
            outcome.reports.append((planned, report))
    finally:
        if ledger is not None:
            ledger.close()
    return outcome


def _plan(
    config: Config,
    articles: list[Article],
    select: Selection | Sequence[str],
    now: datetime,
    channels: Iterable[str] | None,
    targets: Iterable[str] | None,
    dry_run: bool,
) -> list[Send]:
    if select == "due":
        if dry_run and not config.database_url and not (config.state_dir / LEDGER_FILE).exists():
            # A dry run creates nothing: with no ledger yet, nothing has been sent.
            return plan_due(config, articles, now, channels=channels, targets=targets)
        with Ledger.from_config(config) as ledger:
            return plan_due(
                config, articles, now, channels=channels, targets=targets, sent_keys=ledger.sent_draft_keys
            )
    # --all: everything already published, whatever its window; a future article only by name.
    chosen = [a for a in articles if a.publish_date <= now] if select == "all" else _pick(articles, select)
    return plan_articles(config, chosen, now, channels=channels, targets=targets)


def _pick(articles: list[Article], wanted: Sequence[str]) -> list[Article]:
    """Articles named by slug or file path; an unknown name is a user mistake."""
    by_name = {a.slug: a for a in articles} | {str(a.path): a for a in articles}
    by_name |= {str(a.path.resolve()): a for a in articles}
    chosen = []
    for name in wanted:
        article = by_name.get(name) or by_name.get(str(Path(name).resolve()))
        if article is None:
            raise ContentError(f"{name}: no such article (expected a slug or a file in the content folder)")
        chosen.append(article)
    return chosen


def _compose(config: Config, planned: Send, problems: list[Problem]) -> Draft | None:
    channel = config.channels[planned.channel]
    if isinstance(channel, EmailChannel):
        if planned.is_digest:
            return compose_digest(planned.articles, planned.channel, config, window_end=planned.due)
        return compose_single(planned.articles[0], planned.channel, config)
    post, found = compose_post(planned.articles[0], planned.channel, config)
    problems.extend(found)
    return post


def _messages(config: Config, planned: Send, draft: Draft, outcome: Outcome) -> tuple[int, Iterator[Message]]:
    """How many, and the messages: one per recipient for email to a mail target, else one JSON
    message. Each is made as the dispatch reaches it and builds its payload only as it goes out,
    so a long list holds only its recipients in memory."""
    settings = config.targets[planned.target]
    key = partial(MessageKey, planned.channel, planned.target, planned.draft_key)
    if _per_recipient(config, planned):
        recipients = _recipients(planned.target, settings, outcome)
        made = (
            Message(key(r.email), draft.content_hash, partial(build_message, draft, r, config))
            for r in recipients
        )
        return len(recipients), made
    return 1, iter([Message(key(""), draft.content_hash, partial(_json_payload, draft))])


def _per_recipient(config: Config, planned: Send) -> bool:
    """Whether a send is one message per recipient (email to a mail target), or one JSON message."""
    channel = config.channels[planned.channel]
    return isinstance(channel, EmailChannel) and config.targets[planned.target].type in MIME_TYPES


def _not_reached(
    config: Config, planned: Send, outcome: Outcome, ledger: Ledger | None, resend: bool
) -> Report:
    """A send that a stop came before: its messages the ledger would still send counted as
    pending (the rest skipped), without composing the draft."""
    if _per_recipient(config, planned):
        settings = config.targets[planned.target]
        recipients = {r.email for r in _recipients(planned.target, settings, outcome)}
    else:
        recipients = {""}
    known = ledger.statuses(planned.channel, planned.target, planned.draft_key) if ledger else {}
    due = sum(
        goes_out(known.get(who, ("pending", ""))[0], resend, config.schedule.unknown) for who in recipients
    )
    return Report(planned.target, pending=due, skipped=len(recipients) - due)


def _recipients(name: str, settings: Any, outcome: Outcome) -> list[Recipient]:
    """A target's recipients, loaded once per send() however many drafts go to it."""
    if name not in outcome.recipients:
        suppression = settings.suppression if isinstance(settings, SmtpTarget) else None
        found = load_recipients(settings.recipients, suppression, where=f"targets.{name}.recipients")
        outcome.recipient_problems.extend(found.problems)
        outcome.recipients[name] = found.recipients
    return outcome.recipients[name]


def _json_payload(draft: Draft) -> dict[str, Any]:
    if isinstance(draft, SocialPost):
        return {"kind": "post", **draft.as_dict()}
    return {
        "kind": "email",
        "key": draft.key,
        "channel": draft.channel,
        "subject": draft.subject,
        "preheader": draft.preheader,
        "html": draft.html,
        "text": draft.text,
        "view_url": draft.view_url,
        "content_hash": draft.content_hash,
        # Personal fields are left as these markers, for a receiver that sends on its own.
        "placeholders": dict(PLACEHOLDERS),
        "articles": [a.as_dict() for a in draft.articles],
        "overflow": [a.as_dict() for a in draft.overflow],
    }
