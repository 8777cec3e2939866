"""X (Twitter): 280 weighted characters by the twitter-text v3 rules.

NFC first; a URL counts 23; an emoji sequence 2; code points up to U+10FF and some punctuation 1,
the rest 2. X also links bare domains ("example.com/page") when their TLD is on its list.
"""

from __future__ import annotations

import unicodedata

import regex

from ..textlength import TLD, URL_TAIL, url_spans
from . import Network

URL_WEIGHT = 23

# twitter-text v3: weight 100 (of scale 100) for these code points, 200 for everything else.
_X_LIGHT = regex.compile(r"[\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")
# X's list of top-level domains is not kept here: a domain-shaped word with a common TLD counts as
# a link, any other as the larger of itself and a link; never less than X's count, a few more for
# words like "Node.js".
_BARE_DOMAIN = regex.compile(
    rf"(?<![a-z0-9@＠$#＃_./\-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?P<tld>{TLD}){URL_TAIL}",
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


class X(Network):
    name = "x"
    label = "X"
    limit = 280
    unit = "weighted characters"
    max_hashtags = 2
    replies = True

    def measure(self, text: str) -> int:
        return x_length(text)


def x_length(text: str) -> int:
    """Weighted length as twitter-text v3 computes it."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    weight = 0
    position = 0
    for start, end, is_url in _x_links(text):
        weight += _x_plain_weight(text[position:start])
        literal = _x_plain_weight(text[start:end])
        weight += URL_WEIGHT * 100 if is_url else max(literal, URL_WEIGHT * 100)
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
