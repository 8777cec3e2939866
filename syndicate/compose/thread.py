"""Splitting a post too long for its network into a thread: parts posted as replies, in order.

A channel with `thread: true` (or an article with `thread: true` in its frontmatter) keeps the
whole text (the full description, the CTA, the author's own copy) instead of shortening it, and
when that is over the network's limit it is cut here into parts that each fit, numbered " 1/3",
" 2/3", ... at the end so a reader sees there is more. Cuts fall where a reader expects them: at
a blank line if there is one in the later half of a part, else at a line break, else after a
sentence, else between words; never inside a word, so a link or a hashtag is never split.

Only the length rule is the network's (`Network.fits`): the same code threads X, Bluesky and
Mastodon posts. All parts are one post (one ledger item); how a target posts them is its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# More parts than this is not a thread a reader follows: the post is refused with a line saying so.
MAX_PARTS = 20

# Runs of white space, kept: a part reproduces the author's line breaks.
_SPACE = re.compile(r"(\s+)")
# A word ending a sentence (closing quotes and brackets may follow the mark).
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)\]]*$")


def numbering(index: int, count: int) -> str:
    """What ends part `index` (0-based) of `count`: " 2/5"."""
    return f" {index + 1}/{count}"


def split_thread(text: str, fits: Callable[[str], bool], max_parts: int = MAX_PARTS) -> list[str] | None:
    """The parts of `text`, each with its number and each passing `fits`; `[text]` when it fits
    whole; None when some single word cannot fit in a part, or it would take over `max_parts`."""
    if fits(text):
        return [text]
    pieces = _SPACE.split(text.strip())
    words = pieces[0::2]
    gaps = [""] + pieces[1::2]  # gaps[i]: the white space before words[i]
    count = 2
    for _ in range(max_parts):  # the count's own digits change the room: settle on a count
        parts = _pack(words, gaps, count, fits, max_parts)
        if parts is None or len(parts) == count:
            return parts
        count = len(parts)
    return None


def _pack(
    words: list[str], gaps: list[str], count: int, fits: Callable[[str], bool], max_parts: int
) -> list[str] | None:
    """Parts numbered "i/count", filled greedily, each cut at the best boundary in its later half."""
    parts: list[str] = []
    start = 0
    while start < len(words):
        index = len(parts)
        if index >= max_parts:
            return None
        label = numbering(index, count)
        end = _longest(words, gaps, start, label, fits)
        if end == start:
            return None  # one word alone does not fit
        if end < len(words):
            end = _best_cut(words, gaps, start, end)
        parts.append(_join(words, gaps, start, end) + label)
        start = end
    return parts


def _longest(words: list[str], gaps: list[str], start: int, label: str, fits: Callable[[str], bool]) -> int:
    """The largest end with words[start:end] joined and labelled fitting; start when not even
    one word fits."""
    low, high = start, len(words)
    if fits(_join(words, gaps, start, high) + label):
        return high
    while low < high:  # it fits up to some end and not after (the text only grows)
        middle = (low + high + 1) // 2
        if fits(_join(words, gaps, start, middle) + label):
            low = middle
        else:
            high = middle - 1
    return low


def _best_cut(words: list[str], gaps: list[str], start: int, end: int) -> int:
    """Where to end a part that could hold words[start:end]: the strongest boundary in the later
    half (blank line, line break, sentence end, word), the latest of equals."""
    best, best_rank = end, _rank(words, gaps, end)
    for cut in range(end - 1, start + (end - start + 1) // 2 - 1, -1):
        rank = _rank(words, gaps, cut)
        if rank > best_rank:
            best, best_rank = cut, rank
    return best


def _rank(words: list[str], gaps: list[str], cut: int) -> int:
    """How good a place to cut before words[cut] is: 3 blank line, 2 line break, 1 sentence, 0 word."""
    gap = gaps[cut]
    if gap.count("\n") >= 2:
        return 3
    if "\n" in gap:
        return 2
    return 1 if _SENTENCE_END.search(words[cut - 1]) else 0


def _join(words: list[str], gaps: list[str], start: int, end: int) -> str:
    return "".join(gaps[i] + words[i] if i > start else words[i] for i in range(start, end))
