"""An article's body made email-safe: its HTML for an email, and the same body as plain text.

The body comes from markdown with raw HTML off (`content.markdown`), so it holds no author HTML;
this module does not rely on that. It parses the body with lxml and keeps only what an email
needs: a fixed list of elements (script, style, iframe, object, embed, form... go with their
content; other unknown elements leave their text), a fixed list of attributes per element (no
`on*`, no `class`, no author `style`), and links and images with http(s) (links also mailto:)
URLs made absolute against the article's own URL, as a browser on the article's page would
read them (`cover.png` in `https://site.example/posts/hello/` is
`https://site.example/posts/hello/cover.png`). What email clients do not style well gets inline
styles: images fit the column, code blocks wrap, tables have borders and padding.

The body is split into its top-level blocks (paragraphs, headings, lists, code blocks, tables...),
each with its HTML and its text, so a composer can keep the first n blocks when the whole body
is over a size limit.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from ..content.markdown import IMAGE_SCHEMES, LINK_SCHEMES, url_scheme

__all__ = ["Block", "EmailBody", "IMAGE_WIDTH", "email_body"]

# The width of the text column in the shipped templates (600 px, 28 px padding each side):
# the width attribute images get, which Outlook reads instead of max-width.
IMAGE_WIDTH = 544
TEXT_WIDTH = 72

# Removed with everything inside them, wherever they appear.
_DROPPED = frozenset(
    {
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "param",
        "form",
        "input",
        "button",
        "textarea",
        "select",
        "option",
        "optgroup",
        "label",
        "fieldset",
        "link",
        "meta",
        "base",
        "head",
        "title",
        "svg",
        "math",
        "noscript",
        "noembed",
        "noframes",
        "template",
        "audio",
        "video",
        "source",
        "track",
        "canvas",
        "map",
        "area",
        "portal",
        "dialog",
    }
)
# Kept (with the attributes listed); any other element is replaced by its content.
_ALLOWED: dict[str, frozenset[str]] = {
    tag: frozenset(attrs.split())
    for tag, attrs in {
        "p": "",
        "br": "",
        "hr": "",
        "h1": "",
        "h2": "",
        "h3": "",
        "h4": "",
        "h5": "",
        "h6": "",
        "ul": "",
        "ol": "start",
        "li": "",
        "blockquote": "",
        "pre": "",
        "code": "",
        "em": "",
        "i": "",
        "strong": "",
        "b": "",
        "s": "",
        "del": "",
        "sup": "",
        "sub": "",
        "span": "",
        "div": "",
        "a": "href title",
        "img": "src alt title width",
        "table": "",
        "thead": "",
        "tbody": "",
        "tr": "",
        "th": "colspan rowspan",
        "td": "colspan rowspan",
    }.items()
}
_BLOCKS = frozenset(
    {
        "p",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "blockquote",
        "pre",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "div",
    }
)
_VOID = frozenset({"br", "hr", "img"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

MONOSPACE = "Menlo, Consolas, 'Courier New', monospace"
_CELL = "border:1px solid #d9d5cc; padding:6px 10px; vertical-align:top; word-break:break-word"
_STYLES = {
    "p": "margin:0 0 16px 0",
    "h1": "margin:24px 0 8px 0; font-size:24px; line-height:1.3",
    "h2": "margin:24px 0 8px 0; font-size:20px; line-height:1.3",
    "h3": "margin:20px 0 8px 0; font-size:18px; line-height:1.3",
    "h4": "margin:16px 0 8px 0; font-size:16px; line-height:1.3",
    "h5": "margin:16px 0 8px 0; font-size:16px; line-height:1.3",
    "h6": "margin:16px 0 8px 0; font-size:16px; line-height:1.3",
    "ul": "margin:0 0 16px 0; padding:0 0 0 24px",
    "ol": "margin:0 0 16px 0; padding:0 0 0 24px",
    "li": "margin:0 0 4px 0",
    "blockquote": "margin:0 0 16px 0; padding:0 0 0 14px; border-left:3px solid #d9d5cc; color:#4a4a4a",
    "hr": "border:0; border-top:1px solid #e2ded5; margin:24px 0",
    "pre": (
        f"margin:0 0 16px 0; padding:12px 14px; background-color:#f5f3ee; border:1px solid #e2ded5; "
        f"border-radius:4px; font-family:{MONOSPACE}; font-size:13px; line-height:1.45; "
        "white-space:pre-wrap; word-wrap:break-word; overflow-x:auto"
    ),
    "code": (
        f"font-family:{MONOSPACE}; font-size:0.9em; background-color:#f5f3ee; padding:1px 4px; "
        "border-radius:3px"
    ),
    "table": "border-collapse:collapse; width:100%; margin:0; font-size:14px; line-height:1.4",
    "th": f"{_CELL}; background-color:#f5f3ee; font-weight:bold",
    "td": _CELL,
    "img": "max-width:100%; height:auto; border:0; outline:none; text-decoration:none",
}
_NESTED_LIST = "margin:4px 0 0 0; padding:0 0 0 24px"
_CODE_IN_PRE = f"font-family:{MONOSPACE}; font-size:13px; background-color:transparent; padding:0"
_TABLE_BOX = "overflow-x:auto; margin:0 0 16px 0"
# Control characters (and what XML cannot hold) break lxml, MJML and mail clients: removed before
# parsing. Line and paragraph separators read as newlines.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SEPARATOR = re.compile(r"[\u2028\u2029]")
_NUMBER = re.compile(r"[0-9]{1,6}")
# markdown-it writes a table column's alignment as style="text-align:right": the one style kept.
_ALIGN = re.compile(r"text-align\s*:\s*(left|right|center)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One top-level block of the body: its email-safe HTML and its plain text."""

    html: str
    text: str


