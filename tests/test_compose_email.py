"""Composing email drafts: templates, escaping, plain text, UTM links, subjects, errors, clipping."""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from syndicate.compose.email import (
    PLACEHOLDERS,
    EmailDraft,
    clean_header_text,
    compose_email_channel,
    compose_single,
)
from syndicate.compose.mime import build_message
from syndicate.content import load_articles
from syndicate.errors import ConfigError, TemplateError
from syndicate.recipients import Recipient

from .conftest import DATA, EVERY_FIELD, assert_inert

sys.path.insert(0, str(DATA / "email"))
from generate import write_articles  # noqa: E402

LONDON = ZoneInfo("Europe/London")
WINDOW_END = datetime(2024, 3, 11, 8, 0, tzinfo=LONDON)
HOSTILE_TITLE = 'Q&A: <script>alert(1)</script> "quotes"'


class _Page(HTMLParser):
    """The parts of an HTML page the tests look at: visible text, tags, link targets."""

    def __init__(self, html: str):
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if not self._in_style:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def digest(site, **channel) -> EmailDraft:
    site.data["channels"]["weekly"].update(channel)
    config = site.config()
    return compose_email_channel(load_articles(config).articles, "weekly", config, WINDOW_END)[0]


def test_digest_carries_every_article_newest_first_with_its_parts(email_site):
    draft = digest(email_site)
    assert draft.key == "weekly:2024-03-11"
    assert draft.channel == "weekly"
    assert [a.slug for a in draft.articles] == [
        "fog-signals",
        "harbour-economics",
        "lamp-keepers",
        "tide-tables",
    ]
    assert draft.subject == "Test Weekly: 4 new articles"
    page = _Page(draft.html)
    for article in draft.articles:
        assert article.title in page.visible
        assert (article.cta or "") in page.visible
        if article.subtitle:
            assert article.subtitle in page.visible
    assert "By Morwenna Tregear · 8 min read · 5 March 2024" in page.visible
    assert {"alt": "The Last Lamp Keepers of the Western Approaches"}.items() <= page.images[1].items()
    assert "Test Weekly · 1 Example Street, London" in page.visible
    assert "View in browser" in page.visible and "Unsubscribe" in page.visible
    for leftover in ("{{", "{%", "<mj-"):
        assert leftover not in page.visible
    assert "<mj-" not in draft.html


def test_short_cta_is_a_button_and_long_cta_a_line_with_a_link(email_site):
    html = digest(email_site).html
    button = re.search(r'<a href="([^"]*)"[^>]*style="([^"]*)"[^>]*>Read the field guide</a>', html)
    assert button and "background:#1f4e79" in button.group(2).replace(" ", "")  # the inliner's spacing
    assert button.group(1).startswith("https://example.com/articles/lamp-keepers?utm_source=newsletter")
    line = re.search(r'<a href="([^"]*)" style="([^"]*)">Want more practical seamanship\?', html)
    assert (
        line and "font-style:italic" in line.group(2).replace(" ", "") and "background" not in line.group(2)
    )
    assert line.group(1).startswith("https://example.com/articles/tide-tables?utm_source=newsletter")


def test_css_is_inlined_media_queries_kept_and_no_web_fonts(email_site):
    html = digest(email_site).html
    assert re.search(r'style="color: ?#1b1b1b; ?text-decoration: ?none;?"', html)  # .title a, inlined
    assert "@media only screen and (max-width: 480px)" in html
    assert "fonts.googleapis.com" not in html
    assert "<link" not in html


def test_preheader_is_the_lead_description_cut_at_a_word_boundary(email_site):
    whole = digest(email_site)  # 135 characters: within the 140 a client shows
    assert whole.preheader == whole.articles[0].description
    email_site.data["content"]["preheader_chars"] = 100
    draft = digest(email_site)
    description = draft.articles[0].description
    assert draft.preheader == (
        "Diaphones, reeds and sirens once boomed across every headland. Satellite navigation made them…"
    )
    assert len(draft.preheader) <= 100 and description.startswith(draft.preheader[:-1])
    assert draft.preheader in _Page(draft.html).visible  # the hidden preview text, first in the body
    short = compose_single(_article(email_site, "lamp-keepers"), "letters", email_site.config())
    assert short.preheader.startswith("The final keepers left the rock lighthouses in 1998.")


