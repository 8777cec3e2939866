"""Mastodon: 500 characters, counted as grapheme clusters, each http(s) URL counted 23."""

from __future__ import annotations

from ..textlength import graphemes, url_spans
from . import Network

URL_LENGTH = 23


class Mastodon(Network):
    name = "mastodon"
    label = "Mastodon"
    limit = 500
    unit = "characters"
    max_hashtags = 4
    replies = True

    def measure(self, text: str) -> int:
        return mastodon_length(text)


def mastodon_length(text: str) -> int:
    """Graphemes outside links, plus a fixed length per link (Mastodon does not count the URL)."""
    spans = url_spans(text)
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    return sum(len(graphemes(p)) for p in pieces) + URL_LENGTH * len(spans)
