"""Rendering fidelity: every character of every script in every attribute, pixel image widths,
the doctype, `lang`/`dir` from the site and each article, headings, bidi-isolated names, dark
mode, the hidden preheader; then the same HTML in headless Chromium at 600 and 375 px wide,
screenshots kept under the pytest tmp dir, right-to-left titles checked as laid out."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import mjml
import pytest

from syndicate.compose.email import EmailDraft, compose_digest, compose_single
from syndicate.compose.mime import build_message
from syndicate.compose.mjml_output import PREHEADER_STYLE, SNIPPET_CHARS, unescape_attributes
from syndicate.content import load_articles
from syndicate.content.article import Article
from syndicate.errors import ConfigError
from syndicate.language import direction
from syndicate.recipients import Recipient

from .conftest import DATA, chromium_driver, needs_chromedriver

ARTICLES = DATA / "i18n" / "articles"
LITERAL = DATA / "i18n" / "literal" / "rust-escapes.md"
WINDOW_END = datetime(2024, 3, 11, 8, 0, tzinfo=ZoneInfo("Europe/London"))
HERO_WIDTH = "544"  # the 600 px body less the 28 px paddings either side


def _load(site, *paths: Path, language: str | None = None) -> dict[str, Article]:
    for path in paths:
        shutil.copy(path, site.content / path.name)
    if language is not None:
        site.data["site"]["language"] = language
    site.write_config()
    loaded = load_articles(site.config())
    assert loaded.errors == []
    return {a.slug: a for a in loaded.articles}


def _digest(site, language: str | None = None) -> tuple[EmailDraft, dict[str, Article]]:
    articles = _load(site, *sorted(ARTICLES.glob("*.md")), language=language)
    draft = compose_digest(list(articles.values()), "weekly", site.config(), window_end=WINDOW_END)
    assert draft.warnings == () or all("unsubscribe" in w for w in draft.warnings)  # nothing dropped
    return draft, articles


def _frontmatter_alt(article: Article) -> str:
    assert article.hero_alt is not None
    return article.hero_alt


def test_every_script_survives_in_every_attribute_of_a_digest(site):
    draft, articles = _digest(site)
    assert "\\u{" not in draft.html
    page = lxml.html.fromstring(draft.html)
    for value in page.xpath("//@*"):
        assert "\\u" not in value and "\\\\" not in value
    alts = page.xpath("//img/@alt")
    # Each alt text as its frontmatter wrote it: ZWJ emoji, harakat, niqqud, viramas, Thai, soft hyphen.
    assert sorted(alts) == sorted(_frontmatter_alt(a) for a in articles.values())
    assert any("\u200d" in alt for alt in alts) and any("\u00ad" in alt for alt in alts)
    assert any("\u064e" in alt for alt in alts)  # Arabic fatha
    assert any("\u05b4" in alt for alt in alts)  # Hebrew hiriq
    assert any("\u094d" in alt for alt in alts) or any("\u0901" in alt for alt in alts)  # Devanagari


def test_each_single_email_keeps_its_title_in_title_and_aria_label(site):
    articles = _load(site, *sorted(ARTICLES.glob("*.md")))
    for article in articles.values():
        draft = compose_single(article, "weekly", site.config())
        page = lxml.html.fromstring(draft.html)
        assert page.xpath("//title")[0].text == article.title
        assert page.xpath("//div[@role='article']/@aria-label") == [article.title]
        assert page.xpath("//h1")[0].text_content() == article.title
        assert "\\u{" not in draft.html


def test_a_backslash_u_an_author_typed_survives_as_typed(site):
    article = _load(site, LITERAL)["rust-escapes"]
    assert "\\u{200d}" in article.title
    page = lxml.html.fromstring(compose_single(article, "weekly", site.config()).html)
    assert page.xpath("//h1")[0].text_content() == article.title  # text: as typed
    assert page.xpath("//div[@role='article']/@aria-label") == [article.title]  # attribute: as typed
    assert page.xpath("//img/@alt") == ["The text \\u{200d} and a mechanic 👩\u200d🔧, path C:\\tools\\new"]
    assert "Kit \\ Backslash" in page.text_content()


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "joiner 👩\u200d🔧 virama क्ष harakat بِ thai ที่ soft\u00adhyphen",
        "typed \\u{41} and \\ alone and \\\\ two and \\n and a tab\tend",
        "quote ' apostrophe and an ampersand &amp; already escaped",
    ],
)
def test_unescaping_inverts_what_mrml_wrote(value):
    source = f'<mjml><mj-body><mj-section><mj-column><mj-image src="https://e.org/i.png" alt="{value}" /></mj-column></mj-section></mj-body></mjml>'  # noqa: E501
    written = mjml.mjml2html(source)
    alt = re.search(r'<img alt="([^"]*)"', unescape_attributes(written))
    assert alt is not None
    assert lxml.html.fromstring(f'<p title="{alt.group(1)}"></p>').get("title") == value.replace("&amp;", "&")


def test_an_attribute_mrml_did_not_escape_is_left_alone():
    html = '<div style="font-family:\'A\\B\'" title="x\\u{41}"></div>'  # a lone \B: not mrml's escaping
    assert unescape_attributes(html) == '<div style="font-family:\'A\\B\'" title="xA"></div>'


def test_images_keep_pixel_widths_and_the_doctype_is_kept(site):
    draft, _ = _digest(site)
    assert draft.html.startswith("<!doctype html>")
    page = lxml.html.fromstring(draft.html)
    images = page.xpath("//img")
    assert len(images) == 6
    for image in images:
        assert image.get("width") == HERO_WIDTH  # pixels, never 100% (Outlook for Windows)
        assert image.get("height") == "auto"  # MJML's: the image's own ratio


def test_html_lang_is_undetermined_without_a_language_and_the_site_language_when_set(site):
    draft, _ = _digest(site)
    root = lxml.html.fromstring(draft.html)
    assert (root.get("lang"), root.get("dir")) == ("und", "auto")
    site.data["site"]["language"] = "ar"
    config = site.config()
    articles = load_articles(config).articles
    root = lxml.html.fromstring(compose_digest(articles, "weekly", config, window_end=WINDOW_END).html)
    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")
    assert root.xpath("//div[@role='article']/@dir") == ["rtl"]


def test_a_single_email_takes_its_article_language(site):
    articles = _load(site, *sorted(ARTICLES.glob("*.md")), language="en")
    root = lxml.html.fromstring(compose_single(articles["tide-times-ar"], "weekly", site.config()).html)
    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")
    root = lxml.html.fromstring(compose_single(articles["family-boat"], "weekly", site.config()).html)
    assert (root.get("lang"), root.get("dir")) == ("en", "ltr")


def test_each_article_block_has_its_own_language_direction_and_side(site):
    draft, articles = _digest(site, language="en")
    page = lxml.html.fromstring(draft.html)
    titles = page.xpath("//h2")
    assert sorted(h.text_content() for h in titles) == sorted(a.title for a in articles.values())
    assert 'align="start"' not in draft.html  # text-align:start stays CSS, not an invalid attribute
    assert page.xpath("//h1") == []
    by_title = {h.text_content(): h for h in titles}
    expected = {"ar": "rtl", "he": "rtl", "ja": "ltr", "hi": "ltr", "th": "ltr"}
    for article in articles.values():
        heading = by_title[article.title]
        if article.lang is None:
            assert (heading.get("lang"), heading.get("dir")) == (None, "auto")
        else:
            assert (heading.get("lang"), heading.get("dir")) == (article.lang, expected[article.lang])
        cell = heading.getparent().getparent()  # the mj-text's td
        assert cell.get("align") == ("right" if heading.get("dir") == "rtl" else "left")


def test_the_author_is_isolated_in_the_meta_line(site):
    draft, _ = _digest(site, language="en")
    page = lxml.html.fromstring(draft.html)
    assert "ليلى حداد" in page.xpath("//bdi/text()")
    meta = next(td for td in page.xpath("//td[contains(@class, 'meta')]") if "ليلى" in td.text_content())
    assert " ".join(meta.text_content().split()).startswith("By ليلى حداد · 1 min read · ")
    assert "By ليلى حداد · 1 min read" in draft.text  # the text part: no markup


def test_dark_mode_is_declared_and_styled(site):
    draft, _ = _digest(site)
    page = lxml.html.fromstring(draft.html)
    assert page.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]
    assert page.xpath("//meta[@name='supported-color-schemes']/@content") == ["light dark"]
    styles = " ".join(page.xpath("//style/text()"))
    assert "@media (prefers-color-scheme: dark)" in styles


def test_the_preheader_is_hidden_without_white_text_and_padded(site):
    draft, _ = _digest(site)
    page = lxml.html.fromstring(draft.html)
    preheader = page.xpath("//body/div")[0]
    assert preheader.get("style") == PREHEADER_STYLE
    style = preheader.get("style").replace(" ", "").lower()
    assert "color" not in style and "#fff" not in style
    assert {"display:none", "mso-hide:all", "max-height:0px", "opacity:0"} <= set(style.split(";"))
    text = preheader.text_content()
    assert text.startswith(draft.preheader)
    padding = text[len(draft.preheader) :]
    assert set(padding) == {"\u034f", "\u200c", "\u00a0"}  # invisible, and no body text
    assert SNIPPET_CHARS <= len(text) < SNIPPET_CHARS + 3


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin is not installed")
def test_spamassassin_finds_no_low_contrast_text(site):
    """SpamAssassin scored mrml's white preheader HTML_FONT_LOW_CONTRAST (+0.7); local rules only."""
    draft, _ = _digest(site)
    message = build_message(draft, Recipient("reader@example.org", "Reader"), site.config())
    done = subprocess.run(
        ["spamassassin", "-L", "-t"], input=bytes(message), capture_output=True, timeout=120, check=True
    )
    status = re.search(rb"^X-Spam-Status: .*?(?=^\S)", done.stdout, re.MULTILINE | re.DOTALL)
    assert status is not None, done.stdout[:2000]
    assert b"HTML_FONT_LOW_CONTRAST" not in status.group()
    assert b" tests=" in status.group()  # the rules that fired are listed: the check looked


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("ar", "rtl"), ("he", "rtl"), ("fa-IR", "rtl"), ("ur", "rtl"), ("yi", "rtl"), ("az-Arab", "rtl"),
        ("en", "ltr"), ("ja", "ltr"), ("hi", "ltr"), ("th", "ltr"), ("ku-Latn", "ltr"), ("uz-Cyrl", "ltr"),
    ],
)  # fmt: skip
def test_direction_follows_the_script_subtag_else_the_language(tag, expected):
    assert direction(tag) == expected


