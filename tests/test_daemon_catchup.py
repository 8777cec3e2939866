"""The daemon's catch-up rules, unit-tested: no scheduler, no thread, no clock (`now` is given).

`syndicate.daemon.catchup` decides what a send whose time has come, or passed, does: wait for its
time, go now, be skipped (with the reason the log and `status` show), or be left to the ledger.
These are the rules the thread-based tests in test_daemon.py used to check through a running
daemon; those keep only what needs real timers or a real process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicate.config import Config, config_from_dict
from syndicate.daemon import Leave, Run, Skip, article_decision, digest_decision
from syndicate.plan import digest_due, digest_settings
from syndicate.schedule import latest_digest_end

from .conftest import base_config_dict
from .test_schedule import article

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


def site(catch_up: str = "skip", timezone: str = "Europe/London", every: str = "week") -> Config:
    data = base_config_dict()
    data["site"]["timezone"] = timezone
    data["schedule"] = {"catch_up": catch_up}
    schedule = {"every": "week", "weekday": "mon", "at": "08:00"} if every == "week" else {"every": "day"}
    data["channels"]["weekly"]["schedule"] = {**schedule, "at": "08:00"}
    return config_from_dict(data, Path("/nonexistent/config.yaml"))  # nothing is read or written


# -- one article's send ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "late", "expected"),
    [
        ("send", DAY, Run(NOW)),
        ("send", 5 * DAY, Run(NOW)),
        ("2d", DAY, Run(NOW)),
        ("2d", 5 * DAY, Skip("missed by 5d 0h (schedule.catch_up: 2d)")),
        ("2d", 2 * DAY, Run(NOW)),  # a window holds its end
        ("skip", DAY, Skip("missed by 1d 0h (schedule.catch_up: skip)")),
        ("skip", 5 * DAY, Skip("missed by 5d 0h (schedule.catch_up: skip)")),
    ],
)
def test_a_missed_article_goes_out_or_is_skipped_as_the_policy_says(policy, late, expected):
    assert article_decision(site(policy), NOW - late, NOW, None, None) == expected


@pytest.mark.parametrize("policy", ["skip", "2d", "send"])
def test_a_future_article_waits_for_its_time_whatever_the_policy(policy):
    due = NOW + timedelta(days=30)
    assert article_decision(site(policy), due, NOW, None, None) == Run(due)
    assert article_decision(site(policy), due, NOW, None, due) == Run(due)  # queued: stays there


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        (timedelta(0), Run(NOW)),
        (timedelta(seconds=30), Run(NOW)),
        (timedelta(minutes=1), Run(NOW)),  # at most a minute late is on time
        (timedelta(minutes=1, seconds=1), Skip("missed by 1m 1s (schedule.catch_up: skip)")),
    ],
)
def test_an_article_late_by_at_most_a_minute_is_on_time_even_under_skip(late, expected):
    assert article_decision(site("skip"), NOW - late, NOW, None, None) == expected


@pytest.mark.parametrize("state", ["finished", "skipped"])
def test_a_settled_article_is_left_alone_and_its_job_dropped(state):
    for due in (NOW - 5 * DAY, NOW + DAY):
        assert article_decision(site("send"), due, NOW, state, due) == Leave(f"already {state}")


def test_an_article_left_started_is_finished_now_however_late():
    assert article_decision(site("skip"), NOW - 5 * DAY, NOW, "started", None) == Run(NOW)
    assert article_decision(site("skip"), NOW + DAY, NOW, "started", NOW + DAY) == Run(NOW)


def test_an_article_already_waiting_for_its_turn_keeps_its_place():
    """A rescan while a due job waits for the one before it neither moves it nor skips it."""
    queued = NOW - timedelta(minutes=5)
    assert article_decision(site("skip"), NOW - DAY, NOW, None, queued) == Run(queued)


# -- a digest at the daemon's start ------------------------------------------------------------


def weekly_end(config: Config, now: datetime) -> datetime:
    return latest_digest_end(digest_settings(config, "weekly").schedule, config.site.tz, now)


@pytest.mark.parametrize(
    ("policy", "late", "expected"),
    [
        ("skip", timedelta(seconds=30), Run(NOW)),  # on time
        ("skip", timedelta(minutes=1), Run(NOW)),
        ("skip", timedelta(minutes=2), Skip("missed by 2m 0s (schedule.catch_up: skip)")),
        ("skip", 3 * DAY, Skip("missed by 3d 0h (schedule.catch_up: skip)")),
        ("send", 3 * DAY, Run(NOW)),  # since the last digest settled: no age limit
        ("2d", DAY, Run(NOW, since=NOW - 2 * DAY)),  # only articles at most 2 days old
        ("2d", timedelta(seconds=30), Run(NOW)),  # on time: its whole window
        ("2d", 3 * DAY, Skip("missed by 3d 0h (schedule.catch_up: 2d)")),
    ],
)
def test_a_missed_digest_goes_out_now_or_is_skipped_as_the_policy_says(policy, late, expected):
    assert digest_decision(site(policy), NOW - late, NOW, None, False) == expected


@pytest.mark.parametrize("state", ["started", "finished", "skipped"])
def test_a_digest_the_ledger_knows_is_left_to_it(state):
    """Settled, or `started` (the start's resume job finishes that one, as first composed)."""
    assert digest_decision(site("send"), NOW - DAY, NOW, state, False) == Leave()


def test_a_digest_with_messages_sent_before_draft_states_is_left_alone():
    assert digest_decision(site("send"), NOW - DAY, NOW, None, True) == Leave()


@pytest.mark.parametrize(
    ("now", "end"),
    [
        # Europe/London leaves summer time on 2026-10-25: 08:00 on the Monday after is 08:00 UTC.
        (datetime(2026, 10, 26, 8, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
        # and enters it on 2027-03-28: 08:00 on the Monday after is 07:00 UTC.
        (datetime(2027, 3, 29, 7, 0, 30, tzinfo=UTC), datetime(2027, 3, 29, 7, 0, tzinfo=UTC)),
    ],
)
def test_a_weekly_digest_half_a_minute_after_08_00_london_is_on_time_on_both_sides_of_dst(now, end):
    config = site("skip")
    assert weekly_end(config, now) == end
    assert digest_decision(config, end, now, None, False) == Run(now)
    an_hour_off = now + timedelta(hours=1)  # a wall-clock slip of the DST hour would be missed
    assert digest_decision(config, end, an_hour_off, None, False) == Skip(
        "missed by 1h 0m (schedule.catch_up: skip)"
    )


def test_the_digest_due_at_a_start_is_the_latest_scheduled_in_the_site_timezone():
    config = site("skip", timezone="America/New_York")
    monday_0805_local = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)  # 08:05 EST
    end = weekly_end(config, monday_0805_local)
    assert end.astimezone(ZoneInfo("America/New_York")).strftime("%a %H:%M") == "Mon 08:00"
    assert digest_decision(config, end, monday_0805_local, None, False) == Skip(
        "missed by 5m 0s (schedule.catch_up: skip)"
    )


# -- what a caught-up digest holds (the planner's one selection, `plan.digest_due`) -------------


def daily(catch_up: str) -> Config:
    data = base_config_dict()
    data["site"]["timezone"] = "UTC"
    data["schedule"] = {"catch_up": catch_up}
    data["channels"] = {
        "daily": {
            "kind": "email",
            "mode": "digest",
            "schedule": {"every": "day", "at": "00:00"},
            "targets": ["mail-outbox"],
        }
    }
    return config_from_dict(data, Path("/nonexistent/config.yaml"))


MIDNIGHT = datetime(2026, 11, 30, tzinfo=UTC)
# One article in each of the three daily windows before this midnight's digest.
THREE_DAYS = [article("three-days", MIDNIGHT - timedelta(hours=54))]
THREE_DAYS += [article("two-days", MIDNIGHT - timedelta(hours=30))]
THREE_DAYS += [article("one-day", MIDNIGHT - timedelta(hours=6))]


def caught_up(config: Config, now: datetime, settled: set[str] = frozenset()) -> set[str] | Skip | Leave:
    """What the daemon's start does with the missed daily digest: the slugs it sends, or why not."""
    end = latest_digest_end(digest_settings(config, "daily").schedule, config.site.tz, now)
    decision = digest_decision(config, end, now, None, False)
    if not isinstance(decision, Run):
        return decision
    [send] = digest_due(config, "daily", "mail-outbox", THREE_DAYS, now, set(settled), decision.since)
    return {a.slug for a in send.articles}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # `send`: the first digest reaches back over every window missed.
        ("send", {"three-days", "two-days", "one-day"}),
        # a window: a route's first digest holds its own window only.
        ("2d", {"one-day"}),
        ("skip", Skip("missed by 5m 0s (schedule.catch_up: skip)")),
    ],
)
def test_missed_digests_coalesce_into_one_as_the_policy_allows(policy, expected):
    assert caught_up(daily(policy), MIDNIGHT + timedelta(minutes=5)) == expected


def test_a_late_digest_under_a_window_reaches_back_to_the_last_one_settled_but_no_older_than_it():
    settled = {"daily:2026-11-26"}  # four days ago: the windows since then are coalesced...
    assert caught_up(daily("send"), MIDNIGHT + timedelta(hours=2), settled) == {
        "three-days",
        "two-days",
        "one-day",
    }
    # ...as far as the policy's window allows: articles at most 2 days old.
    assert caught_up(daily("2d"), MIDNIGHT + timedelta(hours=2), settled) == {"two-days", "one-day"}


def test_a_digest_on_time_holds_its_window_since_the_last_one_settled():
    settled = {"daily:2026-11-29"}
    assert caught_up(daily("skip"), MIDNIGHT + timedelta(seconds=30), settled) == {"one-day"}
    assert caught_up(daily("skip"), MIDNIGHT + timedelta(seconds=30)) == {"one-day"}  # a first one
