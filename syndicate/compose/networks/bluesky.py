"""Bluesky: 300 graphemes and at most 3,000 UTF-8 bytes; links and tags are facets.

Bluesky counts grapheme clusters of the text as posted. Its links and tags are not found in the
text by the app: the post carries them as facets addressed by UTF-8 byte offsets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import regex

from ..textlength import graphemes, url_spans
from . import Network

# The record also caps the text at 3,000 UTF-8 bytes: 300 family emoji would pass the grapheme
# count and still be refused.
BLUESKY_MAX_BYTES = 3000


class Bluesky(Network):
    name = "bluesky"
    label = "Bluesky"
    limit = 300
    unit = "graphemes"
    max_hashtags = 2
    replies = True

    def measure(self, text: str) -> int:
        return bluesky_length(text)

    def fits(self, text: str) -> bool:
        return len(text.encode("utf-8")) <= BLUESKY_MAX_BYTES and super().fits(text)

    def facets(self, text: str, hashtags: Iterable[str]) -> tuple[dict[str, Any], ...]:
        return tuple(bluesky_facets(text, hashtags))

    def size(self, text: str) -> str:
        return f"{super().size(text)} ({len(text.encode('utf-8'))} bytes; at most {BLUESKY_MAX_BYTES})"


def bluesky_length(text: str) -> int:
    return len(graphemes(text))


def bluesky_facets(text: str, hashtags: Iterable[str] = ()) -> list[dict[str, Any]]:
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


def _facet(text: str, start: int, end: int, feature: dict[str, Any]) -> dict[str, Any]:
    byte_start = len(text[:start].encode("utf-8"))
    byte_end = byte_start + len(text[start:end].encode("utf-8"))
    return {"index": {"byteStart": byte_start, "byteEnd": byte_end}, "features": [feature]}
