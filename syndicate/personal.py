"""Per-recipient fields: what a template may say about its reader, filled in per message.

A draft is rendered once (Jinja2 -> MJML -> css-inline costs milliseconds); a list of
100,000 readers cannot pay that each. So templates (HTML, the subject, the greeting) see
`recipient` as a view whose every attribute is a *marker*: a run of letters, digits and
underscores that MJML, lxml and quoted-printable all leave intact. `compose.mime` then swaps each
marker for the reader's value, escaped for where it stands, in microseconds.

Any attribute works: `recipient.first_name`, `recipient.city` (a subscriber attribute or a CSV
column), and `| default("there")` carries its fallback inside the marker, so a reader without
a first name reads "Hi there". A marker goes through no other filter: `upper` or slicing would
act on the marker, not the name (say so in templates' docs).

The greeting line is itself a small template (`site.greeting`), rendered per reader: it may
branch on the reader's fields, which markers cannot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.filters import do_default
from jinja2.sandbox import SandboxedEnvironment

from .errors import TemplateError

__all__ = [
    "GREETING_TEMPLATE",
    "FIELD",
    "Field",
    "RecipientView",
    "default_filter",
    "field_key",
    "greeting",
    "reader_fields",
]

# The shipped greeting, found like the other templates (a site's own file of that name wins).
GREETING_TEMPLATE = "email/greeting.txt.j2"
# Titles before a first name ("Dr Ada Lovelace"): greetings use the name after them.
_HONORIFICS = frozenset({"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "dame", "rev", "fr"})
# __syndicate_f<key as hex>__ or __syndicate_f<key as hex>_<default as hex>__
FIELD = re.compile(r"__syndicate_f([0-9a-f]+)(?:_([0-9a-f]*))?__")
_LEGACY = ("name", "email", "greeting")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class Field(str):
    """The marker of one field (a `str`, so it prints as itself), with its fallback if any."""

    key: str

    def __new__(cls, key: str, fallback: str | None = None) -> Field:
        if fallback is None and key in _LEGACY:  # the markers webhook payloads have always named
            marker = f"__syndicate_{key}"
        else:
            marker = f"__syndicate_f{key.encode().hex()}"
        if fallback is not None:
            marker += "_" + fallback.encode("utf-8").hex()
        self = super().__new__(cls, marker + "__")
        self.key = key
        return self

    def or_default(self, fallback: object) -> Field:
        return Field(self.key, str(fallback))


class RecipientView:
    """`recipient` as templates see it: any field name gives that field's marker."""

    def __getattr__(self, name: str) -> Field:
        if not _KEY.fullmatch(name) or name.startswith("_"):
            raise AttributeError(name)
        return Field(name.lower())

    def __getitem__(self, name: str) -> Field:
        return self.__getattr__(str(name))

    def __str__(self) -> str:
        return str(Field("name"))


def default_filter(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, except that on a reader's field it sets the field's fallback, which
    applies per reader when the field is empty or missing."""
    if isinstance(value, Field):
        return value.or_default(default_value)
    return do_default(value, default_value, boolean)


def field_key(match: re.Match[str]) -> tuple[str, str | None]:
    """(field name, fallback or None) of a marker FIELD matched."""
    fallback = match.group(2)
    return bytes.fromhex(match.group(1)).decode(), None if fallback is None else bytes.fromhex(
        fallback
    ).decode("utf-8")


def reader_fields(name: str, email: str, attributes: Mapping[str, str]) -> dict[str, str]:
    """Every field a reader has: their attributes, then name and email (which win), and first
    and last names taken from the name when the attributes have none."""
    fields = {key.lower(): value for key, value in attributes.items()}
    words = name.split()
    if len(words) > 1 and words[0].rstrip(".").lower() in _HONORIFICS:
        words = words[1:]  # "Dr Ada Lovelace" is greeted as Ada
    first = words[0].strip("\"'“”‘’()") if words else ""  # a quoted nickname: the name itself
    fields.setdefault("first_name", first)
    fields.setdefault("last_name", " ".join(words[1:]))
    fields["name"], fields["email"] = name, email
    return fields


def greeting(
    source: str, fields: Mapping[str, str], where: str = "site.greeting", language: str | None = None
) -> str:
    """The greeting line for one reader (a template of their fields), as plain text."""
    template = _compiled(source, where)
    try:
        return " ".join(template.render(recipient=_Fields(fields), language=language).split())
    except Exception as exc:  # the user's template
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc} in {source!r}") from None


class _Fields(dict):
    """A reader's fields for the greeting template: a missing one is empty, not an error."""

    def __getattr__(self, name: str) -> str:
        return self.get(name, "")

    def __missing__(self, key: str) -> str:
        return ""


@lru_cache(maxsize=32)
def _compiled(source: str, where: str) -> jinja2.Template:
    env = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{where}: line {exc.lineno}: {exc.message} in {source!r}") from None
