"""Sending: compose what the plan says is due, then dispatch it through each target's ledger.

One draft is composed once (the costly Jinja -> MJML -> css-inline step) and personalised per
recipient as it goes out. A dry run writes the very same messages to a dry-run outbox folder
(emptied first) and touches no server; it reads the ledger, never writes it, and writes only the
messages the real send would send. The CLI's `send` and the daemon's jobs both call `send()`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Literal

from . import clock
from .compose.email import PLACEHOLDERS, EmailDraft, compose_digest, compose_single
from .compose.mime import build_message, envelope_sender
from .compose.social import SocialPost, compose_post
from .config import Config, EmailChannel
from .content import Article, Problem, load_articles
from .continuity import open_ledger, remember_ledger
from .deliver import MailTargetSettings, Message, MessageKey, Result, make_target, target_types
from .deliver.outbox import OutboxTarget
from .dispatch import OnWait, Report, dispatch, goes_out
from .dkim import check_keys
from .dryrun import dry_run_folder
from .errors import ConfigError, ContentError, DeliveryError
from .identity import identify
from .keys import article_key
from .ledger import Ledger
from .lock import Holder, lock_state_folder
from .naming import named_folder
from .plan import Missed, Send, due_now, plan_articles
from .readers import Readers
from .recipients import (
    Recipient,
    RecipientProblem,
    address_key,
    check_address,
)
from .state import state_path

Selection = Literal["due", "all"]
Draft = EmailDraft | SocialPost


@dataclass
class Outcome:
    """What one `send()` did: a dispatch report per (draft, target), and everything noticed."""

    sends: list[Send] = field(default_factory=list)
    reports: list[tuple[Send, Report]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    recipient_problems: list[RecipientProblem] = field(default_factory=list)
    # A mail target's readers: `len()` says how many, iterating reads them (never all in memory).
    recipients: dict[str, Readers] = field(default_factory=dict)
    dry_run_dir: Path | None = None
    # `send --due`: sends the catch-up policy passed over in this run (recorded as skipped),
    # and how many it had passed over in earlier runs; `--backfill` sends both.
    missed: list[Missed] = field(default_factory=list)
    skipped_before: int = 0
    # A test send (`send_test`): the folder social drafts were written to, and under which names.
    test_outbox: Path | None = None
    test_outboxes: set[str] = field(default_factory=set)

    @property
    def article_errors(self) -> list[Problem]:
        """Articles left out because they could not be read: a run with any is not a success."""
        return [p for p in self.problems if p.severity == "error"]

    renamed: list[Problem] = field(default_factory=list)  # articles found under a new file name
    # Drafts that went on as first stored though one of their articles changed since (`_draft`).
    changed: list[Problem] = field(default_factory=list)

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
INTERRUPTED = "interrupted (Ctrl-C) before the end of the list"


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
    backfill: bool = False,
    new_ledger: bool = False,
    now: datetime | None = None,
    on_start: Callable[[Send, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
    on_wait: OnWait | None = None,
    stop: threading.Event | None = None,
    wait: float | None = None,
    on_lock_wait: Callable[[Holder], None] | None = None,
) -> Outcome:
    """Compose and deliver. `select` is "due" (what the schedule says is due by now, as far as
    `schedule.catch_up` allows; with `backfill`, what it passed over too), "all" (every published
    article now, one digest per digest channel), or article slugs or paths (these articles now,
    even future-dated ones).

    `on_start(send, messages)` and `on_result(result)` let a caller draw progress and
    `on_wait(seconds, why)` tell of a long wait; `stop` (the CLI's signals) ends the run after
    the messages in flight, as in `send_planned()`.

    A real send (not a dry run) holds the state folder for its whole run (`lock.py`): another
    `send` holding it is waited for, `wait` seconds at most (None: as long as it takes;
    `on_lock_wait` is told once; `stop` ends the wait with `Stopped`); a daemon holding it
    refuses this send (StateError: its jobs do the sending).
    """
    args = (config, select, paths, channels, targets, dry_run, dry_run_dir, resend, backfill)
    more = (new_ledger, now, on_start, on_result, on_wait, stop)
    if dry_run:
        return _send(*args, *more)
    with lock_state_folder(config.state_dir, "send", wait=wait, stop=stop, on_wait=on_lock_wait):
        return _send(*args, *more)


def _send(
    config: Config,
    select: Selection | Sequence[str],
    paths: Iterable[Path] | None,
    channels: Iterable[str] | None,
    targets: Iterable[str] | None,
    dry_run: bool,
    dry_run_dir: Path | None,
    resend: bool,
    backfill: bool,
    new_ledger: bool,
    now: datetime | None,
    on_start: Callable[[Send, int], None] | None,
    on_result: Callable[[Result], None] | None,
    on_wait: OnWait | None,
    stop: threading.Event | None,
) -> Outcome:
    now = now or clock.now()
    loaded = load_articles(config, paths)
    outcome = Outcome(problems=list(loaded.problems))
    articles, outcome.renamed = identify(
        config, loaded.articles, channels=channels, record=not dry_run, new_ledger=new_ledger
    )
    sends = _plan(config, articles, select, now, channels, targets, outcome, backfill, new_ledger, dry_run)
    if not dry_run:
        return send_planned(
            config,
            sends,
            outcome,
            resend=resend,
            new_ledger=new_ledger,
            on_start=on_start,
            on_result=on_result,
            on_wait=on_wait,
            stop=stop,
        )
    with dry_run_folder(config, dry_run_dir) as folder:
        outcome.dry_run_dir = folder
        return send_planned(
            config, sends, outcome, resend=resend, stop=stop, on_start=on_start, on_result=on_result
        )


def dry_run_mark(report: Report) -> Literal["new", "already sent", "partly sent"]:
    """What a dry run found of one send in the ledger: nothing of it yet, nothing left to send
    (every message sent, or settled as failed or unknown), or some messages left."""
    if report.skipped == 0:
        return "new"
    return "already sent" if report.sent == 0 else "partly sent"


def send_planned(
    config: Config,
    sends: Sequence[Send],
    outcome: Outcome | None = None,
    *,
    resend: bool = False,
    new_ledger: bool = False,
    stop: threading.Event | None = None,
    on_start: Callable[[Send, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
    on_wait: OnWait | None = None,
) -> Outcome:
    """Compose each planned send once and dispatch it through the ledger: the one path that
    `syndicate send` and the daemon's jobs share. A dry run (`outcome.dry_run_dir` set) writes
    there instead, skipping what the ledger has (read, never written). `stop` ends the run
    after the messages in flight; the draft's ledger row then says why messages were left. A
    ledger that is not the one the state folder used is refused unless `new_ledger`
    (continuity.py). The sends a stop never reached
    are reported too, their messages still due counted as pending."""
    outcome = outcome or Outcome()
    outcome.sends.extend(sends)
    if not sends:
        return outcome
    if outcome.dry_run_dir is None:  # a bad DKIM key stops the run before any target sends
        check_keys(config, sorted({planned.target for planned in sends}))
    ledger = Ledger.reader(config) if outcome.dry_run_dir else open_ledger(config, new_ledger)
    recorder = None if ledger is None or ledger.read_only else ledger
    try:
        drafts: dict[tuple[str, str], Kept | None] = {}
        for planned in sends:
            if stop is not None and stop.is_set():
                outcome.reports.append((planned, _not_reached(config, planned, outcome, ledger, resend)))
                continue
            draft_id = (planned.channel, planned.draft_key)
            if draft_id not in drafts:
                drafts[draft_id] = draft_for(config, planned, outcome, ledger, recorder)
            draft = drafts[draft_id]
            if draft is None:
                continue
            target = make_target(planned.target, config, outcome.dry_run_dir)
            count, messages = _messages(config, planned, draft, outcome)
            if on_start is not None:
                on_start(planned, count)
            ids = (planned.channel, planned.target, planned.draft_key)
            try:
                if recorder is not None:
                    slugs = [slug for slug, _ in draft.sources]
                    recorder.set_draft_state(ids, "started", planned=count, articles=slugs)
            except DeliveryError as exc:  # a ledger that refuses writes (full disk): send nothing
                report = Report(planned.target, pending=count, paused=True, error=str(exc))
                outcome.reports.append((planned, report))
                continue
            # A target that cannot be reached at all (server down, bad TLS) stops only itself:
            # its messages stay pending for the next run, the other targets carry on.
            try:
                report = dispatch(
                    messages,
                    target,
                    ledger,
                    resend=resend,
                    unknown=config.schedule.unknown,
                    on_result=on_result,
                    on_wait=on_wait,
                    stop=stop,
                )
            except KeyboardInterrupt:  # Ctrl-C: the draft says so beside the messages left
                if recorder is not None:
                    with contextlib.suppress(DeliveryError):
                        recorder.set_draft_state(ids, "started", INTERRUPTED)
                raise
            if recorder is not None:
                # Not written (full disk), the draft stays `started`: the daemon resumes it,
                # and finds every message settled.
                with contextlib.suppress(DeliveryError):
                    if report.pending == 0 and not report.paused:
                        recorder.set_draft_state(ids, "finished")
                    elif report.pending:  # what `status` shows beside the messages left
                        recorder.set_draft_state(ids, "started", report.why_pending)
            if report.sent and draft.changed and draft.changed not in outcome.changed:
                outcome.changed.append(draft.changed)
            outcome.reports.append((planned, report))
    finally:
        if recorder is not None:
            with contextlib.suppress(OSError, DeliveryError):  # a full disk: the old marker stays
                remember_ledger(config, recorder)
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
    outcome: Outcome,
    backfill: bool,
    new_ledger: bool,
    dry_run: bool,
) -> list[Send]:
    if select == "due":
        # A dry run reads the ledger and creates nothing: with no ledger yet, nothing has been sent.
        ledger = Ledger.reader(config) if dry_run else open_ledger(config, new_ledger)
        with ledger or contextlib.nullcontext():
            plan = due_now(
                config, articles, now, ledger, backfill=backfill, channels=channels, targets=targets
            )
            if ledger is not None and not dry_run:  # recorded: `status` lists them, the daemon leaves them
                for missed in plan.missed:
                    ledger.set_draft_state(missed.draft, "skipped", missed.reason)
        outcome.missed, outcome.skipped_before = plan.missed, plan.skipped_before
        return plan.sends
    # --all: everything already published, whatever its window; a future article only by name.
    chosen = [a for a in articles if a.publish_date <= now] if select == "all" else _pick(articles, select)
    return plan_articles(config, chosen, now, channels=channels, targets=targets)


def _pick(articles: list[Article], wanted: Sequence[str]) -> list[Article]:
    """Articles named by slug or file path; an unknown name is a user mistake."""
    by_name = {a.slug: a for a in articles} | {a.name: a for a in articles}
    by_name |= {str(a.path): a for a in articles}
    by_name |= {str(a.path.resolve()): a for a in articles}
    chosen = []
    for name in wanted:
        article = by_name.get(name) or by_name.get(str(Path(name).resolve()))
        if article is None:
            raise ContentError(f"{name}: no such article (expected a slug or a file in the content folder)")
        chosen.append(article)
    return chosen


@dataclass(frozen=True)
class Kept:
    """A draft as a run sends it: its JSON payload as first composed (`_json_payload`), and the
    articles (slug, content hash) it was made of. Stored in the ledger when its first run starts,
    so a run resumed later (after a stop, a crash, midnight) sends the very same bytes."""

    payload: dict[str, Any]
    sources: tuple[tuple[str, str], ...]
    changed: Problem | None = None  # set when an article changed after the draft was stored

    @property
    def content_hash(self) -> str:
        return str(self.payload["content_hash"])

    @cached_property
    def email(self) -> EmailDraft:
        """The email as `build_message` takes it (its articles are not needed there)."""
        p = self.payload
        return EmailDraft(
            p["key"],
            p["channel"],
            p["subject"],
            p["preheader"],
            p["html"],
            p["text"],
            (),
            view_url=p["view_url"],
        )

    def dumps(self) -> str:
        body = {"payload": self.payload, "sources": [list(s) for s in self.sources]}
        return json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)

    @classmethod
    def loads(cls, text: str) -> Kept:
        body = json.loads(text)
        return cls(body["payload"], tuple((slug, digest) for slug, digest in body["sources"]))


def draft_for(
    config: Config, planned: Send, outcome: Outcome, ledger: Ledger | None, recorder: Ledger | None
) -> Kept | None:
    """The draft of a send: the one stored when its first run started, once any of its messages
    may have reached someone (whatever was edited since: a draft is never sent in two versions);
    else composed now (as edited: nobody has it yet) and, by a run that records, stored before
    its first message."""
    sources = tuple((a.name, a.content_hash) for a in planned.articles)
    stored = ledger.draft_body(planned.channel, planned.draft_key) if ledger is not None else None
    if (
        stored is not None
        and ledger is not None
        and not ledger.draft_went_out(planned.channel, planned.draft_key)
    ):
        stored = None
    if stored is None:
        composed = _compose(config, planned, outcome.problems)
        if composed is None:
            return None
        kept = Kept(json.loads(json.dumps(_json_payload(composed), default=str)), sources)
        if recorder is None:
            return kept
        try:
            stored = recorder.keep_draft_body(planned.channel, planned.draft_key, kept.dumps(), replace=True)
        except DeliveryError:  # a ledger refusing writes: the send stops at its draft state below
            return kept
    kept = Kept.loads(stored)
    if kept.sources == sources:
        return kept
    now_, then = dict(sources), dict(kept.sources)
    changes = [
        f"{slug} was {'added' if slug not in then else 'removed' if slug not in now_ else 'edited'}"
        for slug in sorted(set(now_) | set(then))
        if now_.get(slug) != then.get(slug)
    ]
    paths = {a.name: a.path for a in planned.articles}
    where = next((paths[slug] for slug in sorted(paths) if now_[slug] != then.get(slug)), config.content.dir)
    message = (
        f"{planned.draft_key} started before {', '.join(changes)}: the readers it has not reached "
        "yet get it as it started, without the change"
    )
    return replace(kept, changed=Problem(where, "draft", "warning", message))


def _compose(config: Config, planned: Send, problems: list[Problem]) -> Draft | None:
    channel = config.channels[planned.channel]
    if isinstance(channel, EmailChannel):
        if planned.is_digest:
            return compose_digest(planned.articles, planned.channel, config, window_end=planned.due)
        return compose_single(planned.articles[0], planned.channel, config)
    post, found = compose_post(planned.articles[0], planned.channel, config)
    problems.extend(found)
    return post


def _messages(config: Config, planned: Send, draft: Kept, outcome: Outcome) -> tuple[int, Iterator[Message]]:
    """How many, and the messages of a planned send (see `messages_of`)."""
    settings = mail_target(config, planned.channel, planned.target)
    readers = None if settings is None else _recipients(planned.target, settings, config, outcome)
    return messages_of(config, (planned.channel, planned.target, planned.draft_key), draft, readers)


def messages_of(
    config: Config, ids: tuple[str, str, str], draft: Kept, recipients: Readers | None
) -> tuple[int, Iterator[Message]]:
    """How many, and the messages of draft `ids` (channel, target, draft key): one per reader
    of `recipients` for email to a mail target, else (None) one JSON message. Each is made as
    the dispatch reaches it and builds its payload only as it goes out, and the readers are
    read as they come (`Readers`): a long list is never held in memory. A queue worker passes
    the readers of its shard alone."""
    key = partial(MessageKey, *ids)
    if recipients is not None:
        made = (
            Message(
                key(address_key(r.email)),
                draft.content_hash,
                partial(build_message, draft.email, r, config),
                envelope_sender(r, config),
            )
            for r in recipients
        )
        return len(recipients), made
    return 1, iter([Message(key(""), draft.content_hash, partial(dict, draft.payload))])


def mail_target(config: Config, channel_name: str, target: str) -> MailTargetSettings | None:
    """A send's mail target when it is one message per recipient (email to a mail target), or
    None when it is one JSON message."""
    channel, settings = config.channels[channel_name], config.targets[target]
    if isinstance(channel, EmailChannel) and isinstance(settings, MailTargetSettings):
        return settings
    return None


def _not_reached(
    config: Config, planned: Send, outcome: Outcome, ledger: Ledger | None, resend: bool
) -> Report:
    """A send that a stop came before: its messages the ledger would still send counted as
    pending (the rest skipped), without composing the draft; the ledger read a chunk of
    readers at a time."""
    settings = mail_target(config, planned.channel, planned.target)
    if settings is not None:
        chunks: Iterable[list[str]] = (
            [address_key(r.email) for r in chunk]
            for chunk in _recipients(planned.target, settings, config, outcome).chunks()
        )
    else:
        chunks = [[""]]
    due = total = 0
    for chunk in chunks:
        draft = (planned.channel, planned.target, planned.draft_key)
        known = ledger.statuses_of(*draft, chunk) if ledger else {}
        total += len(chunk)
        due += sum(
            goes_out(known.get(who, ("pending", ""))[0], resend, config.schedule.unknown) for who in chunk
        )
    return Report(planned.target, pending=due, skipped=total - due)


def _recipients(name: str, settings: MailTargetSettings, config: Config, outcome: Outcome) -> Readers:
    """A target's recipients, surveyed once per send() however many drafts go to it (each
    draft reads them again from their source, a chunk at a time)."""
    if name not in outcome.recipients:
        found = Readers(name, settings, config, write=outcome.dry_run_dir is None)
        outcome.recipient_problems.extend(found.problems)
        outcome.recipients[name] = found
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


def check_routes(config: Config, channels: Sequence[str], targets: Sequence[str]) -> None:
    """A `--target` that none of the chosen channels sends to is a mistake, not an empty send:
    the message names the targets those channels do have."""
    chosen = list(channels) or list(config.channels)
    for target in targets:
        if any(target in config.channels[c].targets for c in chosen):
            continue
        if channels:
            known = "; ".join(f"{c}: {', '.join(config.channels[c].targets)}" for c in chosen)
            raise ConfigError(
                f"--target {target}: not a target of the chosen channel(s) (their targets: {known})"
            )
        raise ConfigError(f"--target {target}: no channel sends to this target (see channels.*.targets)")


def send_test(
    config: Config,
    names: Sequence[str],
    address: str,
    *,
    channels: Sequence[str] = (),
    targets: Sequence[str] = (),
) -> Outcome:
    """A test send: each chosen channel's real draft of the named articles (drafts included: this
    is how one looks at an article before it is published), to one address through the channel's
    first email target (or the `--target` given), its subject prefixed `[test]`. Social drafts go
    to `<state_dir>/test-send/`. Nothing is written to the ledger, so the real send still happens."""
    try:
        email = check_address(address)
    except ValueError as exc:
        raise ConfigError(f"--to: {exc}") from None
    if not names:
        raise ConfigError("--to: name the article(s) to send (a slug or a file)")
    loaded = load_articles(config)
    chosen = _pick(loaded.articles, names)
    outcome = Outcome(problems=list(loaded.problems))
    outcome.test_outbox = state_path(config, "test-send")
    now = clock.now()
    for channel_name in channels or list(config.channels):
        channel = config.channels[channel_name]
        if isinstance(channel, EmailChannel):
            target = _test_target(config, channel_name, targets)
            if channel.mode == "digest":
                drafts: list[Draft] = [compose_digest(chosen, channel_name, config, window_end=now)]
            else:
                drafts = [compose_single(a, channel_name, config) for a in chosen]
            for draft in drafts:
                assert isinstance(draft, EmailDraft)
                trial = replace(draft, subject=f"[test] {draft.subject}")
                key = MessageKey(channel_name, target, f"test:{draft.key}", email)
                message = Message(
                    key, trial.content_hash, partial(build_message, trial, Recipient(email), config)
                )
                planned = Send(channel_name, target, key.draft_key, now, trial.articles)
                report = dispatch([message], make_target(target, config), None)
                outcome.sends.append(planned)
                outcome.reports.append((planned, report))
            continue
        for article in chosen:
            post = _compose(config, Send(channel_name, "", "", now, (article,)), outcome.problems)
            if post is None:
                continue
            outcome.test_outboxes.add(channel_name)
            draft_key = f"test:{article_key(channel_name, article)}"
            planned = Send(channel_name, channel_name, draft_key, now, (article,))
            key = MessageKey(channel_name, channel_name, draft_key, "")
            message = Message(key, post.content_hash, partial(_json_payload, post))
            outbox = OutboxTarget(channel_name, named_folder(outcome.test_outbox, channel_name))
            report = dispatch([message], outbox, None)
            outcome.sends.append(planned)
            outcome.reports.append((planned, report))
    return outcome


def _test_target(config: Config, channel: str, targets: Sequence[str]) -> str:
    """The `--target` given, else the channel's first target that takes an email as a message."""
    candidates = [t for t in config.channels[channel].targets if not targets or t in targets]
    for name in candidates:
        if isinstance(config.targets[name], MailTargetSettings):
            return name
    mail_types = sorted(
        kind for kind, model in target_types().items() if issubclass(model, MailTargetSettings)
    )
    raise ConfigError(
        f"channels.{channel}: no email target to send a test through "
        f"(expected one of type {' or '.join(mail_types)} among: {', '.join(candidates) or 'none'})"
    )
