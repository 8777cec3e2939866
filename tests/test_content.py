"""Articles: normalisation of the samples' quirks, and hostile files that must never raise."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.compose.textlength import shorten
from syndicate.content import ArticleCache, identity, load_articles, read_article
from syndicate.errors import ContentError

from .conftest import REPO

SAMPLE_SHAPED = """\
---
title: 'Harbour Lights: A Study in ''Quoted'' Titles'
subtitle: 'A subtitle'
description: 'A description of reasonable length.'
author: 'Ada Quill'
read_time: '8 mins'
publish_date: '2024-02-01'
created_date: '2025-02-01'
heroImage: 'https://img.example.com/hero.webp'
cta: 'Follow us on LinkedIn for more.'
---

Intro paragraph with **bold** words.

![An image](https://img.example.com/inline.png)

## A heading

More text here.
"""


def whole(site):
    """The site's config with a channel that sends whole articles, so loading keeps body_html."""
    site.data["channels"]["letters"] = {
        "kind": "email",
        "mode": "single",
        "body": "full",
        "targets": ["mail-outbox"],
    }
    return site.config()


def test_body_html_is_kept_only_for_a_channel_sending_whole_articles(site):
    path = site.article("a.md", SAMPLE_SHAPED)
    assert read_article(path, site.config())[0].body_html == ""
    assert "<h2>A heading</h2>" in read_article(path, whole(site))[0].body_html


def test_sample_shaped_article_is_normalised(site):
    path = site.article("harbour-lights.md", SAMPLE_SHAPED)
    article, problems = read_article(path, whole(site))
    assert article is not None
    assert article.title == "Harbour Lights: A Study in 'Quoted' Titles"
    assert article.publish_date == datetime(2024, 2, 1, tzinfo=site.config().site.tz)
    assert article.publish_date.utcoffset() == timedelta(0)  # London in winter
    assert article.created_date.year == 2025
    assert article.read_minutes == 8
    assert article.slug == "harbour-lights"
    assert article.url == "https://example.com/articles/harbour-lights"
    assert article.hero_image == "https://img.example.com/hero.webp"
    assert article.cta == "Follow us on LinkedIn for more."
    assert '<img src="https://img.example.com/inline.png" alt="An image"' in article.body_html
    assert "<h2>A heading</h2>" in article.body_html
    assert article.excerpt.startswith("Intro paragraph with bold words.")
    assert len(article.content_hash) == 64
    warned = {(p.field, p.severity) for p in problems}
    assert ("publish_date", "warning") in warned


def test_real_samples_load_with_the_date_warning(site):
    samples = REPO.parent / "shared" / "samples"
    if not samples.is_dir():
        pytest.skip(f"the shared samples are not beside this checkout ({samples})")
    loaded = load_articles(site.config(), [samples])
    assert len(loaded.articles) == 2
    assert any(p.field == "publish_date" and "before created_date" in p.message for p in loaded.problems)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'2024-06-01T09:30:00+02:00'", datetime(2024, 6, 1, 7, 30, tzinfo=UTC)),
        ("2024-06-01T09:30:00Z", datetime(2024, 6, 1, 9, 30, tzinfo=UTC)),
        ("'2024-06-01 09:30'", datetime(2024, 6, 1, 8, 30, tzinfo=UTC)),  # BST
        ("2024-06-01", datetime(2024, 5, 31, 23, 0, tzinfo=UTC)),  # midnight BST
        ("'1 June 2024'", datetime(2024, 5, 31, 23, 0, tzinfo=UTC)),
    ],
)
def test_dates_become_aware_and_keep_their_instant(site, value, expected):
    path = site.article("d.md", f"---\ntitle: T\npublish_date: {value}\n---\nbody\n")
    article, _ = read_article(path, site.config())
    assert article.publish_date.tzinfo is not None
    assert article.publish_date == expected


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("'8 mins'", 8), ("'1 min'", 1), ("12", 12), ("'1 hour 5 minutes'", 65), ("'3 min read'", 3)],
)
def test_read_time_forms(site, value, minutes):
    path = site.article("r.md", f"---\ntitle: T\npublish_date: '2024-01-01'\nread_time: {value}\n---\nx\n")
    assert read_article(path, site.config())[0].read_minutes == minutes