@dataclass(frozen=True)
class EmailBody:
    """A body as email-safe blocks; `html(n)` and `text(n)` give the first n (all by default)."""

    blocks: tuple[Block, ...]

    def html(self, kept: int | None = None) -> str:
        return "\n".join(b.html for b in self.blocks[:kept])

    def text(self, kept: int | None = None) -> str:
        return "\n\n".join(b.text for b in self.blocks[:kept] if b.text)


def email_body(body_html: str, article_url: str) -> EmailBody:
    """`body_html` made email-safe, relative links and images resolved against `article_url`."""
    body_html = _CONTROL.sub("", body_html)
    if not body_html.strip():
        return EmailBody(())
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    _clean(root, article_url)
    _style(root)
    return EmailBody(tuple(Block(_html(el), _block_text(el)) for el in _top_level(root)))


# --- cleaning ----------------------------------------------------------------------------------


def _clean(root: lxml.html.HtmlElement, base: str) -> None:
    for node in list(root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity)):
        _remove(node)
    for node in root.iter():  # control characters went before parsing; separators become newlines
        node.text, node.tail = _newlines(node.text), _newlines(node.tail)
    for el in list(root.iterdescendants()):
        if not isinstance(el.tag, str) or el.tag.lower() in _DROPPED or ":" in el.tag:
            _remove(el)
    for el in list(root.iterdescendants()):
        if el.getparent() is None:  # inside something already removed
            continue
        tag = el.tag  # lower case: the HTML parser makes it so
        allowed = _ALLOWED.get(tag)
        if allowed is None:
            el.drop_tag()
            continue
        align = _ALIGN.search(el.get("style") or "") if tag in ("th", "td") else None
        # Kept by rebuilding, not deleted by name: lxml cannot name an attribute such as `{{`
        # (a template's braces in the markup), which it reads as a namespace.
        kept = [(name, value) for name, value in el.attrib.items() if name.lower() in allowed]
        if len(kept) != len(el.attrib):
            el.attrib.clear()
            for name, value in kept:
                el.set(name, value)
        if align:
            el.set("style", f"text-align:{align.group(1).lower()}")
        for name in ("alt", "title"):
            if name in el.attrib:
                el.set(name, " ".join(el.get(name).split()))
        if tag == "a":
            _link(el, base)
        elif tag == "img":
            _image(el, base)
        elif tag in ("ol", "th", "td"):
            for name in ("start", "colspan", "rowspan"):
                if name in el.attrib and _number(el.attrib[name]) is None:
                    del el.attrib[name]


def _newlines(text: str | None) -> str | None:
    return None if text is None else _SEPARATOR.sub("\n", text)


