"""Frontmatter fields in the shapes real sites write them: dates as each generator accepts them,
authors as text, maps and lists, images as text, lists and maps with their alt text."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from syndicate.content import fields
from syndicate.content.article import FieldError
from syndicate.content.fields import parse_date_text, people, picture

NINE = time(9, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2013-11-22 5:00:00 +0000", datetime(2013, 11, 22, 5, 0, tzinfo=UTC)),  # Jekyll's one-digit hour
        ("2013-11-22 05:00:00 -0500", datetime(2013, 11, 22, 5, 0, tzinfo=timezone(timedelta(hours=-5)))),
        ("2024-01-05 09:30:00 UTC", datetime(2024, 1, 5, 9, 30, tzinfo=UTC)),
        ("2024-01-05 09:30 GMT", datetime(2024, 1, 5, 9, 30, tzinfo=UTC)),
        ("2024-01-05T09:30:00.123Z", datetime(2024, 1, 5, 9, 30, 0, 123000, tzinfo=UTC)),
        ("2024-02-01T09:00:00+01:00", datetime(2024, 2, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))),
        ("2024-01-05T09:30", datetime(2024, 1, 5, 9, 30)),
        ("2024-01-05", datetime(2024, 1, 5, 9, 0)),
        ("2024/1/5", datetime(2024, 1, 5, 9, 0)),
        ("Fri, 05 Jan 2024 09:30:00 +0000", datetime(2024, 1, 5, 9, 30, tzinfo=UTC)),  # RFC 2822
        ("05 Jan 2024 09:30:00 GMT", datetime(2024, 1, 5, 9, 30, tzinfo=UTC)),
        ("Jul 08 2024", datetime(2024, 7, 8, 9, 0)),  # Astro's blog template
        ("July 8, 2024", datetime(2024, 7, 8, 9, 0)),
        ("8 July 2024", datetime(2024, 7, 8, 9, 0)),
    ],
)
def test_dates_in_every_shape_generators_accept(text, expected):
    assert parse_date_text(text, NINE) == expected


@pytest.mark.parametrize(
    "text", ["2024-13-45", "2024-02-30 10:00", "soon", "2024-01-05 25:00", "Jul 32 2024"]
)
def test_what_is_not_a_date_stays_none(text):
    assert parse_date_text(text, NINE) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ann Reed", "Ann Reed"),
        ({"name": "Ann Reed", "url": "https://a.example"}, "Ann Reed"),
        (["Ann"], "Ann"),
        (["Ann", "Bob"], "Ann and Bob"),
        (["Ann", {"name": "Bob"}, "Cy"], "Ann, Bob and Cy"),
        (["Ann", "Ann"], "Ann"),
        ([], None),
        (None, None),
    ],
)
def test_authors_as_text_maps_and_lists(value, expected):
    assert people({"author": value}, "author") == expected


@pytest.mark.parametrize("value", [{"url": "https://a.example"}, [["nested"]], True])
def test_an_author_without_a_name_is_one_clear_error(value):
    with pytest.raises(FieldError) as caught:
        people({"author": value}, "author")
    assert caught.value.field == "author"
    assert "expected text, a map with a name" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cover.jpg", ("cover.jpg", None)),
        (["first.jpg", "second.jpg"], ("first.jpg", None)),
        ({"path": "/img/a.jpg", "alt": "A lamp"}, ("/img/a.jpg", "A lamp")),  # Jekyll (jekyll-seo-tag)
        ({"image": "b.png", "alt": "Sea", "relative": True}, ("b.png", "Sea")),  # PaperMod's cover
        ({"src": "c.webp"}, ("c.webp", None)),
        ({"url": "https://img.example/d.jpg"}, ("https://img.example/d.jpg", None)),  # Next.js ogImage
        ([{"url": "e.jpg", "alt": "E"}], ("e.jpg", "E")),
        ({"image": {"src": "f.jpg"}, "alt": "F"}, ("f.jpg", "F")),
        (None, (None, None)),
        ("  ", (None, None)),
    ],
)
def test_images_as_text_lists_and_maps(value, expected):
    assert picture({"heroImage": value}, "heroImage") == expected


def test_an_image_map_naming_no_image_is_one_clear_error():
    with pytest.raises(FieldError) as caught:
        picture({"heroImage": {"caption": "no file"}}, "heroImage")
    assert caught.value.field == "heroImage"
    assert "names no image (expected text, or a map with path, src, url, image)" in caught.value.message


# Reading time by script: 3,600 Japanese characters are about 7 minutes at 500 a minute, where a
# count of whitespace words made them one "word" and "1 min".
JAPANESE_SENTENCE = "灯台守は毎晩ランプの芯を切りそろえ、霧の夜には鐘を鳴らした。"  # 30 characters, 28 read


def _japanese(characters: int) -> str:
    """Japanese prose with exactly `characters` characters read (punctuation aside)."""
    text, read = "", 0
    while read < characters:
        for char in JAPANESE_SENTENCE:
            text += char
            read += bool(fields._CJK.match(char))
            if read == characters:
                break
    return text


def test_japanese_is_read_by_the_character():
    text = _japanese(3_600)
    assert len(text.split()) == 1  # what the whitespace count saw
    assert fields.estimate_minutes(text, 220) == 7


@pytest.mark.parametrize(("words", "minutes"), [(1, 1), (220, 1), (1100, 5), (2310, 10), (2365, 11)])
def test_english_is_read_by_the_word_as_before(words, minutes):
    text = " ".join(["harbour"] * words)
    assert fields.estimate_minutes(text, 220) == minutes == max(1, round(words / 220))


def test_mixed_text_sums_characters_and_words():
    # 1,000 Japanese characters (2 min) and 660 English words (3 min): 5 minutes.
    text = _japanese(1_000) + " " + " ".join(["tide"] * 660)
    assert fields.estimate_minutes(text, 220) == 5
    # Chinese and Korean count as characters too; their punctuation counts as nothing.
    assert fields.estimate_minutes("潮汐表。" * 500 + "밀물과 썰물" * 100, 220) == 4


def test_a_given_read_time_still_wins_over_the_estimate():
    warnings: list[tuple[str, str]] = []
    text = _japanese(3_600)
    assert fields.read_minutes({"read_time": "2 mins"}, text, 220, lambda *w: warnings.append(w)) == 2
    assert fields.read_minutes({}, text, 220, lambda *w: warnings.append(w)) == 7
    assert warnings == []