def test_read_time_absent_or_odd_comes_from_word_count(site):
    body = "word " * 1100  # 5 minutes at 220 wpm
    path = site.article("w.md", f"---\ntitle: T\npublish_date: '2024-01-01'\n---\n{body}\n")
    assert read_article(path, site.config())[0].read_minutes == 5
    odd = site.article("o.md", f"---\ntitle: T\npublish_date: '2024-01-01'\nread_time: soon\n---\n{body}\n")
    article, problems = read_article(odd, site.config())
    assert article.read_minutes == 5
    assert any(p.field == "read_time" and p.severity == "warning" for p in problems)


def test_read_time_of_a_japanese_article_counts_its_characters(site):
    body = "港の灯りは霧の中でも消えなかった。" * 225  # 3,600 characters read: 7 minutes, was 1
    path = site.article("ja.md", f"---\ntitle: T\npublish_date: '2024-01-01'\n---\n{body}\n")
    assert read_article(path, site.config())[0].read_minutes == 7


def test_toml_frontmatter_and_hugo_aliases(site):
    site.data["content"]["aliases"] = {"date": "publish_date", "cover": "heroImage"}
    path = site.article(
        "hugo.md",
        '+++\ntitle = "From Hugo"\ndate = 2024-02-03T10:00:00Z\ncover = "/img/c.png"\n'
        'categories = ["a", "b"]\n+++\nHello\n',
    )
    article, _ = read_article(path, site.config())
    assert article.title == "From Hugo"
    assert article.publish_date == datetime(2024, 2, 3, 10, tzinfo=UTC)
    assert article.hero_image == "https://example.com/img/c.png"
    assert article.tags == ("a", "b")


def test_jekyll_filename_date_and_slug(site):
    path = site.article("2024-05-06-my-post.markdown", "---\ntitle: Jekyll\n---\nbody\n")
    article, _ = read_article(path, site.config())
    assert article.slug == "my-post"
    assert article.publish_date.date().isoformat() == "2024-05-06"


def test_given_url_and_slug_win(site):
    path = site.article(
        "x.md", "---\ntitle: T\npublish_date: '2024-01-01'\nslug: Custom Slug\nurl: /elsewhere/x\n---\nb\n"
    )
    article, _ = read_article(path, site.config())
    assert article.slug == "custom-slug"
    assert article.url == "https://example.com/elsewhere/x"


def test_warnings_for_missing_cta_http_image_and_draft(site):
    path = site.article(
        "w.md",
        "---\ntitle: T\npublish_date: '2024-01-01'\nheroImage: 'http://img.example.com/a.png'\n"
        "draft: true\ndescription: " + "long " * 40 + "\n---\nb\n",
    )
    article, problems = read_article(path, site.config())
    assert article is not None and article.draft
    fields = {p.field for p in problems if p.severity == "warning"}
    assert {"cta", "heroImage", "draft", "description"} <= fields


def test_duplicate_slugs_keep_the_first(site):
    site.article("a/same.md", "---\ntitle: One\npublish_date: '2024-01-01'\n---\nb\n")
    site.article("b/same.md", "---\ntitle: Two\npublish_date: '2024-01-01'\n---\nb\n")
    loaded = load_articles(site.config())
    assert [a.title for a in loaded.articles] == ["One"]
    assert [p.field for p in loaded.errors] == ["slug"]


@pytest.mark.parametrize(
    ("frontmatter", "expected"),
    [
        ("id: tide-tables", "tide-tables"),
        ("id: '  Tide Tables 2024 '", "Tide Tables 2024"),
        ("id: 1042", "1042"),
        ("id: '1.10'", "1.10"),
        ("id: ünïcode-ид", "ünïcode-ид"),
    ],
)
def test_an_id_is_one_line_of_text_or_a_whole_number(site, frontmatter, expected):
    path = site.article("x.md", f"---\ntitle: T\npublish_date: '2024-01-01'\n{frontmatter}\n---\nb\n")
    article, problems = read_article(path, site.config())
    assert article is not None and article.id == expected
    assert identity(article) == f"id:{expected}" and "id" not in article.extra