def _number(value: str | None) -> int | None:
    """A small whole number written in ASCII digits, or None."""
    value = (value or "").strip()
    return int(value) if _NUMBER.fullmatch(value) else None


def _link(el: lxml.html.HtmlElement, base: str) -> None:
    href = _absolute(el.get("href"), base, LINK_SCHEMES)
    if href is None:
        el.drop_tag()  # the link's text stays, as text
    else:
        el.set("href", href)


def _image(el: lxml.html.HtmlElement, base: str) -> None:
    src = _absolute(el.get("src"), base, IMAGE_SCHEMES)
    alt = " ".join((el.get("alt") or "").split())
    if src is None:
        _replace_with_text(el, alt)
        return
    given = _number(el.get("width"))
    width = min(given, IMAGE_WIDTH) if given else IMAGE_WIDTH
    el.attrib.pop("width", None)
    el.set("src", src)
    el.set("alt", alt)  # an image without alt is decorative: readers' screen readers skip it
    el.set("width", str(width))


def _absolute(url: str | None, base: str, schemes: tuple[str, ...]) -> str | None:
    """`url` resolved against `base`, or None when empty or not one of `schemes`."""
    if url is None or not url.strip() or url_scheme(url) not in (None, *schemes):
        return None
    try:
        joined = urljoin(base, url.strip())
        scheme = urlsplit(joined).scheme.lower()
    except ValueError:  # an invalid IPv6 host, say
        return None
    if scheme not in schemes or any(c.isspace() or not c.isprintable() for c in joined):
        return None
    return joined


def _remove(node: etree._Element) -> None:
    """Take `node` (and what it holds) out of the tree, keeping the text after it."""
    parent = node.getparent()
    if parent is None:
        return
    _append_text_before(node, node.tail or "")
    parent.remove(node)


def _replace_with_text(el: lxml.html.HtmlElement, text: str) -> None:
    tail = el.tail or ""
    el.tail = None
    _append_text_before(el, text + tail)
    parent = el.getparent()
    if parent is not None:
        parent.remove(el)


def _append_text_before(node: etree._Element, text: str) -> None:
    if not text:
        return
    previous = node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent = node.getparent()
        if parent is not None:
            parent.text = (parent.text or "") + text


# --- styling -----------------------------------------------------------------------------------


def _style(root: lxml.html.HtmlElement) -> None:
    for el in list(root.iterdescendants()):
        tag = el.tag
        parent = el.getparent()
        if tag == "code" and parent is not None and parent.tag == "pre":
            style = _CODE_IN_PRE
        elif tag in ("ul", "ol") and parent is not None and parent.tag == "li":
            style = _NESTED_LIST
        else:
            style = _STYLES.get(tag, "")
        if tag in ("th", "td"):  # the column's alignment (kept by _clean), else left
            style = f"{style}; {el.get('style') or 'text-align:left'}"
        if style:
            el.set("style", style)
        if tag == "table":
            el.set("cellpadding", "0")
            el.set("cellspacing", "0")
            el.set("role", "presentation")
            box = lxml.html.Element("div", style=_TABLE_BOX)
            el.addprevious(box)
            box.tail, el.tail = el.tail, None
            box.append(el)


