"""How long a post is, as each network counts it, and how to shorten text without breaking it.

X weighs text by the twitter-text v3 rules (NFC first; a URL counts 23; an emoji sequence 2; code
points up to U+10FF and some punctuation 1, the rest 2). Mastodon counts grapheme clusters with each
http(s) URL counted 23. Bluesky counts grapheme clusters of the text as posted (and at most 3,000
UTF-8 bytes); its links are facets addressed by UTF-8 byte offsets. LinkedIn counts characters;
UTF-16 code units are used here (an emoji is 2), never less than what its composer shows.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from typing import Literal

import regex

Network = Literal["linkedin", "x", "mastodon", "bluesky"]

LIMITS: dict[str, int] = {"linkedin": 3000, "x": 280, "mastodon": 500, "bluesky": 300}
UNITS: dict[str, str] = {
    "linkedin": "characters",
    "x": "weighted characters",
    "mastodon": "characters",
    "bluesky": "graphemes",
}
# Bluesky's record also caps the text at 3,000 UTF-8 bytes: 300 family emoji would pass the
# grapheme count and still be refused.
BLUESKY_MAX_BYTES = 3000
LINKEDIN_FOLD = 210
URL_LENGTH = 23
ELLIPSIS = "…"

# twitter-text v3: weight 100 (of scale 100) for these code points, 200 for everything else.
_X_LIGHT = regex.compile(r"[\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")

# URL grammar after twitter-text's extractor (which Mastodon also uses): which characters may
# appear in and end a path, balanced parentheses (one level nested) so Wikipedia links keep
# their closing ")", and a sentence's full stop or comma left out of the link.
_LETTERS = (
    r"a-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263"
    r"\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff\u0400-\u04ff"
)
_PATH_CHAR = rf"[{_LETTERS}!*';:=+,.$/%#\[\]\-\u2013_~@|&]"
_PARENS = rf"\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*))\)"
_PATH_END = rf"(?:[{_LETTERS}+\-=_#/]|{_PARENS})"
_PATH = rf"(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END}|@{_PATH_CHAR}+/)"
_QUERY = r"\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/]"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_TLD = r"(?:[a-z]{2,63}|xn--[a-z0-9-]+)(?![a-z0-9@+\-])"
_TAIL = rf"(?::\d+)?(?:/{_PATH}*)?(?:{_QUERY})?"
_URL = regex.compile(
    rf"(?<![a-z0-9@＠$#＃])https?://(?:{_LABEL}\.)+{_TLD}{_TAIL}", regex.IGNORECASE | regex.V0
)
# X also links a bare domain ("example.com/page") when its TLD is on its list. That list is not
# kept here: a domain-shaped word with a common TLD counts as a link, any other as the larger of
# itself and a link; never less than X's count, a few more for words like "Node.js".
_BARE_DOMAIN = regex.compile(
    rf"(?<![a-z0-9@＠$#＃_./\-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?P<tld>{_TLD}){_TAIL}",
    regex.IGNORECASE | regex.V0,
)
_COMMON_TLDS = frozenset(
    [
        "com",
        "org",
        "net",
        "edu",
        "gov",
        "io",
        "co",
        "ai",
        "dev",
        "app",
        "info",
        "me",
        "uk",
        "us",
        "eu",
        "de",
        "fr",
        "es",
        "it",
        "nl",
        "jp",
        "cn",
        "in",
        "au",
        "ca",
        "br",
        "ru",
    ]
)
# An emoji sequence: the grapheme cluster that starts with an emoji, a flag or a keycap.
_EMOJI_CLUSTER = regex.compile(
    r"(?=\p{Extended_Pictographic}|\p{Regional_Indicator}{2}|[0-9#*]\ufe0f?\u20e3)\X"
)
_EMOJI_PARTS = regex.compile(
    r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\p{Emoji_Modifier}|[\u200d\ufe0f\u20e3]"
    r"|[\U000e0020-\U000e007f]|[0-9#*](?=\ufe0f?\u20e3)"
)
_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters, UAX #29)."""
    return _GRAPHEME.findall(text)


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every http(s) URL, as X and Mastodon find them."""
    return [m.span() for m in _URL.finditer(text)]


def x_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    weight = 0
    position = 0
    for start, end, is_url in _x_links(text):
        weight += _x_plain_weight(text[position:start])
        literal = _x_plain_weight(text[start:end])
        weight += URL_LENGTH * 100 if is_url else max(literal, URL_LENGTH * 100)
        position = end
    weight += _x_plain_weight(text[position:])
    return weight // 100


def _x_links(text: str) -> list[tuple[int, int, bool]]:
    """Spans X surely links (is_url=True) and domain-shaped words it may link (False), in order."""
    urls = url_spans(text)
    spans = [(s, e, True) for s, e in urls]
    for match in _BARE_DOMAIN.finditer(text):
        start, end = match.span()
        if not any(s < end and start < e for s, e in urls):
            spans.append((start, end, match["tld"].lower() in _COMMON_TLDS))
    return sorted(spans)


def _x_plain_weight(text: str) -> int:
    """Weight (scale 100) of text without links: an emoji sequence 200, else per code point."""
    total = 0
    position = 0
    for match in _EMOJI_CLUSTER.finditer(text):
        total += _x_code_points_weight(text[position : match.start()])
        # Whatever rides along the emoji in its cluster (a combining mark, say) still counts.
        total += 200 + _x_code_points_weight(_EMOJI_PARTS.sub("", match.group()))
        position = match.end()
    return total + _x_code_points_weight(text[position:])


def _x_code_points_weight(text: str) -> int:
    if text.isascii():
        return 100 * len(text)
    return 200 * len(text) - 100 * len(_X_LIGHT.findall(text))


def mastodon_length(text: str) -> int:
    spans = url_spans(text)
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    return sum(len(graphemes(p)) for p in pieces) + URL_LENGTH * len(spans)


def bluesky_length(text: str) -> int:
    return len(graphemes(text))


def linkedin_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_MEASURES = {
    "linkedin": linkedin_length,
    "x": x_length,
    "mastodon": mastodon_length,
    "bluesky": bluesky_length,
}


def measure(network: str, text: str) -> int:
    """Length of `text` in the network's own unit (see UNITS), to compare with LIMITS."""
    return _MEASURES[network](text)


