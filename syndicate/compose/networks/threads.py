"""Threads (Meta): 500 characters, an emoji counted as its UTF-8 bytes, one topic tag per post.

Meta documents the count in two lines ("Text posts are limited to 500 characters"; "Emojis are
counted as the number of UTF-8 bytes"), pointing at grapheme splitting. So a user-perceived
character (grapheme cluster) counts 1, except one that is an emoji sequence, which counts the
UTF-8 bytes of the whole cluster (a thumbs-up 4, a family of four with joiners 25). A URL is not
shortened by Threads: it counts as the characters it has. Threads turns one hashtag of a post
into its topic tag and no more, so a post carries at most one.
"""

from __future__ import annotations

import regex

from ..textlength import graphemes
from . import Network

# A grapheme cluster that is an emoji: it starts with a pictograph, a flag pair or a keycap.
_EMOJI = regex.compile(r"(?:\p{Extended_Pictographic}|\p{Regional_Indicator}{2}|[0-9#*]\ufe0f?\u20e3)")


class Threads(Network):
    name = "threads"
    label = "Threads"
    limit = 500
    unit = "characters"
    max_hashtags = 1
    hashtag_ceiling = 1

    def measure(self, text: str) -> int:
        return threads_length(text)


def threads_length(text: str) -> int:
    """Graphemes, an emoji one counted as its UTF-8 bytes (Meta's rule, never fewer than Threads)."""
    return sum(len(g.encode("utf-8")) if _EMOJI.match(g) else 1 for g in graphemes(text))