def test_text_part_is_written_from_the_data_with_every_link(email_site):
    draft = digest(email_site)
    assert "<" not in draft.text.replace(PLACEHOLDERS["greeting"], "")
    for article in draft.articles:
        assert article.title in " ".join(draft.text.split())
        assert " ".join((article.cta or "").split()) in " ".join(draft.text.split())
        assert f"{article.url}?utm_source=newsletter&utm_medium=email&utm_campaign=2024-03-11" in draft.text
    assert f"Unsubscribe: {PLACEHOLDERS['unsubscribe_url']}" in draft.text
    assert "View in browser: https://example.com/articles/" in draft.text
    assert max(len(line) for line in draft.text.splitlines()) < 200


def test_utm_keeps_existing_query_and_the_authors_own_tags(email_site):
    email_site.article(
        "tagged.md",
        """
        ---
        title: Tagged
        publish_date: '2024-03-09'
        url: https://other.example.net/post?id=7&utm_source=partner
        ---
        Body.
        """,
    )
    draft = digest(email_site, utm={"source": "letter", "medium": "email", "campaign": "spring"})
    assert "https://other.example.net/post?id=7&utm_source=partner&utm_medium=email&utm_campaign=spring" in (
        draft.text
    )
    page = _Page(draft.html)
    assert not [link for link in page.links if PLACEHOLDERS["unsubscribe_url"] in link and "utm_" in link]


def test_no_utm_when_the_channel_has_none(email_site):
    email_site.data["channels"]["weekly"].pop("utm")
    draft = digest(email_site)
    assert "utm_" not in draft.html and "utm_" not in draft.text


def test_hostile_title_is_escaped_in_html_and_intact_in_text(email_site):
    shutil.copy(DATA / "email" / "hostile" / "hostile-title.md", email_site.content)
    draft = digest(email_site)
    page = _Page(draft.html)
    assert "script" not in page.tags
    assert HOSTILE_TITLE in page.visible
    assert "Q&amp;A: &lt;script&gt;alert(1)&lt;/script&gt;" in draft.html
    assert "<script" not in draft.html
    assert HOSTILE_TITLE in draft.text
    assert 'Click <here> & "now"' in draft.text
    hostile_image = next(i for i in page.images if "q" in (i.get("src") or "") and "webp" in i["src"])
    assert hostile_image["alt"] == HOSTILE_TITLE  # the quote in alt= could not end the attribute
    single = compose_single(_article(email_site, "hostile-title"), "letters", email_site.config())
    assert single.subject == HOSTILE_TITLE


LONG_CTA = "cta: '" + '"><svg onload=alert(5)>' * 3 + "{{7*7}}'"


@pytest.mark.parametrize("cta", ["button", "line"])
def test_every_article_field_is_escaped_in_every_email_template(email_site, cta):
    text = EVERY_FIELD.read_text(encoding="utf-8")
    if cta == "line":
        text = re.sub(r"^cta: .*$", lambda _: LONG_CTA, text, flags=re.MULTILINE)
    (email_site.content / EVERY_FIELD.name).write_text(text, encoding="utf-8")
    config = email_site.config()
    article = _article(email_site, "every-field")
    single = compose_single(article, "letters", config)
    drafts = [digest(email_site), single]
    hostile = Recipient("r@example.org", "<script>alert(7)</script>")
    for draft in drafts:
        sent = build_message(draft, hostile, config).get_body(("html",)).get_content()
        for html in (draft.html, sent):
            page = assert_inert(html)
            visible = " ".join(page.text_content().split())
            assert article.title in visible  # the Jinja syntax in it shown, not evaluated
            assert "{% if true %}evaluated{% endif %}" in visible and "{{7*7}}" in visible
            assert '"><img src=x onerror=alert(2)>' in visible and 'Eve" onmouseover="alert(4)' in visible
            hero = page.xpath("//img[contains(@src, '/x.png')]")
            assert hero and hero[0].get("src") == article.hero_image and not hero[0].get("onerror")
        assert "Hi <script>alert(7)</script>," in lxml.html.fromstring(sent).text_content()
    assert single.subject == article.title
    assert lxml.html.fromstring(single.html).findtext(".//title") == article.title


