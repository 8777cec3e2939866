"""The excerpt: the plain text a preview, a digest entry or a post shows of an article's body."""

from __future__ import annotations

from markdown_it.token import Token

from ..compose.textlength import shorten


def excerpt_of(tokens: list[Token], limit: int) -> str:
    """Plain text of the body's first paragraphs, cut at a word boundary."""
    words: list[str] = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        words.extend(" ".join(c.content for c in token.children if c.type in ("text", "code_inline")).split())
        if sum(len(w) + 1 for w in words) > limit:
            break
    return shorten(" ".join(words), limit)
