"""`Daemon`: keeps the job store in step with the content and runs each job through `send_planned()`.

The job store holds one date job per article and per-article channel/target at the article's
publish date, and one cron job per digest channel/target in the site's timezone. A rescan (every
`schedule.rescan_seconds`, and on file events) follows content edits, reading only changed files.
A job runs the same `send_planned()` as `syndicate send`, through the ledger, so a restart, an
edit racing a job or a manual `send` in between never sends anything twice.

What to do with a send whose time passed is `catchup.py`'s decision; how jobs are added, moved
and dropped is `store.py`'s; this module does what those say, and runs the jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from .. import clock
from ..config import Config
from ..content import Article, ArticleCache
from ..continuity import open_ledger
from ..dkim import check_keys
from ..errors import DeliveryError, SyndicateError
from ..identity import resolve
from ..intake import read_bounce_mailbox
from ..keys import DraftId, article_key, digest_key
from ..leader import Leadership
from ..ledger import DraftState, Ledger
from ..lock import Holder, StateLock, Stopped, lock_state_folder
from ..plan import (
    Send,
    digest_articles,
    digest_due,
    digest_settings,
    for_channel,
    is_digest_channel,
    plan_articles,
)
from ..retry import Backoff
from ..schedule import digest_end_of_key, digest_window, latest_digest_end
from ..send import Kept, Outcome, send_planned
from . import jobs
from .catchup import Run, Skip, article_decision, digest_decision
from .events import Log, emit, first_line
from .ids import JobId
from .jobs import run_article_job, run_digest_job, run_resume_job
from .store import JobBook, digest_trigger

__all__ = ["RETRY_FIRST", "RETRY_MAX", "Daemon"]

RETRY_FIRST, RETRY_MAX = timedelta(minutes=1), timedelta(hours=1)


class Daemon:
    """Keeps the job store in step with the content and runs each job through `send_planned()`.

    `run()` blocks until `stop()` (the CLI wires SIGTERM and SIGINT to it); a send in progress
    finishes the messages in flight, leaves the rest pending and is resumed at the next start.
    """

    def __init__(self, config: Config, log: Log, *, watch: bool = True, new_ledger: bool = False) -> None:
        self.config = config
        self.new_ledger = new_ledger
        self.log = log
        self.watch = watch
        self.articles = ArticleCache(config)
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.RLock()  # rescans and jobs take turns with the cache and the store
        self.book = JobBook(config, self._event)
        self._retries: dict[str, int] = {}
        self._reported: set[str] = set()
        self._lock_file: StateLock | None = None
        self.leadership: Leadership | None = None
        self.lost_leadership = False
        self.ledger: Ledger | None = None
        per_article = [name for name in config.channels if not is_digest_channel(config, name)]
        self._article_routes = [(c, t) for c in per_article for t in config.channels[c].targets]
        self._digest_routes = [
            (c, t)
            for c in config.channels
            if is_digest_channel(config, c)
            for t in config.channels[c].targets
        ]

    @property
    def scheduler(self) -> BackgroundScheduler | None:
        return self.book.scheduler

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        self.start()
        try:
            if self.watch and self.config.content.dir.exists():  # a feed alone has no folder to watch
                threading.Thread(target=self._watch_files, name="syndicate-watch", daemon=True).start()
            if self.config.bounces is not None and not self.stopping.is_set():
                threading.Thread(target=self._poll_bounces, name="syndicate-bounces", daemon=True).start()
            while not self.stopping.is_set():
                self._wake.wait(self.config.schedule.rescan_seconds)
                self._wake.clear()
                if self.leadership is not None and not self.leadership.holds():
                    # Another daemon may lead by now: scheduling on would run its jobs twice.
                    self._event("failed", reason="lost the leader lock (database connection); stopping")
                    self.stopping.set()
                    self.lost_leadership = True
                if not self.stopping.is_set():
                    self.rescan()
        finally:
            self.close()

    def start(self) -> None:
        """Lock the state folder, open the stores, bring the jobs in step with the content. A DKIM
        key that cannot be used stops it here (a reload: back to the config before), not at its
        first job."""
        check_keys(self.config)
        try:  # a `syndicate send` holding the folder is waited for (a SIGHUP reload too)
            self._lock_file = lock_state_folder(
                self.config.state_dir, "daemon", stop=self.stopping, on_wait=self._waiting
            )
        except Stopped:
            return
        if not self._lead():
            return
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self._event("ready", articles=len(self.articles.loaded.articles), jobs=len(self.book.queued))

    def _open(self) -> None:
        self.ledger = open_ledger(self.config, self.new_ledger)
        jobs.attach(self)
        self.book.open()
        with self._lock, self.book.batch():  # every date job written in one transaction
            now = clock.now()
            states = self.ledger.draft_states()
            self._follow(self.articles.refresh(), now, lambda draft: states.get(draft))
            self._report_problems()
            self._drop_stale_jobs()
            for channel, target in self._digest_routes:
                self._start_digest(channel, target, now)
            self._resume(now)
        self.book.resume()

    def _poll_bounces(self) -> None:
        """Read the bounce mailbox now and every `bounces.every_seconds` until stopped: readers who
        bounced or complained are ended before the next send reads the list."""
        assert self.config.bounces is not None
        every = self.config.bounces.every_seconds
        while not self.stopping.is_set():
            self.read_bounces()
            if self.stopping.wait(every):
                return

    def read_bounces(self) -> None:
        """One read of the bounce mailbox, logged; a failure is logged and tried again next time."""
        try:
            report = read_bounce_mailbox(self.config)
        except (SyndicateError, SQLAlchemyError, OSError) as exc:
            reason = first_line(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            assert self.config.bounces is not None
            every = self.config.bounces.every_seconds
            self._event("failed", reason=f"bounces: {reason}; reading again in {every:g} s")
            return
        if report.applied or report.unmatched:
            self._event("bounces", reason=report.summary())

    def _lead(self) -> bool:
        """With `workers:`, wait to be the one daemon that schedules (`leader.py`), a standby
        until then; False when stopped first. Without, every daemon leads its own folder."""
        workers = self.config.workers
        if workers is None or self.config.database_url is None:
            return True
        self.leadership = Leadership(self.config.database_url, workers.queue)
        if not self.leadership.try_lead():
            self._event("standby", reason="another daemon leads; taking over when it stops")
            if not self.leadership.wait_to_lead(workers.standby_poll_seconds, self.stopping):
                return False
        self._event("leading", reason=f"the scheduler of queue {workers.queue}")
        return True

    def _waiting(self, holder: Holder) -> None:
        self._event("waiting", reason=f"waiting for {holder} to finish with {self.config.state_dir}")

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def close(self) -> None:
        """Wait for the job in progress (it stops after its messages in flight), then let go."""
        self.book.close()
        if self.ledger is not None:
            self.ledger.close()
        jobs.detach(self)
        if self.leadership is not None:
            self.leadership.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def jobs(self) -> dict[str, datetime]:
        """Job id -> next run time, as the job store has them."""
        return self.book.jobs()

    # -- following the content -------------------------------------------------------------

    def rescan(self) -> None:
        """Read what changed in the content folder and move, add or drop its jobs."""
        with self._lock:
            try:
                changed = self.articles.refresh()
            except SyndicateError as exc:
                self._event("failed", reason=str(exc))
                return
            assert self.ledger is not None
            try:
                with self.book.batch():  # the jobs it moves, in one transaction (a timezone change: all)
                    self._follow(changed, clock.now(), self.ledger.draft_state)
            except (SQLAlchemyError, DeliveryError) as exc:  # a store refusing writes (full disk)
                reason = exc if isinstance(exc, DeliveryError) else f"job store: {first_line(exc)}"
                self._event("failed", reason=f"{reason}; trying again at the next rescan")
                self.articles = ArticleCache(self.config)  # so that every article counts as changed then
            self._report_problems()

    def _follow(
        self,
        changed: dict[str, Article | None],
        now: datetime,
        state_of: Callable[[DraftId], DraftState | None],
    ) -> None:
        changed = self._identify(changed)
        for slug, article in sorted(changed.items(), key=_by_date):
            for channel, target in self._article_routes:
                job_id = JobId.article(channel, target, slug)
                outside = article is not None and not for_channel(self.config, channel, [article])
                if article is None or outside or not article.live(max(now, article.publish_date)):
                    why = (
                        "deleted or unreadable"
                        if article is None
                        else "not in the channel's articles: segment"
                        if outside
                        else "draft"
                        if article.draft
                        else "expired"
                    )
                    self.book.unqueue(job_id, why)
                    continue
                draft = (channel, target, article_key(channel, article))
                due = article.publish_date
                decision = article_decision(
                    self.config, due, now, state_of(draft), self.book.queued_at(job_id)
                )
                if isinstance(decision, Run):
                    self.book.queue(job_id, decision.at, run_article_job, (channel, target, slug), draft)
                elif isinstance(decision, Skip):
                    self._skip(draft, due, decision.reason)
                    self.book.unqueue(job_id, None)
                else:
                    self.book.unqueue(job_id, decision.reason)

    def _identify(self, changed: dict[str, Article | None], record: bool = True) -> dict[str, Article | None]:
        """The articles under the names their sends have in the ledger: a renamed article keeps
        its own (`identity.py`), and is logged once as `renamed` (when recorded)."""
        present = [a for a in changed.values() if a is not None]
        if not present:
            return changed
        assert self.ledger is not None
        everyone = self.articles.loaded.articles
        found, renamed = resolve(self.config, self.ledger, present, everyone=everyone, record=record)
        for problem in renamed:
            self._event("renamed", reason=str(problem))
        by_name = {a.name: a for a in found}
        return {name: by_name[name] if article is not None else None for name, article in changed.items()}

    def _drop_stale_jobs(self) -> None:
        """Jobs of articles deleted, or channels and targets renamed, while the daemon was down."""
        names = self.articles.by_name()
        wanted = [JobId.article(c, t, name) for c, t in self._article_routes for name in names]
        wanted += [JobId.digest(c, t) for c, t in self._digest_routes]
        wanted += [JobId.digest_now(c, t) for c, t in self._digest_routes]
        self.book.keep_only(wanted)

    def _start_digest(self, channel: str, target: str, now: datetime) -> None:
        """The digest's cron job, and the latest window's digest if it was missed."""
        assert self.ledger is not None
        schedule, tz = digest_settings(self.config, channel).schedule, self.config.site.tz
        self.book.repeat(
            JobId.digest(channel, target), digest_trigger(schedule, tz), run_digest_job, (channel, target)
        )
        end = latest_digest_end(schedule, tz, now)
        draft = (channel, target, digest_key(channel, end, tz))
        went_out = draft[2] in self.ledger.sent_draft_keys(channel, target)
        decision = digest_decision(self.config, end, now, self.ledger.draft_state(draft), went_out)
        if isinstance(decision, Run):
            args = (channel, target, decision.since)
            self.book.queue(JobId.digest_now(channel, target), decision.at, run_digest_job, args, draft)
        elif isinstance(decision, Skip):
            self._skip(draft, end, decision.reason)

    def _resume(self, now: datetime) -> None:
        """Every draft a run left `started` (stopped, killed, its server down) is finished now,
        as it was first composed (`send.draft_for`): a per-article one by its article's job
        (`article_decision`), a digest by a job of its own, whatever window it was. One log
        line says so."""
        assert self.ledger is not None
        routes = set(self._article_routes) | set(self._digest_routes)
        started = [row.draft for row in self.ledger.drafts("started") if row.draft[:2] in routes]
        for draft in started:
            if draft[:2] in self._digest_routes:
                self.book.queue(JobId.resume(draft), now, run_resume_job, draft, draft)
        if started:
            shown = ", ".join(f"{key} -> {target}" for _channel, target, key in started)
            self._event("resumed", drafts=len(started), reason=shown)

    def _skip(self, draft: DraftId, due: datetime, reason: str) -> None:
        assert self.ledger is not None
        self.ledger.set_draft_state(draft, "skipped", reason)
        self._event("skipped", channel=draft[0], target=draft[1], draft=draft[2], due=due, reason=reason)

    def _report_problems(self) -> None:
        """Each article error once, as it appears (a fixed file can break again and is told again)."""
        current = {str(p) for p in self.articles.loaded.errors}
        for line in sorted(current - self._reported):
            self._event("invalid", reason=line)
        self._reported = current

    def _watch_files(self) -> None:
        from watchfiles import watch

        try:
            for _changes in watch(self.config.content.dir, stop_event=self.stopping, debounce=300):
                self._wake.set()
        except (OSError, RuntimeError) as exc:  # no inotify here: the interval rescan still runs
            self._event(
                "failed", reason=f"content.dir: file events unavailable ({exc}); rescanning on a timer"
            )

    # -- the jobs ---------------------------------------------------------------------------

    def run_article(self, channel: str, target: str, slug: str) -> None:
        job_id = JobId.article(channel, target, slug)
        with self._lock:
            fired = self.book.fired(job_id)
            self.rescan()  # an edit made just before the time goes out as edited
            now = clock.now()
            queued = self.book.queued_at(job_id)
            if queued is not None and queued > now:  # the edit moved it later
                return
            self.book.unqueue(job_id, None)
            article = self.articles.by_name().get(slug)
            if article is None or not article.live(now) or article.publish_date > now + timedelta(seconds=1):
                return
            # Read only: the rescan just above recorded it (or failed, and the next one will).
            article = self._identify({slug: article}, record=False)[slug]
            assert self.ledger is not None and article is not None
            draft = (channel, target, article_key(channel, article))
            state = self.ledger.draft_state(draft)
            if state in ("finished", "skipped"):  # e.g. a `syndicate send` of it got there first
                self._event(
                    "skipped", channel=channel, target=target, draft=draft[2], reason=f"already {state}"
                )
                return
            sends = plan_articles(self.config, [article], now, channels=[channel], targets=[target])
            self._deliver(sends, job_id, run_article_job, (channel, target, slug), fired)

    def run_digest(self, channel: str, target: str, since: datetime | None = None) -> None:
        """The digest due now; `since` keeps a late one to what the catch-up window allows."""
        with self._lock:
            self.rescan()
            now = clock.now()
            assert self.ledger is not None
            settled = self.ledger.settled_draft_keys(channel, target)
            articles = self.articles.loaded.articles
            sends = digest_due(self.config, channel, target, articles, now, settled, since)
            job_id = JobId.digest_now(channel, target)
            self.book.fired(job_id)
            if not sends:
                schedule, tz = digest_settings(self.config, channel).schedule, self.config.site.tz
                key = digest_key(channel, latest_digest_end(schedule, tz, now), tz)
                self.ledger.set_draft_state((channel, target, key), "finished", "no new articles")
                self._event("skipped", channel=channel, target=target, draft=key, reason="no new articles")
                return
            self._deliver(sends, job_id, run_digest_job, (channel, target, since), None)

    def run_resume(self, channel: str, target: str, draft_key: str) -> None:
        """Finish a digest a run left `started`: its stored draft to the readers it has not
        reached (a draft from before drafts were stored: its window's articles as they are)."""
        draft = (channel, target, draft_key)
        job_id = JobId.resume(draft)
        with self._lock:
            self.book.fired(job_id)
            self.rescan()
            assert self.ledger is not None
            if self.ledger.draft_state(draft) != "started":  # e.g. a `send` finished it meanwhile
                return
            settings, tz = digest_settings(self.config, channel), self.config.site.tz
            end = digest_end_of_key(draft_key, settings.schedule, tz)
            if end is None:
                self._event("failed", draft=draft_key, reason="not a digest key: cannot resume it")
                return
            window = digest_window(settings.schedule, tz, end)
            stored = self.ledger.draft_body(channel, draft_key)
            articles = digest_articles(self.config, channel, self.articles.loaded.articles, end)
            if stored is not None:  # it goes out as stored; these are what a warning compares it to
                by_name = self.articles.by_name()
                names = [name for name, _ in Kept.loads(stored).sources]
                kept = [by_name[name] for name in names if name in by_name]
                articles = kept + [a for a in articles if a.name not in names]
            elif not articles:
                self.ledger.set_draft_state(draft, "finished", "no articles left to resume with")
                return
            sends = [Send(channel, target, draft_key, end, tuple(articles), window)]
            self._deliver(sends, job_id, run_resume_job, draft, None)

    def _deliver(
        self,
        sends: list[Send],
        job_id: JobId,
        func: Callable[..., None],
        args: tuple[Any, ...],
        fired: datetime | None,
    ) -> None:
        try:
            if self.config.workers is not None:  # the workers send it: this only puts it on the queue
                self._enqueue(sends)
                self._retries.pop(str(job_id), None)
                return
            outcome = send_planned(
                self.config,
                sends,
                stop=self.stopping,
                on_wait=lambda seconds, why: self._event("waiting", seconds=round(seconds), reason=why),
            )
        except SyndicateError as exc:
            self._event("failed", draft=str(job_id), reason=str(exc))
            outcome = None
        if outcome is not None:
            self._log_outcome(outcome, fired)
        if outcome is not None and outcome.ok:
            self._retries.pop(str(job_id), None)
            return
        pending = outcome is None or any(r.pending or r.paused for _, r in outcome.reports)
        if pending and not self.stopping.is_set():
            tries = self._retries.get(str(job_id), 0) + 1
            self._retries[str(job_id)] = tries
            # Built here, not once: test_daemon patches RETRY_FIRST. No jitter: one job per draft.
            backoff = Backoff(RETRY_FIRST.total_seconds(), RETRY_MAX.total_seconds())
            when = clock.now() + timedelta(seconds=backoff.delay(tries))
            planned = sends[0]
            draft = (planned.channel, planned.target, planned.draft_key)
            self.book.queue(job_id.retried(), when, func, args, draft)

    def _enqueue(self, sends: list[Send]) -> None:
        """Put the sends on the workers' queue, shard by shard (queue.py), and log each."""
        from ..queue import enqueue

        try:
            queued = enqueue(self.config, sends)
        except SQLAlchemyError as exc:
            raise DeliveryError(f"cannot reach the queue: {first_line(exc)}") from None
        except Exception as exc:  # procrastinate's own errors (its connection): tried again later
            if isinstance(exc, SyndicateError):
                raise
            raise DeliveryError(f"cannot reach the queue: {exc}") from None
        for item in queued:
            planned = item.send
            self._event(
                "queued",
                channel=planned.channel,
                target=planned.target,
                draft=planned.draft_key,
                messages=item.messages,
                shards=item.shards,
            )

    def _log_outcome(self, outcome: Outcome, fired: datetime | None) -> None:
        for problem in outcome.problems:
            if problem.severity == "error":
                self._event("invalid", reason=str(problem))
        for problem in outcome.changed:  # a resumed draft went on as first composed
            self._event("changed", reason=str(problem))
        for planned, report in outcome.reports:
            counts = {
                "sent": report.sent,
                "failed": report.failed,
                "pending": report.pending,
                "skipped": report.skipped,
            }
            reason = report.error or "; ".join(
                f"{r.key.recipient or planned.draft_key}: {r.detail}" for r in report.problems[:3]
            )
            self._event(
                "sent" if report.ok else "failed",
                channel=planned.channel,
                target=planned.target,
                draft=planned.draft_key,
                due=fired or planned.due,
                reason=reason or None,
                **counts,
            )

    def _event(self, event: str, **fields: Any) -> None:
        emit(self.log, self.config, event, **fields)


def _by_date(item: tuple[str, Article | None]) -> tuple[datetime, str]:
    """Log lines in publish order, gone articles first."""
    slug, article = item
    return (article.publish_date if article else datetime.min.replace(tzinfo=UTC), slug)
