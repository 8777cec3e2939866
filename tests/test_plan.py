"""The planner: what is due when, digests that coalesce, and the queue across a DST change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syndicate.content import load_articles
from syndicate.plan import BEGINNING, plan_articles, plan_due, upcoming

ARTICLE = "---\ntitle: {title}\npublish_date: '{date}'\ncta: Go\ndescription: D\n{extra}---\nbody\n"


def _site(site, articles: dict[str, tuple[str, str]]):
    for slug, (date, extra) in articles.items():
        site.article(f"{slug}.md", ARTICLE.format(title=slug.title(), date=date, extra=extra))
    return site.config(), load_articles(site.config()).articles


def test_per_article_sends_are_due_at_publish_date(site):
    config, articles = _site(
        site,
        {
            "old": ("2024-03-04T09:00:00+00:00", ""),
            "draft": ("2024-03-05", "draft: true\n"),
            "future": ("2030-01-01", ""),
        },
    )
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    social = [s for s in plan_due(config, articles, now) if s.channel == "linkedin"]
    assert [(s.draft_key, s.target, s.due) for s in social] == [
        ("linkedin:old", "social-outbox", datetime(2024, 3, 4, 9, tzinfo=UTC))
    ]


def test_first_digest_coalesces_everything_published(site):
    config, articles = _site(
        site, {"a": ("2024-03-04", ""), "b": ("2026-11-20", ""), "c": ("2030-01-01", "")}
    )
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)  # a Monday, after 08:00 London
    [digest] = [s for s in plan_due(config, articles, now) if s.channel == "weekly"]
    assert digest.draft_key == "weekly:2026-11-23"
    assert digest.due == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert digest.window[0] == BEGINNING
    assert [a.slug for a in digest.articles] == ["b", "a"]  # newest first, future left out


def test_digest_window_reaches_back_to_the_last_one_sent(site):
    config, articles = _site(
        site, {"a": ("2026-11-01", ""), "b": ("2026-11-12", ""), "c": ("2026-11-20", "")}
    )
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    sent = {"weekly:2026-11-09"}
    [digest] = [
        s for s in plan_due(config, articles, now, sent_keys=lambda c, t: sent) if s.channel == "weekly"
    ]
    assert digest.window == (datetime(2026, 11, 9, 8, tzinfo=UTC), datetime(2026, 11, 23, 8, tzinfo=UTC))
    assert [a.slug for a in digest.articles] == ["c", "b"]

    # Sent (perhaps only in part): planned again, same window; the ledger skips who has it.
    sent.add("weekly:2026-11-23")
    [again] = [
        s for s in plan_due(config, articles, now, sent_keys=lambda c, t: sent) if s.channel == "weekly"
    ]
    assert again == digest


def test_digest_not_due_before_its_hour(site):
    config, articles = _site(site, {"a": ("2026-11-10", ""), "b": ("2026-11-20", "")})
    early = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)
    [digest] = [s for s in plan_due(config, articles, early) if s.channel == "weekly"]
    assert digest.draft_key == "weekly:2026-11-16"
    assert [a.slug for a in digest.articles] == ["a"]  # b waits for the 23rd's digest


def test_upcoming_weekly_digest_keeps_local_time_across_dst(site):
    site.data["channels"]["weekly"]["schedule"] = {"every": "week", "weekday": "mon", "at": "08:00"}
    config, articles = _site(
        site,
        {f"w{i}": ((datetime(2027, 3, 10) + timedelta(days=7 * i)).date().isoformat(), "") for i in range(4)},
    )
    now = datetime(2027, 3, 10, tzinfo=UTC)
    digests = [s for s in upcoming(config, articles, now, now + timedelta(days=35)) if s.channel == "weekly"]
    dues = [s.due for s in digests]
    # Clocks go forward on 2027-03-28: 08:00 London is 08:00 UTC before, 07:00 UTC after.
    assert datetime(2027, 3, 22, 8, tzinfo=UTC) in dues
    assert datetime(2027, 3, 29, 7, tzinfo=UTC) in dues
    assert all(s.due.astimezone(config.site.tz).hour == 8 for s in digests)


def test_upcoming_lists_future_articles_in_time_order(site):
    config, articles = _site(site, {"soon": ("2030-01-02T10:00:00+01:00", ""), "sooner": ("2030-01-01", "")})
    now = datetime(2029, 12, 31, tzinfo=UTC)
    social = [
        s.draft_key
        for s in upcoming(config, articles, now, now + timedelta(days=5))
        if s.channel == "linkedin"
    ]
    assert social == ["linkedin:sooner", "linkedin:soon"]


def test_plan_articles_sends_named_articles_now(site):
    config, articles = _site(site, {"a": ("2024-01-01", ""), "b": ("2030-01-01", "")})
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    sends = plan_articles(config, articles, now, channels=["weekly", "linkedin"])
    assert {s.draft_key for s in sends} == {"weekly:2026-11-23", "linkedin:a", "linkedin:b"}
    assert all(s.due == now for s in sends if s.channel == "linkedin")
    # The digest is the latest window's draft: due (and named) at that window's end.
    assert [s.due for s in sends if s.channel == "weekly"] == [datetime(2026, 11, 23, 8, tzinfo=UTC)]
    assert plan_articles(config, articles, now, targets=["social-outbox"]) == [
        s for s in sends if s.target == "social-outbox"
    ]


@pytest.mark.parametrize("hour", [0, 7, 8, 23])
def test_send_all_names_its_digest_by_the_window_send_due_sends_now(site, hour):
    """`--all` on any day of a week, at any hour, is the draft `--due` sends for that week."""
    config, articles = _site(site, {"a": ("2026-11-10", "")})
    for day in range(23, 30):  # Monday 23 to Sunday 29 November 2026
        now = datetime(2026, 11, day, hour, 30, tzinfo=UTC)
        [digest] = plan_articles(config, articles, now, channels=["weekly"])
        [due] = plan_due(config, articles, now, channels=["weekly"])
        expected = "weekly:2026-11-16" if (day, hour) < (23, 8) else "weekly:2026-11-23"
        assert digest.draft_key == due.draft_key == expected


def test_upcoming_sends_are_future_articles_and_the_digests_still_to_go(email_site):
    config = email_site.config()
    articles = load_articles(config).articles
    now = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
    sends = upcoming(config, articles, now, now + timedelta(days=30))
    assert [(s.due, s.channel, s.target, s.draft_key) for s in sends] == [
        (datetime(2024, 3, 8, tzinfo=UTC), "letters", "mail-outbox", "letters:harbour-economics"),
        (datetime(2024, 3, 8, tzinfo=UTC), "linkedin", "social-outbox", "linkedin:harbour-economics"),
        (datetime(2024, 3, 10, 18, 30, tzinfo=UTC), "letters", "mail-outbox", "letters:fog-signals"),
        (datetime(2024, 3, 10, 18, 30, tzinfo=UTC), "linkedin", "social-outbox", "linkedin:fog-signals"),
        (datetime(2024, 3, 11, 8, tzinfo=UTC), "weekly", "mail-outbox", "weekly:2024-03-11"),
    ]
    # The digest's window began before `now`: it carries the articles already published in it too,
    # never the draft.
    assert [a.slug for a in sends[-1].articles] == [
        "fog-signals",
        "harbour-economics",
        "lamp-keepers",
        "tide-tables",
    ]
    assert (
        upcoming(config, articles, datetime(2024, 3, 11, 8, tzinfo=UTC), datetime(2024, 4, 11, tzinfo=UTC))
        == []
    )


def test_nothing_goes_out_for_an_article_past_its_expiry_or_unpublished(site):
    """Hugo's expiryDate and Jekyll's published: false: an expired article is in no digest after
    it expires and no per-article send then; one that expires later still goes out before."""
    config, articles = _site(
        site,
        {
            "gone": ("2026-11-18", "expiry_date: '2026-11-21'\n"),
            "later": ("2026-11-19", "expiryDate: '2026-12-31'\n"),
            "hidden": ("2026-11-19", "published: false\n"),
        },
    )
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    due = plan_due(config, articles, now)
    [digest] = [s for s in due if s.channel == "weekly"]
    assert [a.slug for a in digest.articles] == ["later"]
    assert sorted(s.draft_key for s in due if s.channel == "linkedin") == ["linkedin:later"]
    before = plan_due(config, articles, datetime(2026, 11, 20, 12, tzinfo=UTC))
    assert sorted(s.draft_key for s in before if s.channel == "linkedin") == [
        "linkedin:gone",
        "linkedin:later",
    ]
    assert plan_articles(config, articles, now) and all(
        "gone" not in s.draft_key and "hidden" not in s.draft_key
        for s in plan_articles(config, articles, now)
    )
    soon = upcoming(config, articles, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    assert sorted(s.draft_key for s in soon if s.channel == "linkedin") == ["linkedin:gone", "linkedin:later"]