@pytest.mark.parametrize(
    ("frontmatter", "message"),
    [
        ("id:", "is empty (expected one line of text or a whole number, like 'tide-tables' or 1042)"),
        ("id: '   '", "is empty (expected one line"),
        ("id: true", "true is true or false (expected one line"),
        ("id: [1, 2]", "[1, 2] is a list (expected one line"),
        ("id: {a: 1}", "{'a': 1} is a mapping (expected one line"),
        ("id: 2024-01-01", "2024-01-01 is a date (expected one line"),
        ("id: 1.10", "1.1 is a decimal number, which YAML may have changed (expected text in quotes"),
        ('id: "two\\nlines"', "'two\\nlines' is not one line (expected one line of text or a whole number"),
        ('id: "a\\tb"', "'a\\tb' is not one line"),
        ("id: " + "x" * 201, "is 201 characters (expected one line of text or a whole number, like"),
    ],
)
def test_a_bad_id_is_one_line_naming_file_and_field(site, frontmatter, message):
    path = site.article("x.md", f"---\ntitle: T\npublish_date: '2024-01-01'\n{frontmatter}\n---\nb\n")
    article, problems = read_article(path, site.config())
    assert article is None
    [problem] = problems
    line = str(problem)
    assert (problem.field, problem.severity) == ("id", "error")
    assert line.startswith(f"{path}: id: {message}"), line
    assert "\n" not in line and len(line) < 300


def test_toml_ids_and_the_identity_rule(site):
    config = site.config()
    with_id = site.article(
        "a.md", "+++\ntitle = 'A'\npublish_date = 2024-01-01\nid = 7\nurl = '/a'\n+++\nb\n"
    )
    with_url = site.article(
        "b.md", "---\ntitle: B\npublish_date: '2024-01-01'\ncanonical_url: /posts/b\n---\nb\n"
    )
    plain = site.article("c.md", "---\ntitle: C\npublish_date: '2024-01-01'\n---\nb\n")
    identities = [identity(read_article(path, config)[0]) for path in (with_id, with_url, plain)]
    # The id first, then a url given in the frontmatter, then the slug (not the url made from it).
    assert identities == ["id:7", "url:https://example.com/posts/b", "slug:c"]


def test_a_second_article_with_a_taken_id_or_url_is_an_error(site):
    site.article("a.md", "---\ntitle: One\npublish_date: '2024-01-01'\nid: tide\n---\nb\n")
    site.article("b.md", "---\ntitle: Two\npublish_date: '2024-01-01'\nid: tide\n---\nb\n")
    site.article("c.md", "---\ntitle: Three\npublish_date: '2024-01-01'\nurl: https://x.example/p\n---\nb\n")
    site.article(
        "d.md", "---\ntitle: Four\npublish_date: '2024-01-01'\ncanonical_url: https://x.example/p\n---\nb\n"
    )
    # The same url with ids of their own: two articles.
    site.article(
        "e.md", "---\ntitle: Five\npublish_date: '2024-01-01'\nid: 5\nurl: https://x.example/p\n---\nb\n"
    )
    loaded = load_articles(site.config())
    assert [a.title for a in loaded.articles] == ["One", "Three", "Five"]
    assert [(p.path.name, p.field) for p in loaded.errors] == [("b.md", "id"), ("d.md", "canonical_url")]
    first, second = (str(p) for p in loaded.errors)
    assert first.endswith(
        f": id: 'tide' is already the id of {site.content / 'a.md'} (expected each article its own id)"
    )
    assert second.endswith(
        f": canonical_url: 'https://x.example/p' is already the URL of {site.content / 'c.md'}, which makes "
        "them one article (expected each article its own URL, or an id to tell them apart)"
    )


def test_missing_folder_and_empty_folder_are_user_errors(site, tmp_path):
    with pytest.raises(ContentError, match="no such file or folder"):
        load_articles(site.config(), [tmp_path / "nope"])
    with pytest.raises(ContentError, match="no articles found"):
        load_articles(site.config())


