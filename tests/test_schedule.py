"""Digest windows: (start, end] in the site's timezone, weekly or daily, across DST changes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from syndicate.config import DigestSchedule
from syndicate.content import Article
from syndicate.schedule import articles_in_window, digest_end_covering, digest_window, latest_digest_end

LONDON = ZoneInfo("Europe/London")
WEEKLY = DigestSchedule(every="week", weekday="mon", at="08:00")
DAILY = DigestSchedule(every="day", at="18:30")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def article(slug: str, published: datetime, draft: bool = False) -> Article:
    return Article(
        path=Path(f"{slug}.md"),
        slug=slug,
        title=slug,
        url=f"https://example.com/{slug}",
        publish_date=published,
        body_html="",
        excerpt="",
        read_minutes=1,
        content_hash=slug,
        draft=draft,
    )


def test_weekly_digest_ends_on_the_latest_monday_at_eight_local():
    end = latest_digest_end(WEEKLY, LONDON, local(2024, 3, 6, 12, 0))  # a Wednesday
    assert end == local(2024, 3, 4, 8, 0)
    assert end.tzinfo == UTC


def test_a_moment_exactly_at_the_send_time_is_that_send():
    assert latest_digest_end(WEEKLY, LONDON, local(2024, 3, 4, 8, 0)) == local(2024, 3, 4, 8, 0)
    assert latest_digest_end(WEEKLY, LONDON, local(2024, 3, 4, 7, 59)) == local(2024, 2, 26, 8, 0)


def test_weekly_window_is_the_week_before_the_send():
    start, end = digest_window(WEEKLY, LONDON, local(2024, 3, 11, 8, 0))
    assert (start, end) == (local(2024, 3, 4, 8, 0), local(2024, 3, 11, 8, 0))


def test_daily_window_is_one_day_at_the_local_time():
    end = latest_digest_end(DAILY, LONDON, local(2024, 6, 1, 9, 0))
    assert end == local(2024, 5, 31, 18, 30)
    assert digest_window(DAILY, LONDON, end) == (local(2024, 5, 30, 18, 30), end)


def test_window_across_the_spring_clock_change_keeps_local_time():
    # Clocks go forward on Sunday 31 March 2024: that week is one hour short.
    start, end = digest_window(WEEKLY, LONDON, local(2024, 4, 1, 8, 0))
    assert start == local(2024, 3, 25, 8, 0)
    assert end - start == timedelta(days=7, hours=-1)
    assert end.astimezone(LONDON).hour == 8


def test_window_covering_finds_the_send_after_a_moment():
    assert digest_end_covering(WEEKLY, LONDON, local(2024, 3, 6, 9, 0)) == local(2024, 3, 11, 8, 0)
    assert digest_end_covering(WEEKLY, LONDON, local(2024, 3, 11, 8, 0)) == local(2024, 3, 11, 8, 0)
    assert digest_end_covering(WEEKLY, LONDON, local(2024, 3, 11, 8, 1)) == local(2024, 3, 18, 8, 0)


def test_articles_in_window_are_published_ones_newest_first_at_most_max():
    window = (local(2024, 3, 4, 8, 0), local(2024, 3, 11, 8, 0))
    articles = [
        article("at-start", local(2024, 3, 4, 8, 0)),  # excluded: the window is open at its start
        article("tuesday", local(2024, 3, 5, 9, 0)),
        article("draft", local(2024, 3, 6, 9, 0), draft=True),
        article("thursday", local(2024, 3, 7, 9, 0)),
        article("at-end", local(2024, 3, 11, 8, 0)),  # included: closed at its end
        article("after", local(2024, 3, 11, 8, 1)),
    ]
    chosen = articles_in_window(articles, window, max_articles=10)
    assert [a.slug for a in chosen] == ["at-end", "thursday", "tuesday"]
    assert [a.slug for a in articles_in_window(articles, window, max_articles=2)] == ["at-end", "thursday"]


def test_articles_in_window_compare_instants_not_wall_clocks():
    window = (local(2024, 3, 4, 8, 0), local(2024, 3, 11, 8, 0))
    tokyo = article("tokyo", datetime(2024, 3, 11, 16, 30, tzinfo=ZoneInfo("Asia/Tokyo")))  # 07:30 London
    late = dataclasses.replace(tokyo, slug="late", publish_date=datetime(2024, 3, 11, 8, 30, tzinfo=UTC))
    assert [a.slug for a in articles_in_window([tokyo, late], window, 5)] == ["tokyo"]
