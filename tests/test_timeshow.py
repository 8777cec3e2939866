"""The one way a time is shown (`syndicate.timeshow.show_time`): the site's zone, its offset."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from syndicate.timeshow import show_time

SUMMER = datetime(2024, 7, 1, 12, 0, 42, 999_999, tzinfo=UTC)
LONDON, ST_JOHNS = ZoneInfo("Europe/London"), ZoneInfo("America/St_Johns")


@pytest.mark.parametrize(
    ("to", "form", "shown"),
    [
        ("minute", "text", "2024-07-01 13:00 +01:00"),  # the CLI's tables
        ("second", "text", "2024-07-01 13:00:42 +01:00"),  # serve's console
        ("second", "iso", "2024-07-01T13:00:42+01:00"),  # status --json, the daemon's log
        ("minute", "iso", "2024-07-01T13:00+01:00"),
        ("minute", "reader", "Mon 1 Jul 2024, 13:00 BST (+01:00)"),  # the gallery
        ("second", "reader", "Mon 1 Jul 2024, 13:00:42 BST (+01:00)"),
    ],
)
def test_every_form_is_the_site_zone_with_its_offset(to, form, shown):
    assert show_time(SUMMER, LONDON, to=to, form=form) == shown


def test_the_defaults_are_the_cli_form_to_the_minute():
    assert show_time(SUMMER, LONDON) == "2024-07-01 13:00 +01:00"


def test_an_offset_off_the_hour_and_west_of_utc():
    assert show_time(SUMMER, ST_JOHNS) == "2024-07-01 09:30 -02:30"
    assert show_time(SUMMER, ST_JOHNS, to="second", form="iso") == "2024-07-01T09:30:42-02:30"


def test_winter_shows_the_winter_offset():
    winter = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    assert show_time(winter, LONDON) == "2024-01-15 08:00 +00:00"
    assert show_time(winter, LONDON, form="reader") == "Mon 15 Jan 2024, 08:00 GMT (+00:00)"


def test_the_same_moment_from_another_zone_shows_the_same():
    elsewhere = SUMMER.astimezone(ZoneInfo("Asia/Tokyo"))
    assert show_time(elsewhere, LONDON, to="second") == show_time(SUMMER, LONDON, to="second")