def test_shorten_cuts_at_word_boundary():
    assert shorten("short", 10) == "short"
    assert shorten("the quick brown fox jumps", 15) == "the quick…"
    assert len(shorten("x" * 50, 10)) == 10


# --- hostile files -------------------------------------------------------------------------------

VALID = "---\ntitle: 'Valid {n}'\npublish_date: '2024-01-0{n}'\ncta: 'Go'\n---\nA fine body.\n"


def _hostile_files() -> dict[str, bytes]:
    deep = "title: Deep\npublish_date: '2024-01-01'\nnested: " + "[" * 3000 + "]" * 3000
    bomb = "title: Bomb\npublish_date: '2024-01-01'\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb += f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    return {
        "empty.md": b"",
        "blank.md": b"  \n\n\t\n",
        "binary.md": bytes(range(256)) * 8,
        "never-closed.md": b"---\ntitle: Open\npublish_date: '2024-01-01'\nThe body never started.\n",
        "title-list.md": b"---\ntitle: [one, two]\npublish_date: '2024-01-01'\n---\nbody\n",
        "title-mapping.md": b"---\ntitle: {a: 1}\npublish_date: '2024-01-01'\n---\nbody\n",
        "bad-date.md": b"---\ntitle: Bad date\npublish_date: '2024-13-45'\n---\nbody\n",
        "date-number.md": b"---\ntitle: Number date\npublish_date: 12345\n---\nbody\n",
        "deep.md": f"---\n{deep}\n---\nbody\n".encode(),
        "alias-bomb.md": f"---\n{bomb}---\nbody\n".encode(),
        "huge.md": b"---\ntitle: Huge\npublish_date: '2024-01-01'\n---\n" + b"word " * 1_000_000,
        "latin1.md": "---\ntitle: 'Caf\xe9'\npublish_date: '2024-01-01'\n---\nna\xefve\n".encode("latin-1"),
        "bad-toml.md": b'+++\ntitle = "Broken\npublish_date = 2024-01-01\n+++\nbody\n',
        "no-frontmatter.md": b"# Just a heading\n\nNo frontmatter at all.\n",
        "frontmatter-list.md": b"---\n- a\n- b\n---\nbody\n",
        "invalid-yaml.md": b"---\ntitle: 'unclosed\npublish_date: '2024-01-01'\n---\nbody\n",
        "tab-yaml.md": b"---\ntitle: T\n\tpublish_date: '2024-01-01'\n---\nbody\n",
        "no-title.md": b"---\npublish_date: '2024-01-01'\n---\nbody\n",
        "no-date.md": b"---\ntitle: When?\n---\nbody\n",
        "js-url.md": b"---\ntitle: T\npublish_date: '2024-01-01'\nurl: 'javascript:alert(1)'\n---\nb\n",
        "data-image.md": b"---\ntitle: T\npublish_date: '2024-01-01'\nheroImage: 'data:image/png;base64,AAA'\n---\nb\n",
        "bad-draft.md": b"---\ntitle: T\npublish_date: '2024-01-01'\ndraft: maybe\n---\nb\n",
        "tags-mapping.md": b"---\ntitle: T\npublish_date: '2024-01-01'\ntags: {a: b}\n---\nb\n",
        "empty-slug.md": b"---\ntitle: T\npublish_date: '2024-01-01'\nslug: '!!!'\n---\nb\n",
    }


@pytest.fixture
def hostile(site):
    for name, data in _hostile_files().items():
        (site.content / name).write_bytes(data)
    os.symlink(site.content / "loop-b.md", site.content / "loop-a.md")
    os.symlink(site.content / "loop-a.md", site.content / "loop-b.md")
    os.symlink(site.content, site.content / "folder-loop")  # a folder that contains itself
    for n in (1, 2, 3):
        site.article(f"valid-{n}.md", VALID.format(n=n))
    return site


