"""The job store and the daemon's mirror of it: adding, moving and removing jobs.

APScheduler keeps the jobs (`jobs.sqlite` in the state folder, or `schedule.jobstore_url`), each a
reference to one of the persisted job functions (`syndicate.daemon:run_*_job`) plus its arguments
and its id (`ids.JobId`). `JobBook` is the one way the daemon changes them: it keeps a mirror of
each job's next run time, so that a job already queued at the same time is not written again
(nor logged again), and it logs `scheduled` and `unscheduled` as it goes.

Date jobs are written in batches (`JobBook.batch()`): a rescan that moves every job (a timezone
change moves all 10,000 of a large site) is one transaction and one wake of the scheduler, where
APScheduler's `add_job(replace_existing=True)` costs a failed INSERT, an UPDATE and a wake-up,
each job in its own transaction. The rows are the ones APScheduler's own `SQLAlchemyJobStore`
writes (the same table, the same pickled `Job.__getstate__()`), so the scheduler, and a daemon
started afterwards, read them as its own.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import bindparam, select
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

# Every job's misfire and overlap settings: the scheduler's defaults, and what a batch writes.
JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}

# Jobs per statement when a batch is written: its `IN (...)` of ids stays under SQLite's and
# PostgreSQL's limits on bound parameters.
_ROWS_PER_STATEMENT = 1000


@dataclass
class _Queued:
    """A date job queued in a batch, not yet written: its row (pickled at once, so a batch of
    10,000 holds bytes, not `Job` objects), what the mirror said before (restored if the write
    fails) and what its `scheduled` line says once written."""

    row: dict[str, Any]
    before: datetime | None
    when: datetime
    draft: DraftId


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
        self._batch: dict[str, _Queued] | None = None  # job id -> its write, inside `batch()`

    def open(self) -> None:
        """Open the store and start the scheduler paused (no job fires until `resume()`), with
        the mirror read from what the store holds."""
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own log says what happened
        clock.patch_scheduler()  # its timers follow SYNDICATE_NOW like everything else
        self._store = self._job_store()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": self._store},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults=JOB_DEFAULTS,
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
        """A date job at `when` (added, or moved there); nothing is written when it already is.
        Inside `batch()` it is written (and logged) when the batch ends; outside, now."""
        name = str(job_id)
        if self.queued.get(name) == when:
            return
        assert self.scheduler is not None
        trigger = DateTrigger(run_date=when)
        job = Job(
            self.scheduler,
            id=name,
            name=name,
            func=func,
            trigger=trigger,
            executor="default",
            args=tuple(args),
            kwargs={},
            next_run_time=trigger.get_next_fire_time(None, clock.now()),  # as `add_job` computes it
            **JOB_DEFAULTS,
        )
        assert self._store is not None
        row = {  # the columns `SQLAlchemyJobStore.add_job` and `update_job` write, the same way
            "job_id": name,
            "next": datetime_to_utc_timestamp(job.next_run_time),
            "state": pickle.dumps(job.__getstate__(), self._store.pickle_protocol),
        }
        with self.batch():
            assert self._batch is not None
            earlier = self._batch.get(name)
            before = earlier.before if earlier is not None else self.queued.get(name)
            self._batch[name] = _Queued(row, before, when, draft)
            self.queued[name] = when

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Date jobs queued inside are written when it ends, together: one transaction and one
        wake of the scheduler. The mirror (`queued`) follows each `queue()` at once, so the
        decisions inside see the jobs as queued; if the block or the write fails, nothing of the
        batch is written and the mirror is put back, so the next rescan queues them again. A
        batch inside a batch is part of the outer one."""
        if self._batch is not None:
            yield
            return
        self._batch = {}
        try:
            yield
        except BaseException:
            self._forget(self._batch)
            raise
        else:
            self._flush()
        finally:
            self._batch = None

    def _flush(self) -> None:
        """Write the batch's jobs so far, then log them in the order they were queued."""
        assert self._batch is not None
        pending, self._batch = self._batch, {}
        if not pending:
            return
        try:
            self._write([entry.row for entry in pending.values()])
        except BaseException:
            self._forget(pending)
            raise
        for entry in pending.values():
            channel, target, key = entry.draft
            self.say("scheduled", channel=channel, target=target, draft=key, at=entry.when)

    def _forget(self, pending: dict[str, _Queued]) -> None:
        """The mirror as it was before these unwritten jobs were queued."""
        for name, entry in pending.items():
            if entry.before is None:
                self.queued.pop(name, None)
            else:
                self.queued[name] = entry.before

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Insert or update the jobs' rows in one transaction (a row per job, as `queue()` made
        it), then wake the scheduler once. The scheduler's own job-store lock
        is held throughout, as `add_job` holds it: a job it is taking off as due cannot be moved
        under it (and lost when it then deletes the date job it ran)."""
        assert self.scheduler is not None and self._store is not None
        table = self._store.jobs_t
        update = (
            table.update()
            .where(table.c.id == bindparam("job_id"))
            .values(next_run_time=bindparam("next"), job_state=bindparam("state"))
        )
        insert = table.insert().values(
            id=bindparam("job_id"), next_run_time=bindparam("next"), job_state=bindparam("state")
        )
        with self.scheduler._jobstores_lock, self._store.engine.begin() as connection:
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):  # the driver's copies stay small
                chunk = rows[start : start + _ROWS_PER_STATEMENT]
                ids = [row["job_id"] for row in chunk]
                stored = set(connection.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars())
                moved = [row for row in chunk if row["job_id"] in stored]
                added = [row for row in chunk if row["job_id"] not in stored]
                if moved:
                    connection.execute(update, moved)
                if added:
                    connection.execute(insert, added)
        if self.scheduler.state == STATE_RUNNING:
            self.scheduler.wakeup()

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
        if self._batch and name in self._batch:
            self._flush()  # written first, so that it is removed in the order it was asked for
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
