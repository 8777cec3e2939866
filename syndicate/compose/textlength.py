"""The text grammar every network shares: grapheme clusters, URLs, and cutting text short.

Each network's own count and rules live in its module under `compose.networks`; what is here is
what they (and the email composer's preheader) have in common: where a user-perceived character
ends, where an http(s) URL starts and ends as twitter-text finds it (X and Mastodon both use that
extractor), and how to shorten text at a word boundary without splitting a grapheme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import regex

ELLIPSIS = "…"

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
# Public: X links bare domains ("example.com/page") with the same top-level domain and tail.
TLD = r"(?:[a-z]{2,63}|xn--[a-z0-9-]+)(?![a-z0-9@+\-])"
URL_TAIL = rf"(?::\d+)?(?:/{_PATH}*)?(?:{_QUERY})?"
_URL = regex.compile(
    rf"(?<![a-z0-9@＠$#＃])https?://(?:{_LABEL}\.)+{TLD}{URL_TAIL}", regex.IGNORECASE | regex.V0
)
_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters, UAX #29)."""
    return _GRAPHEME.findall(text)


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every http(s) URL, as X and Mastodon find them."""
    return [m.span() for m in _URL.finditer(text)]


def shorten(text: str, keep: int, ellipsis: str = ELLIPSIS) -> str:
    """At most `keep` graphemes, ellipsis included, cut at a word boundary (see Shortener)."""
    flat = " ".join(text.split())
    if len(flat) <= keep:  # no more code points than room: it fits, whatever its graphemes
        return flat
    if flat.isascii():  # its graphemes are its characters (whitespace collapsed: no CR LF pair)
        return _cut(flat, keep, ellipsis, len(graphemes(ellipsis)))
    # Only the first graphemes matter once there are more than `keep` of them.
    head = Shortener(flat[: keep + 2], ellipsis)
    return head(keep) if len(head) > keep else Shortener(flat, ellipsis)(keep)


def _cut(units: Sequence[str], keep: int, ellipsis: str, ellipsis_size: int) -> str:
    """The cut rule: `units` (grapheme clusters, or the characters of ASCII text) longer than
    `keep` end at a word boundary within the last 40% of the room, ellipsis included."""
    room = keep - ellipsis_size
    if room <= 0:
        return ""
    end = room
    # A space right after the cut is a word boundary too; look back at most 40% of the room.
    for index in range(room, math.ceil(room * 0.6) - 1, -1):
        if units[index].isspace():
            end = index
            break
    kept = "".join(units[:end]).rstrip(" ,;:.-–—")
    return kept + ellipsis if kept else ""


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
        if len(self.clusters) <= keep:
            return self.text
        return _cut(self.clusters, keep, self.ellipsis, self._ellipsis_size)
