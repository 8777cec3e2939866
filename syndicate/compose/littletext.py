"""LinkedIn's "little text": the format of a post's `commentary` in the Posts API.

The characters | { } @ [ ] ( ) < > # \\ * _ ~ start little elements; unescaped in plain text they
make LinkedIn cut the post short there. Posts keep the human text; the LinkedIn delivery sends
`little_text(post.text, post.hashtags)`, where each hashtag becomes a hashtag template
`{hashtag|\\#|Tag}` and everything else is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RESERVED = "|{}@[]()<>#\\*_~"
_RESERVED = re.compile("([" + re.escape(RESERVED) + "])")
# Left to right, one token at a time: an escaped character, or a whole hashtag template.
_TOKEN = re.compile(r"\\(.)|\{hashtag\|\\#\|((?:\\.|[^\\}])*)\}", re.DOTALL)


def escape_little_text(text: str) -> str:
    return _RESERVED.sub(r"\\\1", text)


def unescape_little_text(text: str) -> str:
    """The text a reader sees: escapes removed, hashtag templates written back as #Tag."""

    def plain(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        return "#" + unescape_little_text(match.group(2))

    return _TOKEN.sub(plain, text)


def hashtag_template(tag: str) -> str:
    """How the Posts API wants a hashtag: {hashtag|\\#|Tag} (the tag without its #)."""
    return "{hashtag|\\#|" + escape_little_text(tag.lstrip("#")) + "}"


def little_text(text: str, hashtags: Iterable[str] = ()) -> str:
    """`commentary` for the Posts API: the given #tags as hashtag templates, all else escaped."""
    names = sorted({h.lstrip("#") for h in hashtags if h.lstrip("#")}, key=len, reverse=True)
    if not names:
        return escape_little_text(text)
    pattern = re.compile(r"(?<![\w#])#(" + "|".join(map(re.escape, names)) + r")(?!\w)")
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        pieces.append(escape_little_text(text[position : match.start()]))
        pieces.append(hashtag_template(match.group(1)))
        position = match.end()
    pieces.append(escape_little_text(text[position:]))
    return "".join(pieces)