def test_hostile_files_each_get_one_line_error_and_valid_ones_load(hostile):
    loaded = load_articles(hostile.config())
    assert sorted(a.title for a in loaded.articles) == ["Valid 1", "Valid 2", "Valid 3"]
    failing = {p.path.name for p in loaded.errors}
    expected = set(_hostile_files()) | {"loop-a.md", "loop-b.md"}
    assert failing == expected
    for problem in loaded.errors:
        line = str(problem)
        assert "\n" not in line
        assert line.startswith(f"{problem.path.name}: ") or f"/{problem.path.name}: " in line
        assert "(expected" in line or "cannot be read" in line, line
        assert len(line) < 300, line


def test_hostile_errors_name_the_field(hostile):
    by_file = {p.path.name: p for p in load_articles(hostile.config()).errors}
    assert by_file["title-list.md"].field == "title"
    assert "is a list" in by_file["title-list.md"].message
    assert by_file["bad-date.md"].field == "publish_date"
    assert "'2024-13-45' is not a date" in by_file["bad-date.md"].message
    assert "never closed" in by_file["never-closed.md"].message
    assert "aliases" in by_file["alias-bomb.md"].message
    assert "bytes (expected at most" in by_file["huge.md"].message
    assert "not UTF-8" in by_file["latin1.md"].message
    assert "TOML" in by_file["bad-toml.md"].message
    assert by_file["js-url.md"].field == "url"
    assert by_file["data-image.md"].field == "heroImage"
    assert "cannot be read" in by_file["loop-a.md"].message


def test_single_hostile_path_given_directly(hostile):
    loaded = load_articles(hostile.config(), [hostile.content / "bad-date.md"])
    assert loaded.articles == []
    assert [p.field for p in loaded.errors] == ["publish_date"]


def test_non_markdown_files_are_ignored(site):
    (site.content / "notes.txt").write_text("not an article")
    (site.content / ".hidden.md").write_text("---\ntitle: hidden\n---\n")
    site.article("ok.md", VALID.format(n=1))
    loaded = load_articles(site.config())
    assert [a.title for a in loaded.articles] == ["Valid 1"]
    assert loaded.problems == [] or all(p.severity == "warning" for p in loaded.problems)


def test_symlinked_article_inside_folder_loads(site, tmp_path: Path):
    outside = tmp_path / "elsewhere.md"
    outside.write_text(VALID.format(n=4))
    os.symlink(outside, site.content / "linked.md")
    assert [a.title for a in load_articles(site.config()).articles] == ["Valid 4"]


def test_as_dict_is_json_ready(site):
    import json

    article, _ = read_article(site.article("j.md", SAMPLE_SHAPED), site.config())
    data = json.loads(json.dumps(article.as_dict()))
    assert data["title"].startswith("Harbour Lights")
    assert data["publish_date"] == "2024-02-01T00:00:00+00:00"
    assert data["read_minutes"] == 8


def test_article_cache_reads_only_what_changed(site):
    site.article("one.md", "---\ntitle: One\npublish_date: '2026-01-05'\n---\nBody one.\n")
    site.article("two.md", "---\ntitle: Two\npublish_date: '2026-01-06'\n---\nBody two.\n")
    cache = ArticleCache(site.config())
    assert set(cache.refresh()) == {"one", "two"}
    one = cache.by_name()["one"]
    assert cache.refresh() == {}  # nothing changed: nothing read
    path = site.content / "one.md"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert cache.refresh() == {} and cache.by_name()["one"] is one  # touched, same bytes: not parsed
    site.article("one.md", "---\ntitle: One, edited\npublish_date: '2026-01-05'\n---\nBody one.\n")
    changed = cache.refresh()
    assert list(changed) == ["one"] and changed["one"].title == "One, edited"
    (site.content / "two.md").unlink()
    site.article("three.md", "---\ntitle: Three\npublish_date: 'not a date'\n---\nBody.\n")
    assert cache.refresh() == {"two": None}  # gone; three never became an article
    assert [str(p.path.name) for p in cache.loaded.errors] == ["three.md"]


# --- links: http(s) only -------------------------------------------------------------------------

TRICKS = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "&#106;avascript:alert(1)",
    "java%0Ascript:alert(1)",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "data:text/html;base64,PHNjcmlwdD4=",
    "data:image/png;base64,AAAA",
    "ftp://files.example.com/a",
]