def within_limit(network: str, text: str) -> bool:
    """Whether the network accepts `text` as a post's length."""
    if network == "bluesky" and len(text.encode("utf-8")) > BLUESKY_MAX_BYTES:
        return False
    return measure(network, text) <= LIMITS[network]


def linkedin_fold(text: str) -> int | None:
    """Index in `text` where LinkedIn's "see more" cuts, on a grapheme boundary; None if all shows."""
    if linkedin_length(text) <= LINKEDIN_FOLD:
        return None
    shown = 0
    index = 0
    for cluster in graphemes(text):
        shown += linkedin_length(cluster)
        if shown > LINKEDIN_FOLD:
            break
        index += len(cluster)
    return index


def shorten(text: str, keep: int, ellipsis: str = ELLIPSIS) -> str:
    """At most `keep` graphemes, ellipsis included, cut at a word boundary (see Shortener)."""
    return Shortener(text, ellipsis)(keep)


class Shortener:
    """One text, ready to be cut to any number of graphemes, ellipsis included.

    The cut falls at a word boundary; text without spaces near the cut (Chinese, Japanese) is
    cut between grapheme clusters instead, so a cut never splits an emoji, a flag or a letter
    from its accent. The text is split once: fitting a post tries a dozen lengths.
    """

    def __init__(self, text: str, ellipsis: str = ELLIPSIS) -> None:
        self.text = " ".join(text.split())
        self.clusters = graphemes(self.text)
        self.ellipsis = ellipsis
        self._ellipsis_size = len(graphemes(ellipsis))

    def __len__(self) -> int:
        return len(self.clusters)

    def __call__(self, keep: int) -> str:
        clusters = self.clusters
        if len(clusters) <= keep:
            return self.text
        room = keep - self._ellipsis_size
        if room <= 0:
            return ""
        end = room
        # A space right after the cut is a word boundary too; look back at most 40% of the room.
        for index in range(room, math.ceil(room * 0.6) - 1, -1):
            if clusters[index].isspace():
                end = index
                break
        kept = "".join(clusters[:end]).rstrip(" ,;:.-–—")
        return kept + self.ellipsis if kept else ""


def bluesky_facets(text: str, hashtags: Iterable[str] = ()) -> list[dict]:
    """Link facets for every URL and tag facets for the given "#tags", at UTF-8 byte offsets."""
    facets = [
        _facet(text, start, end, {"$type": "app.bsky.richtext.facet#link", "uri": text[start:end]})
        for start, end in url_spans(text)
    ]
    names = sorted({h.lstrip("#") for h in hashtags}, key=len, reverse=True)
    if names:
        pattern = regex.compile(r"(?<![\w#])#(" + "|".join(map(regex.escape, names)) + r")(?![\w])")
        facets.extend(
            _facet(text, m.start(), m.end(), {"$type": "app.bsky.richtext.facet#tag", "tag": m.group(1)})
            for m in pattern.finditer(text)
        )
    return sorted(facets, key=lambda f: f["index"]["byteStart"])


def _facet(text: str, start: int, end: int, feature: dict) -> dict:
    byte_start = len(text[:start].encode("utf-8"))
    byte_end = byte_start + len(text[start:end].encode("utf-8"))
    return {"index": {"byteStart": byte_start, "byteEnd": byte_end}, "features": [feature]}
