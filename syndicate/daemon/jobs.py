"""The job functions the job store refers to, and the daemon they run on.

APScheduler's persistent store keeps a job as a reference to a module-level function plus its
arguments: `syndicate.daemon:run_article_job`, `syndicate.daemon:run_digest_job`,
`syndicate.daemon:run_resume_job` (the retries of each are the same functions). Those
references are in every job store written since the daemon existed, so they are a persisted
format: the functions live here but answer to the package's name (`__module__`), which the
package re-exports them under, so stores written before and after the split load alike (see
tests/test_daemon_compat.py and the CHANGELOG). The functions' arguments are persisted too.

The jobs find their daemon through `attach`: one daemon runs per process.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Daemon

__all__ = ["attach", "detach", "run_article_job", "run_digest_job", "run_resume_job"]

_PERSISTED_MODULE = "syndicate.daemon"  # what the stored references name: never change it

# The daemon whose jobs fire in this process.
_running: Daemon | None = None


def run_article_job(channel: str, target: str, slug: str) -> None:
    _current().run_article(channel, target, slug)


def run_digest_job(channel: str, target: str, since: datetime | None = None) -> None:
    _current().run_digest(channel, target, since)


def run_resume_job(channel: str, target: str, draft_key: str) -> None:
    _current().run_resume(channel, target, draft_key)


for _job in (run_article_job, run_digest_job, run_resume_job):
    _job.__module__ = _PERSISTED_MODULE


def attach(daemon: Daemon) -> None:
    """The jobs that fire from now on run on `daemon`."""
    global _running
    _running = daemon


def detach(daemon: Daemon) -> None:
    """`daemon` closed: a job firing now (there should be none) fails loudly rather than run on it."""
    global _running
    if _running is daemon:
        _running = None


def _current() -> Daemon:
    if _running is None:
        raise RuntimeError("a syndicate job fired with no daemon running in this process")
    return _running
