"""The one clock: every "now" in syndicate comes from `now()`.

`SYNDICATE_NOW` (an ISO 8601 instant with its offset, e.g. `2026-12-07T08:05:00+00:00`) sets the
instant this process starts at; from there the clock runs on in real time, so a daemon started
"on Monday at 08:05" still fires its timers as the seconds pass. Without it, `now()` is the wall
clock. Tests set it so the whole suite runs as if at any instant (a DST night, a Monday just
after a digest's time), and pass `child_env()` to the processes they start, so a child starts at
the instant its parent has reached, not at the parent's start.

APScheduler reads the time on its own: `patch_scheduler()` points it at this clock.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, tzinfo

from .errors import ConfigError

__all__ = ["NOW_ENV", "SeamDatetime", "child_env", "now", "offset_seconds", "patch_scheduler"]

NOW_ENV = "SYNDICATE_NOW"

# The monotonic reading and wall-clock instant this process's clock counts from. Read at import,
# which is as close to the process's start as the clock can be.
_anchor_monotonic = time.monotonic()
_anchor: datetime | None = None
_anchor_read = False


def _parse(value: str) -> datetime:
    expected = "expected an ISO 8601 instant with its offset, e.g. 2026-12-07T08:05:00+00:00"
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{NOW_ENV}: {value!r} is not an instant ({expected})") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(f"{NOW_ENV}: {value!r} has no UTC offset ({expected})")
    return moment.astimezone(UTC)


def _start() -> datetime | None:
    """The instant SYNDICATE_NOW names, or None for the wall clock. Read once per process."""
    global _anchor, _anchor_read
    if not _anchor_read:
        value = os.environ.get(NOW_ENV, "").strip()
        _anchor = _parse(value) if value else None
        _anchor_read = True
    return _anchor


def now() -> datetime:
    """The current instant, aware, in UTC."""
    start = _start()
    if start is None:
        return datetime.now(UTC)
    return start + timedelta(seconds=time.monotonic() - _anchor_monotonic)


def offset_seconds() -> float:
    """How far this clock is ahead of the wall clock (negative: behind); 0 without the seam."""
    return (now() - datetime.now(UTC)).total_seconds()


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process whose clock starts where this one is now: the child
    sees the same instant its parent does, whether or not the seam is set."""
    env = dict(os.environ if env is None else env)
    if _start() is not None:
        env[NOW_ENV] = now().isoformat()
    return env


def reset() -> None:
    """Read SYNDICATE_NOW again and restart the clock from it (for tests that set it in-process)."""
    global _anchor_monotonic, _anchor_read
    _anchor_monotonic = time.monotonic()
    _anchor_read = False


class SeamDatetime(datetime):
    """`datetime` whose `now()` is this module's clock: what APScheduler's scheduler sees."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        moment = now()
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


def patch_scheduler() -> None:
    """APScheduler 3 asks `datetime.now()` when it adds jobs and when it decides what is due;
    its scheduler module is the only place it does so for us. Point that at this clock, so
    the daemon's jobs fire at the instants the seam says (a no-op without SYNDICATE_NOW)."""
    from apscheduler.schedulers import base

    base.datetime = SeamDatetime
