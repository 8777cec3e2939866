"""Article URLs: a permalink pattern filled in from the article's date, slug and place.

The one rule for where an article lives on the site. Tokens (Jekyll's and Hugo's names):
`:year :month :day` (of the publish date, in the site's timezone), `:slug` and its Jekyll
synonym `:title`, `:section` (the first folder under the content folder), `:path` (the folders
under the content folder and the slug: `posts/2024/hello`), `:categories` (the article's
categories, slugified, joined with `/`; Jekyll's default) and `:output_ext` (`.html`).
A pattern is read relative to `site.base_url`, leading slash or not, so a site served under a
sub-path keeps it. Empty parts collapse (`/:categories/:year/` with no categories is `/2024/`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

TOKENS = ("year", "month", "day", "slug", "title", "section", "path", "categories", "output_ext")
_TOKEN = re.compile(r":(" + "|".join(sorted(TOKENS, key=len, reverse=True)) + r")(?![A-Za-z0-9_])")
_SLASHES = re.compile(r"/{2,}")


@dataclass(frozen=True)
class Place:
    """What a pattern is filled from."""

    slug: str
    publish: datetime
    folders: tuple[str, ...]  # the folders between the content folder and the file (a bundle's own excluded)
    categories: tuple[str, ...] = ()


def unknown_tokens(pattern: str) -> list[str]:
    """The `:words` of a pattern that are not tokens (config validation names them)."""
    return [m for m in re.findall(r":([A-Za-z_]+)", pattern) if m not in TOKENS]


def fill(pattern: str, place: Place) -> str:
    """The pattern with its tokens replaced: a path relative to site.base_url (no leading slash)."""
    values = {
        "year": f"{place.publish.year:04d}",
        "month": f"{place.publish.month:02d}",
        "day": f"{place.publish.day:02d}",
        "slug": place.slug,
        "title": place.slug,
        "section": place.folders[0] if place.folders else "",
        "path": "/".join((*place.folders, place.slug)),
        "categories": "/".join(place.categories),
        "output_ext": ".html",
    }
    filled = _TOKEN.sub(lambda m: values[m.group(1)], pattern)
    path = _SLASHES.sub("/", filled).lstrip("/")
    return quote(path, safe="/:@!$&'()*+,;=-._~%")