def _top_level(root: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """The root's children as blocks: loose text and inline elements between blocks become a <p>."""
    blocks: list[lxml.html.HtmlElement] = []
    loose: lxml.html.HtmlElement | None = None

    def paragraph() -> lxml.html.HtmlElement:
        nonlocal loose
        if loose is None:
            loose = lxml.html.Element("p", style=_STYLES["p"])
            blocks.append(loose)
        return loose

    def add_text(text: str | None) -> None:
        if text and text.strip():
            target = paragraph()
            if len(target):
                target[-1].tail = (target[-1].tail or "") + text
            else:
                target.text = (target.text or "") + text

    add_text(root.text)
    for child in list(root):
        tail, child.tail = child.tail, None
        if child.tag in _BLOCKS:
            loose = None
            blocks.append(child)
        else:
            paragraph().append(child)
        add_text(tail)
    return blocks


def _html(el: lxml.html.HtmlElement) -> str:
    """XHTML-style, every tag closed: MJML's parser needs balanced tags (lxml's HTML serialiser
    leaves an empty <li> open), and <br/>, <hr/>, <img/> are valid HTML."""
    for node in el.iter():
        if node.tag not in _VOID and node.text is None:
            node.text = ""  # <li></li>, not <li/>
    return etree.tostring(el, encoding="unicode", method="xml", with_tail=False)


# --- plain text --------------------------------------------------------------------------------


def _block_text(el: lxml.html.HtmlElement) -> str:
    return "\n\n".join(_text_blocks(el))


def _text_blocks(el: lxml.html.HtmlElement) -> Iterator[str]:
    """The blocks of plain text `el` reads as: paragraphs wrapped, code verbatim, lists with "- "."""
    tag = el.tag
    if tag == "pre":
        yield el.text_content().strip("\n")
    elif tag in _HEADINGS:
        title = " ".join(_inline(el).split())
        if title:
            rule = {"h1": "=", "h2": "-"}.get(tag)
            yield title + (f"\n{rule * min(len(title), TEXT_WIDTH)}" if rule else "")
    elif tag in ("ul", "ol"):
        yield "\n".join(_list_lines(el))
    elif tag == "blockquote":
        inner = "\n\n".join(_children_blocks(el))
        yield "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
    elif tag == "hr":
        yield "-" * 20
    elif tag == "table":
        rows = [
            " | ".join(" ".join(_inline(cell).split()) for cell in row.iterchildren("th", "td"))
            for row in el.iter("tr")
        ]
        yield "\n".join(r for r in rows if r.strip(" |"))
    elif tag in ("div", "li", "thead", "tbody", "tr", "th", "td"):
        yield from _children_blocks(el)
    else:  # a paragraph, or inline content
        text = _wrapped(_inline(el))
        if text:
            yield text


def _children_blocks(el: lxml.html.HtmlElement) -> Iterator[str]:
    """Blocks for an element holding blocks, with any loose inline content between them."""
    run: list[str] = [_soft(el.text)]
    for child in el:
        if child.tag in _BLOCKS:
            text = _wrapped("".join(run))
            if text:
                yield text
            run = []
            yield from _text_blocks(child)
        else:
            run.append(_inline_element(child))
        run.append(_soft(child.tail))
    text = _wrapped("".join(run))
    if text:
        yield text


def _list_lines(el: lxml.html.HtmlElement) -> Iterator[str]:
    start = (_number(el.get("start")) or 1) if el.tag == "ol" else 1
    for number, item in enumerate(el.iterchildren("li"), start):
        marker = f"{number}. " if el.tag == "ol" else "- "
        indent = " " * len(marker)
        first = True
        for block in _children_blocks(item):
            for line in block.splitlines():
                yield (marker if first else indent) + line if line else ""
                first = False
        if first:  # an empty item
            yield marker.rstrip()


def _inline(el: lxml.html.HtmlElement) -> str:
    """The text of inline content: links as `text (url)`, images as `[alt]`, <br> as a newline."""
    parts = [_soft(el.text)]
    for child in el:
        parts.append(_inline_element(child))
        parts.append(_soft(child.tail))
    return "".join(parts)


def _soft(text: str | None) -> str:
    """Text as it reads: a line break in the source is a space (only <br> breaks a line)."""
    return (text or "").replace("\n", " ")


def _inline_element(el: lxml.html.HtmlElement) -> str:
    tag = el.tag
    if tag == "br":
        return "\n"
    if tag == "img":
        alt = el.get("alt") or ""
        return f"[{alt}]" if alt else ""
    if tag == "a":
        text, href = " ".join(_inline(el).split()), el.get("href") or ""
        if not text or text == href or f"mailto:{text}" == href:
            return href
        return f"{text} ({href})"
    if tag in _BLOCKS:  # a block inside inline content (not from markdown): its own lines
        return "\n" + "\n\n".join(_text_blocks(el)) + "\n"
    return _inline(el)


def _wrapped(text: str) -> str:
    """Each line (a <br> makes one) wrapped at TEXT_WIDTH, never inside a word or a URL."""
    lines = []
    for line in text.split("\n"):
        words = " ".join(line.split())
        if words:
            lines += textwrap.wrap(words, TEXT_WIDTH, break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)