def test_header_injection_title_cannot_leave_the_subject(email_site):
    shutil.copy(DATA / "email" / "hostile" / "header-injection.md", email_site.content)
    article = _article(email_site, "header-injection")
    raw = dataclasses.replace(article, title="Hello\r\nBcc: victim@example.com\x00\x85")
    draft = compose_single(raw, "letters", email_site.config())
    assert draft.subject == "Hello Bcc: victim@example.com"
    assert clean_header_text("a\u2028b\tc\r\n d") == "a b c d"


def test_templates_cannot_reach_the_unsubscribe_secret(email_site, monkeypatch):
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "s3cret-value")
    email_site.data["site"]["unsubscribe_secret"] = "${UNSUBSCRIBE_SECRET}"
    with pytest.raises(TemplateError, match="has no attribute 'unsubscribe_secret'"):
        digest(email_site, subject="{{ site.unsubscribe_secret.get_secret_value() }}")


def test_subject_is_a_jinja_expression_from_the_config(email_site):
    subject = "{{ site.name }} {{ date }}: {{ articles|map(attribute='title')|first }} & more"
    draft = digest(email_site, subject=subject)
    assert draft.subject == "Test Weekly 2024-03-11: Why Fog Signals Went Quiet & more"


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("{{ site.name ", "channels.weekly.subject: line 1: unexpected end of template"),
        (
            "{{ site.nmae }}",
            "channels.weekly.subject: 'dict object' has no attribute 'nmae'",
        ),
    ],
)
def test_bad_subject_is_a_template_error_naming_the_key(email_site, subject, message):
    with pytest.raises(TemplateError) as caught:
        digest(email_site, subject=subject)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_single_mode_makes_one_email_per_published_article(email_site):
    config = email_site.config()
    articles = load_articles(config).articles
    drafts = compose_email_channel(articles, "letters", config, datetime(2030, 1, 1, tzinfo=UTC))
    assert sorted(d.key for d in drafts) == [
        "letters:fog-signals",
        "letters:harbour-economics",
        "letters:lamp-keepers",
        "letters:tide-tables",
    ]
    fog = next(d for d in drafts if d.key == "letters:fog-signals")
    assert fog.subject == "Why Fog Signals Went Quiet" and fog.overflow == ()
    assert "View in browser: https://example.com/articles/fog-signals" in fog.text


def test_a_digest_window_without_articles_makes_no_draft(email_site):
    config = email_site.config()
    articles = load_articles(config).articles
    assert compose_email_channel(articles, "weekly", config, datetime(2024, 3, 1, tzinfo=UTC)) == []


def test_social_or_unknown_channels_are_not_email_channels(email_site):
    with pytest.raises(ConfigError, match="'linkedin' is not an email channel"):
        compose_single(_article(email_site, "fog-signals"), "linkedin", email_site.config())


def test_content_hash_is_stable_and_follows_the_content(email_site):
    first, again = digest(email_site), digest(email_site)
    assert first.content_hash == again.content_hash and first.html_bytes == len(first.html.encode())
    assert digest(email_site, subject="Other").content_hash != first.content_hash


def test_archive_url_gives_view_in_browser_links(email_site):
    email_site.data["site"]["archive_url"] = "https://example.com/letters"
    draft = digest(email_site)
    assert draft.view_url == "https://example.com/letters/weekly-2024-03-11.html"
    assert draft.view_url in _Page(draft.html).links