def test_a_language_that_is_not_a_tag_is_refused(site):
    site.data["site"]["language"] = "English please"
    with pytest.raises(ConfigError, match="is not a language tag"):
        site.config()
    site.data["site"]["language"] = "pt_BR"
    assert site.config().site.language == "pt-BR"
    site.data["site"].pop("language")
    site.article("bad.md", "---\ntitle: T\npublish_date: '2024-03-08'\nlang: 'Arabic script'\n---\nx\n")
    [problem] = [p for p in load_articles(site.config()).errors]
    assert problem.field == "lang" and "is not a language tag" in problem.message


# In Chromium: the digest laid out at 600 and 375 px, screenshots kept, RTL titles on the right.

needs_browser = needs_chromedriver


@pytest.fixture
def browser(tmp_path):
    with chromium_driver(tmp_path / "profile", 800, 900) as driver:
        yield driver


def _at_width(browser, width: int) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 480},
    )


def _screenshot(browser, path: Path, width: int) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 480},
    )
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000


# Where a title's text sits inside its heading: the gaps on its left and its right, in px.
TEXT_GAPS = """
const heading = arguments[0];
const range = document.createRange();
range.selectNodeContents(heading);
const text = range.getBoundingClientRect(), box = heading.getBoundingClientRect();
const style = getComputedStyle(heading);
return {left: text.left - box.left, right: box.right - text.right, direction: style.direction,
        align: style.textAlign};
"""
# The left edge of a substring of an element's text, in px (through its text nodes).
LEFT_OF = """
const [element, needle] = arguments;
const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
let seen = '';
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const at = node.data.indexOf(needle);
  if (at >= 0) {
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + needle.length);
    return range.getBoundingClientRect().left;
  }
}
return null;
"""


