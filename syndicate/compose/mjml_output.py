"""What mjml-python writes, made right for mail clients and screen readers before the CSS is inlined.

mjml-python (mrml, in Rust) writes the attributes it passes through with Rust's `escape_debug`:
every backslash doubled, and each character Rust deems unprintable or a grapheme extender (the
zero-width joiner of emoji sequences, Arabic harakat, Devanagari viramas, Thai vowel signs, soft
hyphens) as `\\u{XXXX}`, so an alt text or aria-label would read "backslash u 200d" aloud. Its
hidden preheader is white text (`color:#ffffff`), which spam filters score as low-contrast text,
and it ends where the inbox snippet goes on into the email's first words.
"""

from __future__ import annotations

import html as html_
import re

# A start tag's quoted attribute value as mrml writes it: no raw quote inside, backslashes paired.
_ATTRIBUTE = re.compile(r'(=")((?:[^"\\]|\\.)*)(")', re.DOTALL)
_START_TAG = re.compile(r"<[a-zA-Z][^<>]*>")
# Everything `escape_debug` writes; a value holding any other backslash was not escaped by mrml.
_ESCAPE = re.compile(r"\\(?:u\{([0-9a-fA-F]{1,6})\}|([\\'\"tnr0]))")
_ESCAPED_VALUE = re.compile(r"(?:[^\\]|\\(?:u\{[0-9a-fA-F]{1,6}\}|[\\'\"tnr0]))*", re.DOTALL)
_SIMPLE = {"\\": "\\", "'": "'", '"': "&quot;", "t": "&#9;", "n": "&#10;", "r": "&#13;", "0": "&#0;"}

# mrml's preview: the first element of the body, hidden by white 1px text.
_PREVIEW = re.compile(r'(<body\b[^>]*>\s*)<div style="display:none;[^"]*">([^<]*)</div>')
# Hidden as Litmus and Email on Acid show it, without a colour: display:none for most clients,
# mso-hide:all for Outlook, no height, no width and no opacity for the rest.
PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0px;max-width:0px;"
    "opacity:0;overflow:hidden;mso-hide:all;"
)
# Invisible characters after the preheader, so the inbox snippet stops there instead of going
# on into the greeting and the masthead (combining grapheme joiner, zero-width non-joiner, nbsp):
# enough to fill a snippet of SNIPPET_CHARS, no more (each costs 21 bytes quoted-printable).
PREHEADER_PAD = "&#847;&zwnj;&nbsp;"
SNIPPET_CHARS = 200


def repair(html: str) -> str:
    """mrml's HTML with its attribute escapes undone and its preheader hidden without colour."""
    return _hide_preheader(unescape_attributes(html))


def unescape_attributes(html: str) -> str:
    """Every attribute value mrml escaped, back to its characters (a backslash an author typed
    comes back as the one backslash; text between tags is never touched: mrml leaves it alone)."""
    return _START_TAG.sub(lambda tag: _ATTRIBUTE.sub(_unescape_value, tag.group()), html)


def _unescape_value(match: re.Match[str]) -> str:
    value = match.group(2)
    if "\\" not in value or not _ESCAPED_VALUE.fullmatch(value):
        return match.group()  # not mrml's escaping (a value it wrote as is): left alone
    return match.group(1) + _ESCAPE.sub(_character, value) + match.group(3)


def _character(match: re.Match[str]) -> str:
    code, simple = match.groups()
    if simple is not None:
        return _SIMPLE[simple]
    point = int(code, 16)  # a Rust char: never a surrogate, never past U+10FFFF
    return f"&#{point};" if point < 0x20 or 0x7F <= point < 0xA0 else chr(point)  # controls: references


def preheader_padding(preheader: str) -> str:
    """The invisible characters that take a snippet from the end of `preheader` to SNIPPET_CHARS."""
    return PREHEADER_PAD * -(-max(0, SNIPPET_CHARS - len(preheader)) // 3)


def _hide_preheader(html: str) -> str:
    def hidden(match: re.Match[str]) -> str:
        padding = preheader_padding(html_.unescape(match.group(2)))
        return f'{match.group(1)}<div style="{PREHEADER_STYLE}">{match.group(2)}{padding}</div>'

    return _PREVIEW.sub(hidden, html, count=1)
