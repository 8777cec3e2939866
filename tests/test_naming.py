"""File names (`syndicate.naming`): one character rule, the names already in sent emails and
outboxes kept, and no name that leaves its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.keys import MessageKey
from syndicate.naming import (
    EML,
    HTML,
    JSON,
    TEXT,
    archive_name,
    draft_files,
    draft_stem,
    message_file,
    named_folder,
    safe_name,
)

OUT = Path("out")


@pytest.mark.parametrize(
    ("text", "keep", "name"),
    [
        ("weekly:2024-02-05", "", "weekly-2024-02-05"),
        ("a b/c\\d", "", "a-b-c-d"),
        ("..hidden.", "", "hidden"),
        ("--x--", "", "x"),
        ("snake_case.v1", "", "snake_case.v1"),
        ("a+news@example.org", "", "a-news-example.org"),
        ("a+news@example.org", "@+", "a+news@example.org"),
        ("café:été", "", "caf-t"),
        ("::", "", ""),
    ],
)
def test_safe_name(text, keep, name):
    assert safe_name(text, keep) == name


def test_a_draft_stem_is_never_empty():
    assert draft_stem("weekly:2024-03-11") == "weekly-2024-03-11"
    assert draft_stem(":::") == "draft"


def test_the_archive_link_names_the_previewed_html_file():
    # In the "view in browser" link of every email already sent: must not change.
    assert archive_name("weekly:2024-03-11") == "weekly-2024-03-11.html"
    (html,) = draft_files(OUT, "weekly:2024-03-11", HTML)
    assert html.name == archive_name("weekly:2024-03-11")


def test_a_draft_gets_one_file_per_extension_in_the_order_asked():
    assert draft_files(OUT, "weekly:2024-03-11", HTML, TEXT, EML) == (
        OUT / "weekly-2024-03-11.html",
        OUT / "weekly-2024-03-11.txt",
        OUT / "weekly-2024-03-11.eml",
    )
    assert [p.name for p in draft_files(OUT, "linkedin:tides", TEXT, JSON)] == [
        "linkedin-tides.txt",
        "linkedin-tides.json",
    ]


def test_a_dot_in_a_key_keeps_its_extension_and_its_name():
    # `with_suffix` would have made both of these `news.html`.
    names = {
        p.name
        for key in ("news.letter:2024-03-04", "news.letter:2024-03-11")
        for p in draft_files(OUT, key, HTML)
    }
    assert names == {"news.letter-2024-03-04.html", "news.letter-2024-03-11.html"}


def test_a_message_file_is_draft_recipient_digest_as_outboxes_already_hold():
    key = MessageKey("newsletter", "email", "digest-1", "a@example.org")
    assert message_file(OUT, key, EML) == OUT / f"digest-1.a@example.org.{key.digest()}.eml"
    post = MessageKey("social", "social", "tides", "")
    assert message_file(OUT, post, JSON).name == f"tides.{post.digest()}.json"


def test_long_parts_are_cut_and_the_digest_tells_them_apart():
    long = "x" * 100
    first, second = (MessageKey("c", "t", long + end, "r@example.org") for end in ("a", "b"))
    a, b = message_file(OUT, first, EML).name, message_file(OUT, second, EML).name
    assert a.startswith("x" * 60 + ".r@example.org.") and a != b


def test_a_config_name_stays_one_folder_inside_its_parent():
    assert named_folder(OUT, "newsletter") == OUT / "newsletter"
    assert named_folder(OUT, "../mail") == OUT / "mail"
    assert named_folder(OUT, "a/b") == OUT / "a-b"
    assert named_folder(OUT, "..") == OUT / "_"