@needs_browser
def test_digest_in_chromium_rtl_titles_on_the_right_and_screenshots(site, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By

    draft, articles = _digest(site, language="en")
    shots = tmp_path_factory.mktemp("render-i18n-screenshots")
    page = shots / "digest.html"
    page.write_text(draft.html, encoding="utf-8")
    titles = {a.title: a for a in articles.values()}
    for width in (600, 375):
        _at_width(browser, width)
        browser.get(page.as_uri())
        headings = browser.find_elements(By.TAG_NAME, "h2")
        assert len(headings) == len(articles)
        for heading in headings:
            article = titles[heading.text]
            gaps = browser.execute_script(TEXT_GAPS, heading)
            if article.lang in ("ar", "he"):
                assert gaps["direction"] == "rtl"
                assert gaps["right"] < 2 < gaps["left"], (width, article.slug, gaps)  # hugs the right
            else:
                assert gaps["direction"] == "ltr"
                assert gaps["left"] < 2 < gaps["right"], (width, article.slug, gaps)
        meta = next(m for m in browser.find_elements(By.CSS_SELECTOR, "td.meta div") if "ليلى" in m.text)
        name, minutes = (browser.execute_script(LEFT_OF, meta, s) for s in ("ليلى", "1 min read"))
        by = browser.execute_script(LEFT_OF, meta, "By")
        assert by < name < minutes, (width, by, name, minutes)  # "By <name> · 1 min read", in order
        preheader = browser.find_element(By.XPATH, "//body/div[1]")
        assert not preheader.is_displayed()
        assert preheader.size["height"] == 0
        _screenshot(browser, shots / f"digest-{width}.png", width)
    assert sorted(p.name for p in shots.glob("*.png")) == ["digest-375.png", "digest-600.png"]


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, two: str) -> float:
    high, low = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@needs_browser
def test_dark_mode_in_chromium_keeps_titles_and_text_readable(site, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By

    draft, _ = _digest(site, language="en")
    shots = tmp_path_factory.mktemp("render-i18n-dark")
    page = shots / "digest.html"
    page.write_text(draft.html, encoding="utf-8")
    _at_width(browser, 600)
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    browser.get(page.as_uri())
    card = browser.find_element(By.CSS_SELECTOR, "div.card")
    background = card.value_of_css_property("background-color")
    assert _luminance(background) < 0.05  # dark
    for selector in ("h2 a", "td.meta div", "td div[dir='auto']"):
        element = browser.find_element(By.CSS_SELECTOR, selector)
        colour = element.value_of_css_property("color")
        assert _contrast(colour, background) >= 4.5, (selector, colour, background)
    button = browser.find_element(By.CSS_SELECTOR, "td.button a")
    assert _contrast(button.value_of_css_property("color"), "rgb(31, 78, 121)") >= 4.5
    _screenshot(browser, shots / "digest-dark-600.png", 600)
