"""Length accounting checked against independent implementations: twitter-text-parser for X,
the `grapheme` package for Bluesky and Mastodon (production uses the `regex` module's \\X)."""

from __future__ import annotations

import grapheme
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twitter_text import extract_urls_with_indices, parse_tweet

from syndicate.compose.networks.bluesky import bluesky_facets, bluesky_length
from syndicate.compose.networks.linkedin import LINKEDIN_FOLD, linkedin_fold, linkedin_length
from syndicate.compose.networks.mastodon import mastodon_length
from syndicate.compose.networks.x import x_length
from syndicate.compose.textlength import graphemes, shorten, url_spans

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man, woman, girl, boy
KISS = "\U0001f469\u200d\u2764\ufe0f\u200d\U0001f48b\u200d\U0001f468"
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"
THUMBS_DARK = "\U0001f44d\U0001f3ff"
WAVE_MEDIUM = "\U0001f44b\U0001f3fd"
FLAG_GB, FLAG_JP, FLAG_UA = "\U0001f1ec\U0001f1e7", "\U0001f1ef\U0001f1f5", "\U0001f1fa\U0001f1e6"
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
KEYCAP = "#\ufe0f\u20e3"
WIKI = "https://en.wikipedia.org/wiki/Python_(programming_language)"

TRICKY = [
    "",
    "plain ascii words",
    "a" * 280,
    FAMILY,
    f"family {FAMILY} of four",
    KISS,
    RAINBOW_FLAG + " pride",
    THUMBS_DARK + WAVE_MEDIUM,
    f"flags {FLAG_GB}{FLAG_JP}{FLAG_UA}",
    ENGLAND + " football",
    KEYCAP + " keycap and 1\ufe0f\u20e3",
    "日本語のテキストです",
    "中文内容，包括标点。",
    "한국어 문장입니다",
    "mixed 日本 and English",
    "cafe\u0301 with a combining accent",
    "e\u0301e\u0301e\u0301 stacked z\u0335\u0321\u0322",
    "Ñandú, São Paulo, Zürich",
    "Ελληνικά και кириллица",
    "עברית וערבית: مرحبا",
    "quotes “curly” ‘single’ – dash — em … ellipsis",
    "See https://example.com and https://example.org/a/very/long/path/that/goes/on?query=1&b=2",
    f"read {WIKI} today",
    f"in parentheses ({WIKI})",
    "end of sentence https://example.com/page.",
    "comma after https://example.com/a, then text",
    "three https://a.co https://b.co/x https://c.example.net/y?z=1#frag",
    "http://example.com:8080/path_with_underscores/",
    "bare domain example.com in text",
    "bare with path example.com/articles/deep-dive",
    f"https://example.com/{FAMILY}",
    "© 2024 and ® marks",
    "tab\tand\nnew lines\r\nhere",
    "emoji then accent 😀\u0301",
    "zero width\u200bspace and\u200cnon-joiner",
    "#hashtag @mention $cashtag",
]


@pytest.mark.parametrize("text", TRICKY)
def test_x_length_agrees_with_twitter_text(text: str) -> None:
    assert x_length(text) == parse_tweet(text).weightedLength


@pytest.mark.parametrize("text", TRICKY)
def test_bluesky_length_agrees_with_grapheme_package(text: str) -> None:
    assert bluesky_length(text) == grapheme.length(text)


@pytest.mark.parametrize("text", TRICKY)
def test_mastodon_counts_graphemes_with_urls_as_23(text: str) -> None:
    # Mastodon links only URLs with a scheme: take those spans from twitter-text, not from us.
    urls = [u for u in extract_urls_with_indices(text) if u["url"].startswith(("http://", "https://"))]
    pieces, position = [], 0
    for url in urls:
        start, end = url["indices"]
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    expected = sum(grapheme.length(p) for p in pieces) + 23 * len(urls)
    assert mastodon_length(text) == expected


def test_the_table_is_tricky_enough() -> None:
    assert len(TRICKY) >= 30
    assert sum("https://" in t for t in TRICKY) >= 5


def test_url_spans_keep_balanced_parentheses_and_drop_final_punctuation() -> None:
    text = f"({WIKI}). Also https://example.com/page."
    found = [text[s:e] for s, e in url_spans(text)]
    assert found == [WIKI, "https://example.com/page"]


@pytest.mark.parametrize("text", ["Why Node.js won", "see config.yaml", "site index.html here"])
def test_bare_domain_shapes_never_count_less_than_x(text: str) -> None:
    # X links only known TLDs without a scheme; counting every domain-shaped word as a link
    # may overcount a little but must never undercount.
    assert x_length(text) >= parse_tweet(text).weightedLength


def test_newer_emoji_sequences_count_as_one() -> None:
    # Heart on fire (Emoji 13.1) is past twitter-text-parser's emoji list (12.0), which counts
    # it as three pieces; X counts every emoji sequence as 2.
    assert x_length("\u2764\ufe0f\u200d\U0001f525") == 2


def test_linkedin_counts_utf16_units() -> None:
    assert linkedin_length("abc") == 3
    assert linkedin_length(THUMBS_DARK) == 4
    assert linkedin_length("日本") == 2


def test_linkedin_fold_falls_on_a_grapheme_boundary() -> None:
    assert linkedin_fold("short post") is None
    text = "a" * (LINKEDIN_FOLD - 1) + FAMILY + " tail"
    fold = linkedin_fold(text)
    assert fold == LINKEDIN_FOLD - 1  # the family would cross the fold: it goes below, whole
    assert text[fold:].startswith(FAMILY)


@pytest.mark.parametrize(
    ("text", "keep", "expected"),
    [
        ("one two three four", 100, "one two three four"),
        ("one two three four", 12, "one two…"),
        ("one two three four", 14, "one two three…"),
        ("one, two. three", 10, "one, two…"),
        ("日本語のテキストです", 5, "日本語の…"),
        (FAMILY * 4, 3, f"{FAMILY}{FAMILY}…"),
        ("e\u0301e\u0301e\u0301e\u0301", 3, "e\u0301e\u0301…"),
        ("anything", 1, ""),
        ("   spaced    out   ", 100, "spaced out"),
    ],
)
def test_shorten(text: str, keep: int, expected: str) -> None:
    assert shorten(text, keep) == expected


_PIECES = st.sampled_from(["a", " ", "é", "e\u0301", FAMILY, FLAG_GB, "日", "b"])


@given(st.lists(_PIECES, max_size=60).map("".join))
def test_shorten_never_splits_a_grapheme_and_respects_keep(text: str) -> None:
    for keep in range(0, 25, 3):
        short = shorten(text, keep)
        assert grapheme.length(short) <= max(keep, 0) or short == " ".join(text.split())
        body = short.removesuffix("…")
        assert " ".join(text.split()).startswith(body)
        # Every cluster of the kept part is a whole cluster of the original.
        assert graphemes(body) == graphemes(" ".join(text.split()))[: len(graphemes(body))]


def test_bluesky_facets_use_utf8_byte_offsets() -> None:
    text = f"日本 {FAMILY} read https://example.com/a #AI #Data"
    facets = bluesky_facets(text, ["#AI", "#Data"])
    raw = text.encode("utf-8")
    spans = [raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in facets]
    assert spans == ["https://example.com/a", "#AI", "#Data"]
    assert facets[0]["features"] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a"}
    ]
    assert facets[1]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "AI"}]


def test_bluesky_tag_facet_matches_whole_tags_only() -> None:
    [facet] = bluesky_facets("#AIsafety is not #AI", ["#AI"])
    assert facet["index"]["byteStart"] == len("#AIsafety is not ")
