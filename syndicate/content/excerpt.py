"""The excerpt: the plain text a preview, a digest entry or a post shows of an article's body."""

from __future__ import annotations

import re

from markdown_it.token import Token

from ..compose.textlength import graphemes, shorten

# Stands in for whatever was taken out of a text run (a tag, an image, a template remnant) until
# the run is finished, so "see ![chart](x.png), below" can lose the space left before the comma.
# markdown-it turns NUL in a body into U+FFFD, so the marker never comes from the article.
_GONE = "\x00"
# What may reach a text token although the body was cleaned (`cleanup.strip_templating`) or
# not: commonmark with HTML disabled hands raw HTML over as text, and a site's syntax may be
# one the cleanup does not know. Tags go and their text stays; template syntax goes whole.
# Each stops at the next opener of its kind, so unclosed ones cost one scan, not one each.
_REMNANT = re.compile(
    r"<!--(?:(?!<!--).)*?-->"
    r"|</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>"
    r"|<![A-Za-z][^<>]*>"
    r"|\{%(?:(?!\{%).)*?%\}|\{\{(?:(?!\{\{).)*?\}\}|\{#[^{}]*#\}"
    r"|\{(?::|[#.][\w-])[^{}]*\}",
    re.DOTALL,
)
# Halves left over when a construct was cut (by the excerpt separator, say) or never closed.
_STRAY = re.compile(r"\{[{%#]|[}%#]\}|<!--|-->")
_BEFORE_PUNCTUATION = re.compile(r"\s*\x00[\x00\s]*(?=[,.;:!?…)\]])")
# A space before a comma or a full stop, whoever left it: "see the [notes](/n) , then" reads
# "see the notes, then". Only before one that ends a word, so ".NET" keeps its space; and not
# before ! ? : ; which French sets apart with a space.
_SPACED_PUNCTUATION = re.compile(r"\s+([,.])(?=\s|$)")
_ENDS_SENTENCE = frozenset(".!?:…")
# A block left with nothing but punctuation ("{{ site.x }}." without its output) says nothing.
_ONLY_PUNCTUATION = re.compile(r"[\s.,;:!?…\-–—]*")
_CLOSERS = "\"')]}»”’"


def _clean(run: str) -> str:
    """A run of text without tags, template syntax and spaces before a comma or full stop."""
    marked = "<" in run or "{" in run or "}" in run or ">" in run
    if marked:
        run = _REMNANT.sub(_GONE, run)
    if _GONE in run:
        run = _BEFORE_PUNCTUATION.sub("", run).replace(_GONE, "")
    if marked:
        while _STRAY.search(run):  # removing one half may join two others: "{<!---->{"
            run = _STRAY.sub("", run)
    if " ," in run or " ." in run:
        run = _SPACED_PUNCTUATION.sub(r"\1", run)
    return run


def _block_text(children: list[Token]) -> str:
    """One block's text (a paragraph, heading, list item or table cell), as one sentence."""
    parts: list[str] = []
    run: list[str] = []
    for child in children:
        kind = child.type
        if kind == "text" or kind == "text_special":
            run.append(child.content)
        elif kind == "code_inline":
            parts.append(_clean("".join(run)))
            parts.append(child.content)
            run = []
        elif kind in ("softbreak", "hardbreak"):
            run.append(" ")
        elif kind in ("image", "html_inline"):
            run.append(_GONE)
    parts.append(_clean("".join(run)))
    text = " ".join("".join(parts).split())
    if _ONLY_PUNCTUATION.fullmatch(text):
        return ""
    text = text.lstrip(",;: ")
    if text.rstrip(_CLOSERS)[-1:] not in _ENDS_SENTENCE:
        text += "."
    return text


def excerpt_of(tokens: list[Token], limit: int) -> str:
    """The body's first blocks as plain text, cut to `limit` graphemes at a word boundary.

    Each heading, paragraph, list item and table cell is a sentence, given a full stop unless
    it ends with its own punctuation, so "## Highlights" and the paragraph after it read
    "Highlights. The first paragraph" and not "Highlights The first paragraph". Links keep
    their text and inline code its content; images (whose alt text describes a picture the
    excerpt does not show), code blocks and HTML blocks are left out, and raw HTML tags and
    template syntax that arrived as text are removed. `tokens` are markdown-it's of the body,
    or of its part before the excerpt separator; only as many blocks as the limit needs are
    read.
    """
    sentences: list[str] = []
    size = -1
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue  # fence, code_block and html_block have no inline children: skipped
        sentence = _block_text(token.children)
        if not sentence:
            continue
        sentences.append(sentence)
        size += len(sentence) + 1
        if size > limit + 1 and _enough(" ".join(sentences), limit):
            break
    return shorten(" ".join(sentences), limit)


def _enough(text: str, limit: int) -> bool:
    """Whether `text` has more than `limit` graphemes (so that more blocks cannot change the cut);
    code points are never fewer than graphemes, and are graphemes in ASCII."""
    return text.isascii() or len(graphemes(text[: limit + 2])) > limit
