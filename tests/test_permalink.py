"""Permalink patterns: each token, sub-path sites, an article's own permalink, and config mistakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from syndicate.config import config_from_dict
from syndicate.content import load_articles
from syndicate.content.permalink import Place, fill

from .conftest import base_config_dict

PLACE = Place("tide-tables", datetime(2024, 3, 7, 23, 30, tzinfo=UTC), ("news", "2024"), ("field-notes",))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/news/:year/:month/:day/:slug/", "news/2024/03/07/tide-tables/"),
        (":title.html", "tide-tables.html"),  # Jekyll's synonym
        ("/:section/:slug/", "news/tide-tables/"),
        ("/:path/", "news/2024/tide-tables/"),
        ("/:categories/:year/:month/:day/:title:output_ext", "field-notes/2024/03/07/tide-tables.html"),
        (":slug", "tide-tables"),
    ],
)
def test_tokens(pattern, expected):
    assert fill(pattern, PLACE) == expected


def test_empty_parts_collapse():
    bare = Place("x", datetime(2024, 1, 2, tzinfo=UTC), ())
    assert fill("/:categories/:section/:year/:slug/", bare) == "2024/x/"


def config(tmp_path, timezone="UTC", **content):
    data = base_config_dict()
    data["site"]["base_url"] = "https://example.com/blog/"  # a site under a sub-path
    data["site"]["timezone"] = timezone
    data["content"] = {"dir": str(tmp_path / "content"), **content}
    return config_from_dict(data, tmp_path / "config.yaml")


def write(tmp_path, name: str, front: str) -> None:
    path = tmp_path / "content" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: T\n{front}---\nBody.\n", encoding="utf-8")


def test_the_pattern_is_read_under_base_url_and_dates_in_the_sites_timezone(tmp_path):
    write(tmp_path, "posts/late.md", "date: '2024-03-07T23:30:00+00:00'\n")
    tokyo = config(tmp_path, timezone="Asia/Tokyo", permalink="/news/:year/:month/:day/:slug/")
    (article,) = load_articles(tokyo).articles
    # 23:30 UTC is the next morning in Tokyo; the URL carries the site's own date.
    assert article.url == "https://example.com/blog/news/2024/03/08/late/"


def test_an_articles_own_permalink_url_or_canonical_url_wins(tmp_path):
    write(tmp_path, "a.md", "date: 2024-01-01\npermalink: /special/:year/\n")
    write(tmp_path, "b.md", "date: 2024-01-01\nurl: https://elsewhere.example/b\n")
    write(tmp_path, "c.md", "date: 2024-01-01\ncanonical_url: /c-page/\n")
    got = {
        a.slug: (a.url, a.url_field) for a in load_articles(config(tmp_path, permalink="/:slug/")).articles
    }
    assert got == {
        "a": ("https://example.com/blog/special/2024/", "permalink"),
        "b": ("https://elsewhere.example/b", "url"),
        "c": ("https://example.com/c-page/", "canonical_url"),
    }


def test_a_bundles_slug_is_its_folders_name(tmp_path):
    write(tmp_path, "posts/harbour/index.md", "date: 2024-01-01\nimage: map.png\n")
    write(tmp_path, "posts/ferry/index.mdx", "date: 2024-01-02\n")
    got = {a.slug: a for a in load_articles(config(tmp_path, permalink="/:path/")).articles}
    assert got["harbour"].url == "https://example.com/blog/posts/harbour/"
    assert got["harbour"].hero_image == "https://example.com/blog/posts/harbour/map.png"  # beside the post
    assert got["ferry"].url == "https://example.com/blog/posts/ferry/"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/:yeer/:slug/", "has unknown token(s) :yeer"),
        ("https://example.com/:slug", "is not a path pattern"),
    ],
)
def test_a_bad_pattern_is_one_config_error(tmp_path, pattern, message):
    with pytest.raises((ValidationError, Exception)) as caught:
        config(tmp_path, permalink=pattern)
    assert message in str(caught.value)
