"""LinkedIn: 3,000 characters, about 210 of them shown before "see more", 3 to 5 hashtags advised.

LinkedIn counts characters; UTF-16 code units are used here (an emoji is 2), never less than
what its composer shows. The first line is the hook: it must end before the fold.
"""

from __future__ import annotations

from ..textlength import graphemes
from . import Network

LINKEDIN_FOLD = 210


class LinkedIn(Network):
    name = "linkedin"
    label = "LinkedIn"
    limit = 3000
    unit = "characters"
    max_hashtags = 5
    min_hashtags = 3
    fold_at = LINKEDIN_FOLD

    def measure(self, text: str) -> int:
        return linkedin_length(text)

    def fold(self, text: str) -> int | None:
        return linkedin_fold(text)


def linkedin_length(text: str) -> int:
    """UTF-16 code units: what LinkedIn's own limit counts."""
    return len(text.encode("utf-16-le")) // 2


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
