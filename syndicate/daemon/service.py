"""The daemon: every send queued in APScheduler's persistent job store at its time.

The job store (`jobs.sqlite` in the state folder, or `schedule.jobstore_url`) holds one date job
per article and per-article channel/target at the article's publish date, and one cron job per
digest channel/target in the site's timezone. A rescan (every `schedule.rescan_seconds`, and on
file events) follows content edits, reading only changed files. A job runs the same `send_planned()`
as `syndicate send`, through the ledger, so a restart, an edit racing a job or a manual `send`
in between never sends anything twice.

Sends whose time passed while the daemon was not running, or before it first saw them, follow
`schedule.catch_up`: `skip` records and logs them (`send --due` is the explicit backfill),
`send` sends them now, a window like `2d` sends those at most that late. A late digest coalesces
every window since the last one settled. A start first finishes every draft a run left
`started` (`_resume`), as it was first composed (`send._draft`).

`Runner` is the daemon as the CLI runs it: SIGTERM/SIGINT stop it, SIGHUP restarts it on a
freshly read config.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.exc import SQLAlchemyError

from . import clock
from .config import Config, DigestSchedule
from .content import Article, ArticleCache
from .continuity import open_ledger
from .errors import DeliveryError, StateError, SyndicateError
from .identity import resolve
from .keys import DraftId, article_key, digest_key
from .ledger import DraftState, Ledger, make_engine, sqlite_url
from .lock import LOCK_FILE as LOCK_FILE  # re-exported: where they lived before lock.py
from .lock import Holder, StateLock, Stopped, lock_state_folder
from .lock import running_daemon as running_daemon
from .plan import (
    ON_TIME,
    Send,
    catch_up_since,
    first_digest_articles,
    is_digest_channel,
    may_catch_up,
    missed_reason,
    plan_articles,
    plan_due,
)
from .schedule import articles_in_window, digest_end_of_key, digest_window, latest_digest_end
from .send import Kept, Outcome, send_planned

JOBS_FILE = "jobs.sqlite"
RETRY_FIRST, RETRY_MAX = timedelta(minutes=1), timedelta(hours=1)

Event = dict[str, Any]
Log = Callable[[Event], None]

# The daemon whose jobs fire in this process. APScheduler's persistent store keeps a job as a
# reference to a module-level function plus its arguments, so the jobs find their daemon here.
_running: Daemon | None = None


def run_article_job(channel: str, target: str, slug: str) -> None:
    _current().run_article(channel, target, slug)


def run_digest_job(channel: str, target: str, since: datetime | None = None) -> None:
    _current().run_digest(channel, target, since)


def run_resume_job(channel: str, target: str, draft_key: str) -> None:
    _current().run_resume(channel, target, draft_key)


def _current() -> Daemon:
    if _running is None:
        raise RuntimeError("a syndicate job fired with no daemon running in this process")
    return _running


def digest_trigger(schedule: DigestSchedule, tz: tzinfo) -> CronTrigger:
    """The cron job of a digest channel: wall-clock time in the site's timezone, so 08:00 stays
    08:00 local across daylight-saving changes."""
    return CronTrigger(
        day_of_week=schedule.weekday if schedule.every == "week" else "*",
        hour=schedule.at.hour,
        minute=schedule.at.minute,
        timezone=tz,
    )


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
        self._queued: dict[str, datetime] = {}  # job id -> next run: a mirror of the store
        self._retries: dict[str, int] = {}
        self._reported: set[str] = set()
        self._lock_file: StateLock | None = None
        self.ledger: Ledger | None = None
        self.scheduler: BackgroundScheduler | None = None
        self._store: SQLAlchemyJobStore | None = None
        per_article = [name for name in config.channels if not is_digest_channel(config, name)]
        self._article_routes = [(c, t) for c in per_article for t in config.channels[c].targets]
        self._digest_routes = [
            (c, t)
            for c in config.channels
            if is_digest_channel(config, c)
            for t in config.channels[c].targets
        ]

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        self.start()
        try:
            if self.watch:
                threading.Thread(target=self._watch_files, name="syndicate-watch", daemon=True).start()
            while not self.stopping.is_set():
                self._wake.wait(self.config.schedule.rescan_seconds)
                self._wake.clear()
                if not self.stopping.is_set():
                    self.rescan()
        finally:
            self.close()

    def start(self) -> None:
        """Lock the state folder, open the stores, bring the jobs in step with the content."""
        try:  # a `syndicate send` holding the folder is waited for (a SIGHUP reload too)
            self._lock_file = lock_state_folder(
                self.config.state_dir, "daemon", stop=self.stopping, on_wait=self._waiting
            )
        except Stopped:
            return
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self._event("ready", articles=len(self.articles.loaded.articles), jobs=len(self._queued))

    def _open(self) -> None:
        global _running
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own log says what happened
        clock.patch_scheduler()  # its timers follow SYNDICATE_NOW like everything else
        self.ledger = open_ledger(self.config, self.new_ledger)
        self._store = self._job_store()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": self._store},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        _running = self
        try:
            self.scheduler.start(paused=True)
        except SQLAlchemyError as exc:
            raise StateError(
                f"schedule.jobstore_url: cannot open the job store ({_first_line(exc)})"
            ) from None
        self._queued = {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
        with self._lock:
            now = _now()
            states = self.ledger.draft_states()
            self._follow(self.articles.refresh(), now, lambda draft: states.get(draft))
            self._report_problems()
            self._drop_stale_jobs()
            for channel, target in self._digest_routes:
                self._start_digest(channel, target, now)
            self._resume(now)
        self.scheduler.resume()

    def _waiting(self, holder: Holder) -> None:
        self._event("waiting", reason=f"waiting for {holder} to finish with {self.config.state_dir}")

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def close(self) -> None:
        """Wait for the job in progress (it stops after its messages in flight), then let go."""
        global _running
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self._store is not None:  # the scheduler's own close can come before its thread's last query
            self._store.shutdown()
        if self.ledger is not None:
            self.ledger.close()
        if _running is self:
            _running = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def jobs(self) -> dict[str, datetime]:
        """Job id -> next run time, as the job store has them."""
        assert self.scheduler is not None
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

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
                self._follow(changed, _now(), self.ledger.draft_state)
            except (SQLAlchemyError, DeliveryError) as exc:  # a store refusing writes (full disk)
                reason = exc if isinstance(exc, DeliveryError) else f"job store: {_first_line(exc)}"
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
                job_id = f"article:{channel}:{target}:{slug}"
                if article is None or article.draft:
                    self._unqueue(job_id, "draft" if article else "deleted or unreadable")
                    continue
                draft = (channel, target, article_key(channel, article))
                when = self._when(job_id, draft, article.publish_date, now, state_of(draft))
                if when is not None:
                    self._queue(job_id, when, run_article_job, (channel, target, slug), draft)

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
        by_slug = {a.slug: a for a in found}
        return {slug: by_slug[slug] if article is not None else None for slug, article in changed.items()}

    def _when(
        self, job_id: str, draft: DraftId, due: datetime, now: datetime, state: DraftState | None
    ) -> datetime | None:
        """When to run a per-article send, or None when it is settled or missed for good."""
        if state in ("finished", "skipped"):
            self._unqueue(job_id, f"already {state}")
            return None
        if state == "started":  # a run was interrupted (stopped, target down): finish it
            return now
        if due > now:
            return due
        queued = self._queued.get(job_id)
        if queued is not None and queued <= now:  # already waiting for its turn
            return queued
        if may_catch_up(self.config, now - due):
            return now
        self._skip(job_id, draft, due, now)
        return None

    def _drop_stale_jobs(self) -> None:
        """Jobs of articles deleted, or channels and targets renamed, while the daemon was down."""
        slugs = self.articles.by_slug()
        wanted = {f"article:{c}:{t}:{slug}" for c, t in self._article_routes for slug in slugs}
        wanted |= {f"{kind}:{c}:{t}" for c, t in self._digest_routes for kind in ("digest", "digest-now")}
        for job_id in sorted(set(self._queued) - wanted):
            # A pending retry is dropped quietly: its draft is `started`, and resumed below.
            # So is a resume job: `_resume` queues it again while its draft is still `started`.
            quiet = job_id.startswith(("retry:", "resume:"))
            self._unqueue(job_id, None if quiet else "no longer in the content or config")

    def _start_digest(self, channel: str, target: str, now: datetime) -> None:
        """The digest's cron job, and the latest window's digest if it was missed."""
        assert self.scheduler is not None and self.ledger is not None
        schedule = self.config.channels[channel].schedule
        tz = self.config.site.tz
        job_id = f"digest:{channel}:{target}"
        job = self.scheduler.add_job(
            run_digest_job,
            digest_trigger(schedule, tz),
            args=(channel, target),
            id=job_id,
            name=job_id,
            replace_existing=True,
        )
        self._queued[job_id] = job.next_run_time
        self._event("scheduled", channel=channel, target=target, at=job.next_run_time, draft=job_id)
        end = latest_digest_end(schedule, tz, now)
        draft = (channel, target, digest_key(channel, end, tz))
        state = self.ledger.draft_state(draft)
        if state in ("started", "finished", "skipped"):  # a started one: `_resume` finishes it
            return
        if draft[2] in self.ledger.sent_draft_keys(channel, target):
            return
        late = now - end
        if late <= ON_TIME:
            since = None
        elif may_catch_up(self.config, late):  # a window policy sends what is at most that late
            since = catch_up_since(self.config, now, late)
        else:
            self._skip(None, draft, end, now)
            return
        self._queue(f"digest-now:{channel}:{target}", now, run_digest_job, (channel, target, since), draft)

    def _resume(self, now: datetime) -> None:
        """Every draft a run left `started` (stopped, killed, its server down) is finished now,
        as it was first composed (`send._draft`): a per-article one by its article's job
        (`_when`), a digest by a job of its own, whatever window it was. One log line says so."""
        assert self.ledger is not None
        routes = set(self._article_routes) | set(self._digest_routes)
        started = [row.draft for row in self.ledger.drafts("started") if row.draft[:2] in routes]
        for draft in started:
            if draft[:2] in self._digest_routes:
                job_id = f"resume:{draft[0]}:{draft[1]}:{draft[2]}"
                self._queue(job_id, now, run_resume_job, draft, draft)
        if started:
            shown = ", ".join(f"{key} -> {target}" for _channel, target, key in started)
            self._event("resumed", drafts=len(started), reason=shown)

    def _skip(self, job_id: str | None, draft: DraftId, due: datetime, now: datetime) -> None:
        assert self.ledger is not None
        reason = missed_reason(self.config, now - due)
        self.ledger.set_draft_state(draft, "skipped", reason)
        if job_id is not None:
            self._unqueue(job_id, None)
        self._event("skipped", channel=draft[0], target=draft[1], draft=draft[2], due=due, reason=reason)

    def _queue(self, job_id: str, when: datetime, func: Callable, args: tuple, draft: DraftId) -> None:
        if self._queued.get(job_id) == when:
            return
        assert self.scheduler is not None
        self.scheduler.add_job(
            func, DateTrigger(run_date=when), args=args, id=job_id, name=job_id, replace_existing=True
        )
        self._queued[job_id] = when
        self._event("scheduled", channel=draft[0], target=draft[1], draft=draft[2], at=when)

    def _unqueue(self, job_id: str, reason: str | None) -> None:
        if self._queued.pop(job_id, None) is None:
            return
        assert self.scheduler is not None
        try:
            self.scheduler.remove_job(job_id)
        except JobLookupError:
            return  # it fired meanwhile
        if reason:
            self._event("unscheduled", draft=job_id, reason=reason)

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
        job_id = f"article:{channel}:{target}:{slug}"
        with self._lock:
            fired = self._queued.pop(job_id, None)
            self._queued.pop(f"retry:{job_id}", None)
            self.rescan()  # an edit made just before the time goes out as edited
            now = _now()
            if job_id in self._queued and self._queued[job_id] > now:  # the edit moved it later
                return
            self._unqueue(job_id, None)
            article = self.articles.by_slug().get(slug)
            if article is None or article.draft or article.publish_date > now + timedelta(seconds=1):
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
            now = _now()
            assert self.ledger is not None
            schedule, tz = self.config.channels[channel].schedule, self.config.site.tz
            end = latest_digest_end(schedule, tz, now)
            settled = self.ledger.settled_draft_keys(channel, target)
            articles = self.articles.loaded.articles
            if since is not None:
                articles = [a for a in articles if a.publish_date >= since]
            articles = first_digest_articles(self.config, channel, articles, settled, end)
            sends = plan_due(
                self.config,
                articles,
                now,
                channels=[channel],
                targets=[target],
                sent_keys=lambda _c, _t: settled,
            )
            job_id = f"digest-now:{channel}:{target}"
            self._queued.pop(job_id, None)
            self._queued.pop(f"retry:{job_id}", None)
            if not sends:
                key = digest_key(channel, end, tz)
                self.ledger.set_draft_state((channel, target, key), "finished", "no new articles")
                self._event("skipped", channel=channel, target=target, draft=key, reason="no new articles")
                return
            self._deliver(sends, job_id, run_digest_job, (channel, target, since), None)

    def run_resume(self, channel: str, target: str, draft_key: str) -> None:
        """Finish a digest a run left `started`: its stored draft to the readers it has not
        reached (a draft from before drafts were stored: its window's articles as they are)."""
        job_id = f"resume:{channel}:{target}:{draft_key}"
        with self._lock:
            self._queued.pop(job_id, None)
            self._queued.pop(f"retry:{job_id}", None)
            self.rescan()
            assert self.ledger is not None
            draft = (channel, target, draft_key)
            if self.ledger.draft_state(draft) != "started":  # e.g. a `send` finished it meanwhile
                return
            settings, tz = self.config.channels[channel], self.config.site.tz
            end = digest_end_of_key(draft_key, settings.schedule, tz)
            if end is None:
                self._event("failed", draft=draft_key, reason="not a digest key: cannot resume it")
                return
            window = digest_window(settings.schedule, tz, end)
            stored = self.ledger.draft_body(channel, draft_key)
            articles = articles_in_window(self.articles.loaded.articles, window, settings.max_articles)
            if stored is not None:  # it goes out as stored; these are what a warning compares it to
                by_slug = self.articles.by_slug()
                slugs = [slug for slug, _ in Kept.loads(stored).sources]
                kept = [by_slug[slug] for slug in slugs if slug in by_slug]
                articles = kept + [a for a in articles if a.slug not in slugs]
            elif not articles:
                self.ledger.set_draft_state(draft, "finished", "no articles left to resume with")
                return
            sends = [Send(channel, target, draft_key, end, tuple(articles), window)]
            self._deliver(sends, job_id, run_resume_job, draft, None)

    def _deliver(
        self, sends: list[Send], job_id: str, func: Callable, args: tuple, fired: datetime | None
    ) -> None:
        try:
            outcome = send_planned(
                self.config,
                sends,
                stop=self.stopping,
                on_wait=lambda seconds, why: self._event("waiting", seconds=round(seconds), reason=why),
            )
        except SyndicateError as exc:
            self._event("failed", draft=job_id, reason=str(exc))
            outcome = None
        if outcome is not None:
            self._log_outcome(outcome, fired)
        if outcome is not None and outcome.ok:
            self._retries.pop(job_id, None)
            return
        pending = outcome is None or any(r.pending or r.paused for _, r in outcome.reports)
        if pending and not self.stopping.is_set():
            tries = self._retries.get(job_id, 0) + 1
            self._retries[job_id] = tries
            when = _now() + min(RETRY_FIRST * 2 ** (tries - 1), RETRY_MAX)
            planned = sends[0]
            # Its own id: APScheduler drops the fired job's id just after starting it.
            retry = f"retry:{job_id}"
            self._queue(retry, when, func, args, (planned.channel, planned.target, planned.draft_key))

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

    # -- plumbing -----------------------------------------------------------------------------

    def _event(self, event: str, **fields: Any) -> None:
        emit(self.log, self.config, event, **fields)

    def _job_store(self) -> SQLAlchemyJobStore:
        url = self.config.schedule.jobstore_url or sqlite_url(self.config.state_dir / JOBS_FILE)
        try:
            return SQLAlchemyJobStore(engine=make_engine(url))
        except (ImportError, SQLAlchemyError, ValueError) as exc:  # no driver, or not a database URL
            raise StateError(
                f"schedule.jobstore_url: cannot open the job store ({_first_line(exc)}; "
                "expected a SQLAlchemy URL whose driver is installed)"
            ) from None


class Runner:
    """The daemon as `syndicate daemon` runs it: `stop()` (SIGTERM, SIGINT) ends it; `reload()`
    (SIGHUP) stops the daemon the same careful way, reads the config again and starts anew. A
    config that no longer loads is logged and the one loaded before is kept, so a typo made
    while the daemon runs never stops it."""

    def __init__(self, load: Callable[[], Config], log: Log, *, new_ledger: bool = False) -> None:
        self.load = load
        self.log = log
        self.new_ledger = new_ledger
        self.config = load()
        self._stopping = False
        self._reloading = threading.Event()
        self._current: Daemon | None = None

    def run(self) -> None:
        previous: Config | None = None  # the config to go back to if a reloaded one cannot start
        while True:
            self._current = Daemon(self.config, self.log, new_ledger=self.new_ledger)
            if self._stopping:  # a SIGTERM during a reload: `stop()` may have reached the old one
                break
            try:
                self._current.run()
            except SyndicateError as exc:
                if previous is None:
                    raise
                self._failed(exc, "back to the config loaded before")
                self.config, previous = previous, None
                continue
            if self._stopping or not self._reloading.is_set():
                break
            self._reloading.clear()
            try:
                self.config, previous = self.load(), self.config
                emit(self.log, self.config, "reloaded")
            except SyndicateError as exc:
                self._failed(exc, "the config loaded before stays in use")
        emit(self.log, self.config, "stopped")

    def _failed(self, exc: SyndicateError, then: str) -> None:
        emit(self.log, self.config, "failed", reason=f"{exc}; {then}".replace("\n", "; "))

    def stop(self) -> None:
        self._stopping = True
        if self._current is not None:
            self._current.stop()

    def reload(self) -> None:
        self._reloading.set()
        if self._current is not None:
            self._current.stop()


def emit(log: Log, config: Config, event: str, **fields: Any) -> None:
    """One log event; times in the site's timezone with their offset, to the second."""
    tz = config.site.tz

    def shown(moment: datetime) -> str:
        return moment.astimezone(tz).isoformat(timespec="seconds")

    values = {k: shown(v) if isinstance(v, datetime) else v for k, v in fields.items() if v is not None}
    log({"time": shown(_now()), "event": event, **values})


def format_event(event: Event, style: str) -> str:
    """One log line: `text` for people, `json` for log collectors."""
    if style == "json":
        import json

        return json.dumps(event, ensure_ascii=False)
    head = f"{event['time']}  {event['event']:<11}"
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("time", "event", "reason"))
    reason = f"  ({event['reason']})" if "reason" in event else ""
    return f"{head} {rest}{reason}".rstrip()


def _by_date(item: tuple[str, Article | None]) -> tuple[datetime, str]:
    """Log lines in publish order, gone articles first."""
    slug, article = item
    return (article.publish_date if article else datetime.min.replace(tzinfo=UTC), slug)


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _now() -> datetime:
    return clock.now()