def test_rendering_never_touches_the_network(email_site, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access during rendering: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    email_site.data["site"]["fonts"] = {"Lato": "https://fonts.example.net/css?family=Lato"}
    html = digest(email_site).html
    assert "https://fonts.example.net/css?family=Lato" in html  # linked for the reader, never fetched
    assert "font-family:Lato, Helvetica, Arial, sans-serif" in html.replace('"', "")


def test_sixty_long_articles_stay_under_the_clip_limit_with_the_overflow_listed(email_site):
    write_articles(email_site.content, 60)
    email_site.data["channels"]["weekly"]["max_articles"] = 64
    draft = digest(email_site)
    assert len(draft.articles) == 64
    assert draft.sent_bytes <= 100_000 - 1024
    assert 0 < len(draft.overflow) < 64
    page = _Page(draft.html)
    assert "More this week" in page.visible
    for article in draft.overflow:
        assert article.title in page.visible
        assert article.url + "?utm_source=newsletter" in draft.text
    assert page.visible.rstrip().endswith("1 Example Street, London")  # footer survives
    assert any("article(s) as links" in w for w in draft.warnings)


def test_extras_are_dropped_before_articles_move_to_the_more_list(email_site):
    write_articles(email_site.content, 12)
    full = digest(email_site)
    draft = digest(email_site, clip_limit=full.sent_bytes + 1024 - 1)
    assert draft.overflow == () and len(draft.articles) == 16
    assert "dropped images and descriptions" in draft.warnings[-1]
    assert "<img" not in draft.html


def test_clip_limit_too_small_for_any_digest_is_a_clear_error(email_site):
    with pytest.raises(TemplateError, match="even a digest of one link is over the clip limit of 2000 bytes"):
        digest(email_site, clip_limit=2000)


def _template_site(email_site, name: str, source: str) -> None:
    folder = email_site.root / "templates" / "email"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(source, encoding="utf-8")
    email_site.data["templates"] = "templates"
    email_site.data["channels"]["weekly"]["template"] = name


MINIMAL = """{% import "email/parts.mjml" as parts %}
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>{{ heading }} {{ recipient.greeting }}</mj-text>
LINE_SEVEN
      </mj-column>
    </mj-section>
    {{ parts.footer(site, view_url, unsubscribe_url) }}
  </mj-body>
</mjml>
"""


def test_a_channel_template_overrides_the_file_and_can_use_the_shipped_parts(email_site):
    _template_site(email_site, "plain.mjml", MINIMAL.replace("LINE_SEVEN", "<mj-text>Custom</mj-text>"))
    page = _Page(digest(email_site).html)
    assert "The week to 11 March 2024" in page.visible and "Custom" in page.visible


@pytest.mark.parametrize(
    ("line_seven", "expected"),
    [
        ("{% if %}", "broken.mjml:7: Expected an expression"),
        (
            "<mj-text>{{ articles[0].nope }}</mj-text>",
            "broken.mjml:7: 'syndicate.compose.email._ArticleView object' has no attribute 'nope'",
        ),
        (
            "<mj-text>unclosed",
            "broken.mjml:7: MJML: unexpected end of stream in root template (<mj-text> is not",
        ),
        ("<mj-txet>typo</mj-txet>", "broken.mjml: MJML: unknown element <mj-txet>"),
    ],
)
def test_template_mistakes_are_one_line_errors_naming_file_and_line(email_site, line_seven, expected):
    _template_site(email_site, "broken.mjml", MINIMAL.replace("LINE_SEVEN", line_seven))
    with pytest.raises(TemplateError) as caught:
        digest(email_site)
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message
    assert str(Path(email_site.root / "templates" / "email" / "broken.mjml")) in message


def test_missing_template_is_a_clear_error(email_site):
    email_site.data["channels"]["weekly"]["template"] = "nope.mjml"
    with pytest.raises(TemplateError, match="email/nope.mjml: no such template"):
        digest(email_site)


def _article(site, slug: str):
    return next(a for a in load_articles(site.config()).articles if a.slug == slug)


def test_site_cta_stands_in_and_points_to_site_cta_url_and_the_image_keeps_its_alt(site):
    """An article with no cta of its own gets `site.cta`, its button pointing at `site.cta_url`
    (the article's link stays on its title); an image map's alt text is the image's alt."""
    site.data["site"]["cta"] = "Follow us on LinkedIn"
    site.data["site"]["cta_url"] = "https://www.linkedin.example/company/test-weekly"
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["mail-outbox"]}}
    site.article(
        "quay.md",
        "---\ntitle: The quay\ndate: 2024-01-01\ndescription: D\n"
        "image: {path: 'https://img.example/quay.jpg', alt: 'Boats along the quay'}\n---\nText.\n",
    )
    config = site.config()
    loaded = load_articles(config)
    assert not [p for p in loaded.warnings if p.field == "cta"]
    (article,) = loaded.articles
    draft = compose_single(article, "letters", config)
    page = lxml.html.fromstring(draft.html)
    buttons = [a for a in page.iter("a") if a.text_content().strip() == "Follow us on LinkedIn"]
    assert buttons and all(
        a.get("href").startswith("https://www.linkedin.example/company/test-weekly") for a in buttons
    )
    assert any(a.get("href", "").startswith(article.url) for a in page.iter("a"))
    assert [img.get("alt") for img in page.iter("img") if "quay.jpg" in img.get("src", "")] == [
        "Boats along the quay"
    ]
    assert "Follow us on LinkedIn\nhttps://www.linkedin.example/company/test-weekly" in draft.text
    assert article.url in draft.text


