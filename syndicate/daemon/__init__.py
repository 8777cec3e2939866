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
`started`, as it was first composed (`send.draft_for`).

One module per concern:
- `ids`: job ids as a type (`JobId`), the strings job stores hold;
- `catchup`: the pure catch-up decisions (send, wait, skip, leave), tested without a scheduler;
- `store`: the job store and its mirror (`JobBook`): adding, moving, removing jobs; cron triggers;
- `jobs`: the job functions the store refers to (`syndicate.daemon:run_*_job`), a persisted format;
- `service`: `Daemon`, following the content and running the jobs;
- `runner`: `Runner`, the daemon as the CLI runs it, stopped and reloaded by its signals;
- `events`: the log events and how a line shows one.

Everything imported from `syndicate.daemon` before it was a package still is, from here.
"""

from __future__ import annotations

from ..lock import LOCK_FILE, lock_state_folder, running_daemon
from .catchup import Decision, Leave, Run, Skip, article_decision, digest_decision
from .events import Event, Log, emit, format_event
from .ids import JobId
from .jobs import run_article_job, run_digest_job, run_resume_job
from .runner import Runner
from .service import RETRY_FIRST, RETRY_MAX, Daemon
from .store import JOBS_FILE, JobBook, digest_trigger

__all__ = [
    "JOBS_FILE",
    "LOCK_FILE",
    "RETRY_FIRST",
    "RETRY_MAX",
    "Daemon",
    "Decision",
    "Event",
    "JobBook",
    "JobId",
    "Leave",
    "Log",
    "Run",
    "Runner",
    "Skip",
    "article_decision",
    "digest_decision",
    "digest_trigger",
    "emit",
    "format_event",
    "lock_state_folder",
    "run_article_job",
    "run_digest_job",
    "run_resume_job",
    "running_daemon",
]