@pytest.mark.parametrize("field", ["url", "canonical_url", "heroImage"])
@pytest.mark.parametrize("value", TRICKS)
def test_frontmatter_links_must_be_http(site, field, value):
    path = site.article("a.md", VALID.format(n=1))
    path.write_text(
        VALID.format(n=1).replace("cta:", f"{field}: {json.dumps(value)}\ncta:"), encoding="utf-8"
    )
    article, problems = read_article(path, site.config())
    assert article is None
    [problem] = [p for p in problems if p.severity == "error"]
    assert problem.field == field
    assert str(problem).startswith(f"{path}: {field}: ") and "is not an http(s) URL (expected" in str(problem)
    assert "\n" not in str(problem) and "\t" not in str(problem)


def test_relative_and_protocol_relative_links_resolve_to_http(site):
    text = VALID.format(n=1).replace("cta:", "heroImage: '//cdn.example.net/a.png'\nurl: 'elsewhere/'\ncta:")
    article, _ = read_article(site.article("a.md", text), site.config())
    assert article.hero_image == "https://cdn.example.net/a.png"
    assert article.url == "https://example.com/articles/elsewhere/"


BODY_TRICKS = [
    ("[a](javascript:alert(1))", "link"),
    ("[a](JaVaScRiPt:alert(1))", "link"),
    ("[a](&#106;avascript:alert(1))", "link"),
    ("[a](<java\tscript:alert(1)>)", "link"),
    ("<vbscript:msgbox(1)>", "link"),
    ("[a][r]\n\n[r]: file:///etc/passwd", "link"),
    ("![a](data:image/png;base64,AAAA)", "image"),
    ("![a](javascript:alert(1))", "image"),
    ("[![a](file:///etc/passwd)](https://ok.example/)", "image"),
]


@pytest.mark.parametrize(("markdown", "kind"), BODY_TRICKS)
def test_body_links_that_are_not_http_become_text_with_a_warning(site, markdown, kind):
    path = site.article("a.md", VALID.format(n=1) + "\n" + markdown + "\n")
    article, problems = read_article(path, whole(site))
    [problem] = [p for p in problems if p.field == "body"]
    assert problem.severity == "warning" and str(problem).startswith(f"{path}: body: {kind} ")
    assert "shown as text" in problem.message and "\n" not in str(problem)
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', article.body_html)
    assert all(h.startswith("https://") for h in hrefs), hrefs


def test_http_mailto_and_relative_body_links_stay(site):
    body = "[w](https://a.example/) [m](mailto:ed@example.com) [r](other/) ![i](http://a.example/i.png)\n"
    article, problems = read_article(site.article("a.md", VALID.format(n=1) + body), whole(site))
    assert [p for p in problems if p.field == "body"] == []
    assert re.findall(r'(?:href|src)="([^"]*)"', article.body_html) == [
        "https://a.example/",
        "mailto:ed@example.com",
        "other/",
        "http://a.example/i.png",
    ]


def test_the_excerpt_of_a_long_body_is_the_same_read_from_its_lead_or_whole(site):
    """Without a `body: full` channel only the body's first paragraphs are parsed for the excerpt,
    with the link references defined at the end; the excerpt is the one the whole body gives."""
    paragraphs = "\n\n".join(
        f"Paragraph {n} cites [the survey][s] and [a chart][c] at length." for n in range(200)
    )
    body = f"```\ncode first\n```\n\n{paragraphs}\n\n[s]: https://a.example/s\n[c]: https://a.example/c\n"
    path = site.article("long.md", VALID.format(n=1) + body)
    lead, _ = read_article(path, site.config())
    whole_, _ = read_article(path, whole(site))
    assert lead.excerpt == whole_.excerpt
    assert "Paragraph 0 cites the survey and a chart at length. Paragraph 1 cites" in lead.excerpt
    assert "[s]" not in lead.excerpt and len(lead.excerpt) <= 300
    short = site.article("short.md", VALID.format(n=2) + "```\n" + "code\n" * 600 + "```\n\nOnly this.\n")
    assert read_article(short, site.config())[0].excerpt.endswith("Only this.")  # the lead held no text