@pytest.mark.parametrize(
    ("own", "site_url", "expected"),
    [
        ("cta_url: 'https://social.example/@weekly'\n", None, "https://social.example/@weekly"),
        (
            "cta_url: 'https://social.example/@weekly'\n",
            "https://site-wide.example/",
            "https://social.example/@weekly",
        ),
        ("", "https://site-wide.example/follow", "https://site-wide.example/follow"),
        ("cta_url: '/follow/'\n", None, "https://example.com/follow/"),  # a path under site.base_url
        ("", None, None),  # the article itself
    ],
)
def test_an_article_s_own_cta_leads_to_its_cta_url_else_the_site_s(site, own, site_url, expected):
    site.data["site"]["cta_url"] = site_url
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["mail-outbox"]}}
    site.article(
        "quay.md", f"---\ntitle: The quay\ndate: 2024-01-01\ncta: 'Follow the harbour'\n{own}---\nText.\n"
    )
    config = site.config()
    (article,) = load_articles(config).articles
    page = lxml.html.fromstring(compose_single(article, "letters", config).html)
    [href] = [a.get("href") for a in page.iter("a") if a.text_content().strip() == "Follow the harbour"]
    assert href.split("?")[0] == (expected or article.url)


def test_a_cta_url_that_is_not_http_refuses_the_article_naming_the_field(site):
    site.article(
        "bad.md", "---\ntitle: Bad\ndate: 2024-01-01\ncta: Go\ncta_url: 'javascript:alert(1)'\n---\nT.\n"
    )
    site.article("good.md", "---\ntitle: Good\ndate: 2024-01-02\ncta: Go\n---\nT.\n")
    loaded = load_articles(site.config())
    assert [a.slug for a in loaded.articles] == ["good"]
    [problem] = [p for p in loaded.problems if p.severity == "error"]
    assert problem.field == "cta_url" and "is not an http(s) URL" in str(problem) and "bad.md" in str(problem)


# --- body: full (issue 15, item 7) -------------------------------------------------------------

FERRY_NOTES = """\
---
title: 'Notes from the Ferry Slipway'
description: 'A teaser: tides, timetables and a table of crossings.'
url: 'https://site.example/posts/ferry-notes/'
publish_date: '2024-03-09 09:00'
heroImage: 'https://images.example.org/ferry.jpg'
cta: 'Read it on the site'
---

The first ferry leaves when [the tide](../tides/) allows, not when the [timetable](/timetable.pdf) says.

![The slipway at low water](slipway.jpg)

| Crossing | Minutes |
|----------|--------:|
| Morning  | 12      |
| Evening  | 15      |

```text
HW  06:12  4.9 m
LW  12:31  0.8 m
```
"""


def _letters(site, body: str | None = "full", **article):
    """The `letters` single channel with `body` (None: unset), and one article composed by it."""
    if body is None:
        site.data["channels"]["letters"].pop("body", None)
    else:
        site.data["channels"]["letters"]["body"] = body
    config = site.config()
    return config, compose_single(
        dataclasses.replace(_article(site, "ferry-notes"), **article), "letters", config
    )


