"""When things go out. For now: digest windows.

A digest channel sends daily, or weekly on a weekday, at a wall-clock time in the site's timezone.
The digest sent at `end` covers the window (start, end], where `start` is the send before it; the
arithmetic is done on local dates so a window spanning a DST change is 23 or 25 hours long, and
8:00 stays 8:00 all year.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo

from .config import _WEEKDAYS, DigestSchedule
from .content import Article


def digest_end_of_key(key: str, schedule: DigestSchedule, tz: tzinfo) -> datetime | None:
    """The send time a digest key names (its local date at the schedule's time), or None for a
    key that names no date."""
    try:
        day = date.fromisoformat(key.rpartition(":")[2])
    except ValueError:
        return None
    return _send_on(day, schedule, tz)


def _period_days(schedule: DigestSchedule) -> int:
    return 1 if schedule.every == "day" else 7


def _send_on(day: date, schedule: DigestSchedule, tz: tzinfo) -> datetime:
    return datetime.combine(day, schedule.at, tzinfo=tz).astimezone(UTC)


def latest_digest_end(schedule: DigestSchedule, tz: tzinfo, moment: datetime) -> datetime:
    """The latest scheduled send at or before `moment` (UTC)."""
    local_day = moment.astimezone(tz).date()
    if schedule.every == "week":
        local_day -= timedelta(days=(local_day.weekday() - _WEEKDAYS.index(schedule.weekday)) % 7)
    end = _send_on(local_day, schedule, tz)
    if end > moment:
        end = _send_on(local_day - timedelta(days=_period_days(schedule)), schedule, tz)
    return end


def digest_end_covering(schedule: DigestSchedule, tz: tzinfo, moment: datetime) -> datetime:
    """The send whose window holds `moment`: the first scheduled send at or after it (UTC)."""
    end = latest_digest_end(schedule, tz, moment)
    if end == moment:
        return end
    next_day = end.astimezone(tz).date() + timedelta(days=_period_days(schedule))
    return _send_on(next_day, schedule, tz)


def digest_window(schedule: DigestSchedule, tz: tzinfo, end: datetime) -> tuple[datetime, datetime]:
    """The window (start, end] that the digest sent at `end` covers: since the send before it."""
    end = end.astimezone(UTC)
    start = latest_digest_end(schedule, tz, end - timedelta(microseconds=1))
    return start, end


def articles_in_window(
    articles: Iterable[Article], window: tuple[datetime, datetime], max_articles: int
) -> list[Article]:
    """Published articles with start < publish_date <= end (and not expired by then), newest first,
    at most `max_articles`."""
    start, end = window
    chosen = [a for a in articles if a.live(end) and start < a.publish_date <= end]
    chosen.sort(key=lambda a: (a.publish_date, a.slug), reverse=True)
    return chosen[:max_articles]
