"""The markdown body: parsed once, links and images with unsafe schemes made text."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

from .article import reprs

Warn = Callable[[str, str], None]

# Commonmark without raw HTML: article bodies end up in emails, so a stray <script> or
# <style> in a body must arrive as text. Links are checked after parsing (`neutralise_links`),
# where a refused one can be reported, so markdown-it's own quieter check is turned off.
markdown = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
markdown.validateLink = lambda url: True  # type: ignore[method-assign]
# Schemes links and images in a body may use; relative links (no scheme) stay as they are.
LINK_SCHEMES = ("http", "https", "mailto")
IMAGE_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


def url_scheme(url: str) -> str | None:
    """The scheme a browser would see, lower-cased, or None for a relative URL.

    Read after HTML entities and percent-escapes are decoded and spaces, tabs and control
    characters dropped, so ` JaVaScRiPt:`, `java<TAB>script:` and `&#106;avascript:` all give
    `javascript`.
    """
    seen = _INVISIBLE.sub("", unquote(html.unescape(url)))
    match = _SCHEME.match(seen)
    return match.group(1).lower() if match else None


def neutralise_links(tokens: list[Token], warn: Warn) -> None:
    """Links and images in a body whose scheme is not allowed become their text, with a warning."""
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        kept: list[Token] = []
        dropping = False
        for child in token.children:
            if child.type == "link_open" and not _allowed(child, "href", LINK_SCHEMES, warn):
                dropping = True
            elif child.type == "link_close" and dropping:
                dropping = False
            elif child.type == "image" and not _allowed(child, "src", IMAGE_SCHEMES, warn):
                kept.append(Token("text", "", 0, content=child.content))
            else:
                kept.append(child)
        token.children = kept


def _allowed(token: Token, attr: str, schemes: tuple[str, ...], warn: Warn) -> bool:
    url = str(token.attrGet(attr) or "")
    if url_scheme(url) in (None, *schemes):
        return True
    what = "link" if attr == "href" else "image"
    warn(
        "body",
        f"{what} {reprs.repr(url)} is not allowed (expected {', '.join(f'{s}:' for s in schemes)} "
        "or a relative path; shown as text)",
    )
    return False