def _body_cell(page):
    """The article body's cell in the rendered email (the mj-text with css-class article-body)."""
    cells = page.xpath("//td[contains(concat(' ', @class, ' '), ' article-body ')]")
    assert len(cells) == 1
    return cells[0]


def _style(element) -> dict[str, str]:
    pairs = (d.split(":", 1) for d in (element.get("style") or "").split(";") if ":" in d)
    return {name.strip(): value.strip() for name, value in pairs}


def test_body_full_sends_the_whole_article_made_email_safe(email_site):
    email_site.article("ferry-notes.md", FERRY_NOTES)
    config, draft = _letters(email_site)
    page = lxml.html.fromstring(draft.html)
    body = _body_cell(page)
    # Links and a page bundle's image, absolute against the article's own URL.
    assert body.xpath(".//a/@href") == [
        "https://site.example/posts/tides/",
        "https://site.example/timetable.pdf",
    ]
    (image,) = body.xpath(".//img")
    assert image.get("src") == "https://site.example/posts/ferry-notes/slipway.jpg"
    assert image.get("alt") == "The slipway at low water" and image.get("width") == "544"
    assert _style(image)["max-width"] == "100%"
    # The table and the code block, styled inline for email clients.
    cells = body.xpath(".//table//th | .//table//td")
    assert [c.text_content() for c in cells] == ["Crossing", "Minutes", "Morning", "12", "Evening", "15"]
    assert all(_style(c)["border"].startswith("1px solid") and _style(c)["padding"] for c in cells)
    (pre,) = body.xpath(".//pre")
    assert pre.text_content() == "HW  06:12  4.9 m\nLW  12:31  0.8 m\n"
    assert "monospace" in _style(pre)["font-family"] and _style(pre)["white-space"] == "pre-wrap"
    # Title, hero image, call to action and footer as in a teaser email; the teaser itself is gone.
    assert page.xpath("//a[.='Notes from the Ferry Slipway']/@href") == [
        "https://site.example/posts/ferry-notes/"
    ]
    assert page.xpath("//img[@src='https://images.example.org/ferry.jpg']")
    assert page.xpath("//a[.='Read it on the site']/@href") == ["https://site.example/posts/ferry-notes/"]
    assert page.xpath("//a[.='Unsubscribe']/@href") == [PLACEHOLDERS["unsubscribe_url"]]
    assert "A teaser" not in " ".join(page.xpath("//td//text()"))
    assert not any("bytes" in w for w in draft.warnings)
    # The text part: the same body, readable.
    words = " ".join(draft.text.split())
    assert (
        "The first ferry leaves when the tide (https://site.example/posts/tides/) allows, "
        "not when the timetable (https://site.example/timetable.pdf) says."
    ) in words
    assert (
        "\n\n[The slipway at low water]\n\nCrossing | Minutes\nMorning | 12\nEvening | 15\n\n" in draft.text
    )
    assert (
        "HW  06:12  4.9 m\nLW  12:31  0.8 m\n\nRead it on the site\nhttps://site.example/posts/ferry-notes/\n"
        in draft.text
    )
    assert "A teaser" not in draft.text and "<" not in draft.text.replace(PLACEHOLDERS["greeting"], "")
    # What a reader gets: both parts carry the body.
    message = build_message(draft, Recipient("reader@example.org", "Reader"), config)
    assert "HW  06:12  4.9 m" in message.get_body(("plain",)).get_content()
    sent = lxml.html.fromstring(message.get_body(("html",)).get_content())
    assert _body_cell(sent).xpath(".//img/@src") == ["https://site.example/posts/ferry-notes/slipway.jpg"]


