"""The job store and the daemon's mirror of it: adding, moving and removing jobs.

APScheduler keeps the jobs (`jobs.sqlite` in the state folder, or `schedule.jobstore_url`), each a
reference to one of the persisted job functions (`syndicate.daemon:run_*_job`) plus its arguments
and its id (`ids.JobId`). `JobBook` is the one way the daemon changes them: it keeps a mirror of
each job's next run time, so that a job already queued at the same time is not written again
(nor logged again), and it logs `scheduled` and `unscheduled` as it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.exc import SQLAlchemyError

from .. import clock
from ..config import Config, DigestSchedule
from ..errors import StateError
from ..keys import DraftId
from ..ledger import make_engine, sqlite_url
from .events import first_line
from .ids import JobId

__all__ = ["JOBS_FILE", "JobBook", "digest_trigger"]

JOBS_FILE = "jobs.sqlite"

Say = Callable[..., None]  # `say(event, **fields)`: one log event


def digest_trigger(schedule: DigestSchedule, tz: tzinfo) -> CronTrigger:
    """The cron job of a digest channel: wall-clock time in the site's timezone, so 08:00 stays
    08:00 local across daylight-saving changes."""
    return CronTrigger(
        day_of_week=schedule.weekday if schedule.every == "week" else "*",
        hour=schedule.at.hour,
        minute=schedule.at.minute,
        timezone=tz,
    )


class JobBook:
    """The scheduler over the persistent job store, and `queued`: job id -> next run time, a mirror
    of the store that the daemon reads without a query. Not thread-safe on its own: the daemon's
    lock serialises rescans and jobs around it."""

    def __init__(self, config: Config, say: Say) -> None:
        self.config = config
        self.say = say
        self.queued: dict[str, datetime] = {}
        self.scheduler: BackgroundScheduler | None = None
        self._store: SQLAlchemyJobStore | None = None

    def open(self) -> None:
        """Open the store and start the scheduler paused (no job fires until `resume()`), with
        the mirror read from what the store holds."""
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own log says what happened
        clock.patch_scheduler()  # its timers follow SYNDICATE_NOW like everything else
        self._store = self._job_store()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": self._store},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        try:
            self.scheduler.start(paused=True)
        except SQLAlchemyError as exc:
            raise StateError(
                f"schedule.jobstore_url: cannot open the job store ({first_line(exc)})"
            ) from None
        self.queued = self.jobs()

    def resume(self) -> None:
        assert self.scheduler is not None
        self.scheduler.resume()

    def close(self) -> None:
        """Wait for the job in progress, then close the store."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self._store is not None:  # the scheduler's own close can come before its thread's last query
            self._store.shutdown()

    def jobs(self) -> dict[str, datetime]:
        """Job id -> next run time, as the job store has them."""
        assert self.scheduler is not None
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    def queued_at(self, job_id: JobId) -> datetime | None:
        return self.queued.get(str(job_id))

    def queue(
        self, job_id: JobId, when: datetime, func: Callable[..., None], args: tuple[Any, ...], draft: DraftId
    ) -> None:
        """A date job at `when` (added, or moved there); nothing is written when it already is."""
        name = str(job_id)
        if self.queued.get(name) == when:
            return
        assert self.scheduler is not None
        self.scheduler.add_job(
            func, DateTrigger(run_date=when), args=args, id=name, name=name, replace_existing=True
        )
        self.queued[name] = when
        self.say("scheduled", channel=draft[0], target=draft[1], draft=draft[2], at=when)

    def repeat(
        self, job_id: JobId, trigger: CronTrigger, func: Callable[..., None], args: tuple[Any, ...]
    ) -> None:
        """A cron job (a digest channel's), written at every start: the schedule may have changed."""
        assert self.scheduler is not None
        name = str(job_id)
        job = self.scheduler.add_job(func, trigger, args=args, id=name, name=name, replace_existing=True)
        self.queued[name] = job.next_run_time
        self.say("scheduled", channel=job_id.channel, target=job_id.target, at=job.next_run_time, draft=name)

    def unqueue(self, job_id: JobId | str, reason: str | None) -> None:
        """Drop a job; `reason` is logged (None: quietly). One that fired meanwhile is gone already."""
        name = str(job_id)
        if self.queued.pop(name, None) is None:
            return
        assert self.scheduler is not None
        try:
            self.scheduler.remove_job(name)
        except JobLookupError:
            return  # it fired meanwhile
        if reason:
            self.say("unscheduled", draft=name, reason=reason)

    def fired(self, job_id: JobId) -> datetime | None:
        """A job started: out of the mirror, with its retry (APScheduler dropped the one that
        fired, and the job about to run does the retry's work). When it was due, if queued."""
        self.queued.pop(str(job_id.retried()), None)
        return self.queued.pop(str(job_id), None)

    def keep_only(self, wanted: Iterable[JobId]) -> None:
        """Drop the jobs not `wanted`: of articles deleted, channels and targets renamed while the
        daemon was down. A retry or a resume is dropped quietly: its draft is `started`, and the
        daemon's start queues its resume again."""
        keep = {str(job_id) for job_id in wanted}
        for name in sorted(set(self.queued) - keep):
            parsed = JobId.parse(name)
            quiet = parsed is not None and (parsed.retry or parsed.kind == "resume")
            self.unqueue(name, None if quiet else "no longer in the content or config")

    def _job_store(self) -> SQLAlchemyJobStore:
        url = self.config.schedule.jobstore_url or sqlite_url(self.config.state_dir / JOBS_FILE)
        try:
            return SQLAlchemyJobStore(engine=make_engine(url))
        except (ImportError, SQLAlchemyError, ValueError) as exc:  # no driver, or not a database URL
            raise StateError(
                f"schedule.jobstore_url: cannot open the job store ({first_line(exc)}; "
                "expected a SQLAlchemy URL whose driver is installed)"
            ) from None
