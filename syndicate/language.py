"""Language tags (BCP 47) and the writing direction they imply: what `site.language` and an
article's `lang` are checked against, and what sets `lang` and `dir` in emails."""

from __future__ import annotations

import re
from typing import Literal

Direction = Literal["ltr", "rtl"]
# BCP 47's shape (RFC 5646): a 2-3 letter language (or 4-8 registered), then subtags of 1-8
# letters or digits. The registry itself is not consulted: a well-formed tag is taken as given.
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8}")
_SUBTAG = re.compile(r"[A-Za-z0-9]{1,8}")
# Languages written right to left by default (CLDR), and the scripts that are (ISO 15924).
RTL_LANGUAGES = frozenset(
    [
        "ar",
        "arc",
        "ckb",
        "dv",
        "fa",
        "he",
        "iw",
        "ks",
        "mzn",
        "nqo",
        "pnb",
        "ps",
        "sd",
        "syr",
        "ug",
        "ur",
        "yi",
    ]
)
RTL_SCRIPTS = frozenset(["adlm", "arab", "hebr", "mand", "nkoo", "rohg", "samr", "syrc", "thaa", "yezi"])


def check_tag(value: str) -> str:
    """`value` as a well-formed BCP 47 tag, or a ValueError saying what was expected."""
    tag = value.strip().replace("_", "-")
    first, _, rest = tag.partition("-")
    if not _TAG.fullmatch(first) or (rest and not all(_SUBTAG.fullmatch(s) for s in rest.split("-"))):
        raise ValueError(f"{value!r} is not a language tag (expected BCP 47, like en, ar or pt-BR)")
    return tag


def direction(tag: str) -> Direction:
    """The direction text in `tag`'s language runs: a script subtag decides (`az-Arab` is rtl,
    `ku-Latn` ltr), else the language."""
    subtags = tag.lower().split("-")
    script = next((s for s in subtags[1:] if len(s) == 4 and s.isalpha()), None)
    if script is not None:
        return "rtl" if script in RTL_SCRIPTS else "ltr"
    return "rtl" if subtags[0] in RTL_LANGUAGES else "ltr"