def test_body_defaults_to_the_teaser(email_site):
    email_site.article("ferry-notes.md", FERRY_NOTES)
    config, draft = _letters(email_site, body=None)
    assert config.channels["letters"].body == "teaser"
    page = lxml.html.fromstring(draft.html)
    assert (
        page.xpath("//td[contains(@class, 'article-body')] | //pre | //img[contains(@src, 'slipway')]") == []
    )
    assert "A teaser: tides, timetables and a table of crossings." in " ".join(page.xpath("//td//text()"))
    assert (
        "A teaser: tides, timetables and a table of crossings." in draft.text
        and "HW  06:12" not in draft.text
    )
    assert _letters(email_site, body="teaser")[1].content_hash == draft.content_hash


def test_body_full_with_an_empty_body_sends_the_teaser(email_site):
    email_site.article("ferry-notes.md", FERRY_NOTES)
    teaser = _letters(email_site, body="teaser")[1]
    assert _letters(email_site, body_html="")[1].content_hash == teaser.content_hash


INJECTED_BODY = (
    '<p onclick="alert(1)">Injected <script>alert(2)</script><a href="javascript:alert(3)">link</a>'
    '<a href=" JaVaScRiPt:alert(4)">two</a><img src="x.png" onerror="alert(5)" alt="x"></p>'
    '<iframe src="https://evil.example/"></iframe><style>* { display: none }</style>'
    '<object data="https://evil.example/o"></object><embed src="https://evil.example/e"></embed>'
    '<form action="https://evil.example/"><input name="p"></form><svg onload="alert(6)"></svg>'
    "<!--[if mso]><script>alert(7)</script><![endif]--><p>Safe end</p>"
)


def test_body_full_lets_nothing_active_through_even_html_injected_into_body_html(email_site):
    email_site.article("ferry-notes.md", FERRY_NOTES)
    config, draft = _letters(email_site, body_html=INJECTED_BODY)
    sent = (
        build_message(draft, Recipient("reader@example.org", "Reader"), config)
        .get_body(("html",))
        .get_content()
    )
    for html in (draft.html, sent):
        page = assert_inert(html)  # no script, no on* attribute anywhere
        body = _body_cell(page)
        assert body.xpath(".//iframe | .//style | .//object | .//embed | .//form | .//input | .//svg") == []
        assert page.xpath("//iframe | //object | //embed | //form") == []
        assert body.xpath(".//a") == [] and body.xpath(".//img/@src") == [
            "https://site.example/posts/ferry-notes/x.png"
        ]
        assert not any("javascript" in url.lower() for url in page.xpath("//@href | //@src"))
        assert "Injected linktwo" in body.text_content() and "Safe end" in body.text_content()
    assert "alert(" not in draft.text and "Injected linktwo[x]" in draft.text


def test_body_full_keeps_markup_and_template_syntax_in_a_body_as_text(email_site):
    shutil.copy(EVERY_FIELD, email_site.content)
    email_site.data["channels"]["letters"]["body"] = "full"
    config = email_site.config()
    draft = compose_single(_article(email_site, "every-field"), "letters", config)
    page = assert_inert(draft.html)
    assert "Body with {{ 7*7 }} and <script>alert(8)</script> and a link." in _body_cell(page).text_content()
    assert _body_cell(page).xpath(".//a/@href") == ["https://example.org/?q=%22%3E%3Cscript%3E"]


def test_body_full_over_the_clip_limit_is_cut_between_blocks_with_the_rest_linked(email_site):
    paragraphs = [
        f"Paragraph {n}: " + "the ferry waits for the tide at the slipway. " * 5 for n in range(1, 401)
    ]
    email_site.article(
        "ferry-notes.md", FERRY_NOTES.split("\n---\n")[0] + "\n---\n\n" + "\n\n".join(paragraphs)
    )
    config, draft = _letters(email_site)
    assert draft.html_bytes + draft.html.count("\n") + 1024 <= config.channels["letters"].clip_limit
    (warning,) = [w for w in draft.warnings if "cut" in w]
    kept = int(re.search(r"the article cut after (\d+) of 400 blocks, the rest linked", warning).group(1))
    assert 100 < kept < 400
    body = _body_cell(lxml.html.fromstring(draft.html))
    assert [p.text_content().split(":")[0] for p in body.xpath("./div/div/p")] == [
        f"Paragraph {n}" for n in range(1, kept + 1)
    ]
    page = lxml.html.fromstring(draft.html)
    assert page.xpath("//a[.='Read it on the site']") and page.xpath("//a[.='Unsubscribe']")
    assert "The article continues on the site." in " ".join(page.xpath("//td//text()"))
    assert f"Paragraph {kept}:" in draft.text and f"Paragraph {kept + 1}:" not in draft.text
    assert (
        "The article continues on the site.\n\nRead it on the site\nhttps://site.example/posts/ferry-notes/"
        in draft.text
    )
    # Under a larger limit, the whole article.
    email_site.data["channels"]["letters"]["clip_limit"] = 1_000_000
    whole = _letters(email_site)[1]
    assert len(_body_cell(lxml.html.fromstring(whole.html)).xpath("./div/div/p")) == 400
    assert not any("bytes" in w for w in whole.warnings) and "continues on the site" not in whole.text


def test_body_full_whose_first_block_is_over_the_clip_limit_sends_the_teaser(email_site):
    email_site.article("ferry-notes.md", FERRY_NOTES)
    huge = "<pre><code>" + "HW  06:12  4.9 m\n" * 7000 + "</code></pre><p>After the table of tides.</p>"
    teaser = _letters(email_site, body="teaser")[1]
    _, draft = _letters(email_site, body_html=huge)
    assert draft.html == teaser.html and draft.text == teaser.text
    assert draft.warnings[-1] == "over 100000 bytes: the teaser instead of the whole article"


def test_the_digest_is_accessible_html_for_every_client(email_site):
    """The shipped digest: doctype, a language, pixel image widths (Outlook), one h2 per article,
    the preheader hidden without white text, light and dark colour schemes declared."""
    draft = digest(email_site)
    assert draft.html.startswith("<!doctype html>")
    page = lxml.html.fromstring(draft.html)
    assert (page.get("lang"), page.get("dir")) == ("und", "auto")
    assert [img.get("width") for img in page.xpath("//img")] == ["544"] * len(page.xpath("//img")) != []
    assert [h.text_content() for h in page.xpath("//h2")] == [a.title for a in draft.articles]
    assert page.xpath("//h1") == []
    assert "#ffffff" not in page.xpath("//body/div")[0].get("style")
    assert page.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]


def test_a_single_email_title_is_its_h1_in_the_site_language(email_site):
    email_site.data["site"]["language"] = "en-GB"
    config = email_site.config()
    article = next(a for a in load_articles(config).articles if a.slug == "tide-tables")
    page = lxml.html.fromstring(compose_single(article, "letters", config).html)
    assert (page.get("lang"), page.get("dir")) == ("en-GB", "ltr")
    assert [h.text_content() for h in page.xpath("//h1")] == [article.title]
    assert page.xpath("//h1//a/@href")[0].startswith(article.url)


def test_css_inlining_leaves_client_blocks_alone_and_keeps_angles_out_of_the_markup():
    from syndicate.compose.email import _inline_css

    thunderbird = (
        '<style media="screen and (min-width:480px)">.moz-text-html .col { width:100% !important; }</style>'
    )
    fonts = '<style type="text/css">@import url(https://fonts.example.net/css?family=Lato);</style>'
    html = _inline_css(
        "<!doctype html><html><head>"
        f'<link href="https://fonts.example.net/css?family=Lato" rel="stylesheet">{fonts}{thunderbird}'
        "<style>.title a { color: #1b1b1b } @media (max-width: 480px) { .title a { font-size: 20px } }</style>"
        '</head><body><p class="title"><a href="#" title="a &lt;script&gt; b">x &lt; y</a></p></body></html>'
    )
    assert html.startswith("<!doctype html>")
    assert thunderbird in html and fonts in html  # as written: neither inlined nor dropped
    assert '<link href="https://fonts.example.net/css?family=Lato" rel="stylesheet">' in html
    assert "@media (max-width: 480px)" in html
    assert re.search(r'<a href="#" title="a &lt;script&gt; b" style="color: ?#1b1b1b;?">x &lt; y</a>', html)
