"""Frontmatter fields read into their types: each refuses a wrong shape with one clear line."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from .article import FieldError, reprs
from .markdown import IMAGE_SCHEMES, Warn, url_scheme


def text(meta: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = meta.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError(name, "is missing (expected text)")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        kind = "mapping" if isinstance(value, dict) else type(value).__name__
        raise FieldError(name, f"{reprs.repr(value)} is a {kind} (expected text)")
    return " ".join(str(value).split())


def flag(meta: dict[str, Any], name: str) -> bool:
    value = meta.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise FieldError(name, f"{reprs.repr(value)} is not true or false (expected true or false)")


_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d %B %Y", "%B %d, %Y", "%Y/%m/%d")


def moment(meta: dict[str, Any], name: str, tz, default_time: time) -> datetime | None:
    """Every date becomes aware: naive ones are read in the site's timezone."""
    value = meta.get(name)
    if value is None or value == "":
        return None
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, default_time)
    elif isinstance(value, str):
        parsed = parse_date_text(value.strip(), default_time)
    if parsed is None:
        raise FieldError(
            name,
            f"{reprs.repr(value)} is not a date "
            "(expected YYYY-MM-DD or an ISO 8601 datetime like 2024-02-01T09:00:00+01:00)",
        )
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def parse_date_text(text: str, default_time: time) -> datetime | None:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), default_time)
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def filename_date(path: Path, tz, default_time: time) -> datetime | None:
    """Jekyll names posts 2024-02-01-title.md; that date stands in for a missing one."""
    match = re.match(r"(\d{4}-\d{2}-\d{2})-", path.name)
    if not match:
        return None
    try:
        return datetime.combine(date.fromisoformat(match.group(1)), default_time, tz)
    except ValueError:
        return None


def slug(meta: dict[str, Any], path: Path) -> str:
    given = text(meta, "slug")
    stem = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", path.stem)
    slug = slugify(given if given is not None else stem)
    if not slug:
        raise FieldError(
            "slug", f"{reprs.repr(given or stem)} gives an empty slug (expected letters or digits)"
        )
    return slug


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


ID_MAX_CHARS = 200
_ID_EXPECTED = "expected one line of text or a whole number, like 'tide-tables' or 1042"
_ID_QUOTED = "expected text in quotes, like '1.10', or a whole number"


def id(meta: dict[str, Any]) -> str | None:
    """The article's own `id`: text or a whole number, one line, not empty, not too long."""
    if "id" not in meta:
        return None
    value = meta["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        if value is None:
            shown = "is empty"
        elif isinstance(value, bool):
            shown = f"{str(value).lower()} is true or false"
        elif isinstance(value, date):
            shown = f"{value.isoformat()} is a date"
        else:
            kind = "mapping" if isinstance(value, dict) else type(value).__name__
            shown = f"{reprs.repr(value)} is a {kind}"
        raise FieldError("id", f"{shown} ({_ID_EXPECTED})")
    if isinstance(value, float):
        raise FieldError(
            "id", f"{reprs.repr(value)} is a decimal number, which YAML may have changed ({_ID_QUOTED})"
        )
    text = str(value).strip()
    if not text:
        raise FieldError("id", f"is empty ({_ID_EXPECTED})")
    if not text.isprintable():
        raise FieldError("id", f"{reprs.repr(text)} is not one line ({_ID_EXPECTED}, no line breaks or tabs)")
    if len(text) > ID_MAX_CHARS:
        raise FieldError(
            "id", f"is {len(text)} characters ({_ID_EXPECTED}, at most {ID_MAX_CHARS} characters)"
        )
    return text


def url(meta: dict[str, Any], base_url: str, slug: str) -> tuple[str, str | None]:
    """The article's URL, and the field that gave it (None when made from base_url + slug)."""
    for name in ("url", "canonical_url"):
        given = text(meta, name)
        if given is not None:
            return http_url(name, given, base_url), name
    return urljoin(base_url, slug), None


def image_url(value: str, base_url: str) -> str:
    """Relative image paths are published beside the articles, under base_url."""
    return http_url("heroImage", value, base_url)


def http_url(name: str, given: str, base_url: str) -> str:
    """`given` made absolute against base_url; anything but http(s) is an error."""
    url = urljoin(base_url, given)
    parts = urlsplit(url)
    if (
        url_scheme(given) not in (None, *IMAGE_SCHEMES)
        or parts.scheme not in IMAGE_SCHEMES
        or not parts.netloc
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        raise FieldError(
            name,
            f"{reprs.repr(given)} is not an http(s) URL "
            "(expected https://..., or a path under site.base_url)",
        )
    return url


def read_minutes(meta: dict[str, Any], words: int, wpm: int, warn: Warn) -> int:
    estimated = max(1, round(words / wpm))
    value = meta.get("read_time")
    if value is None:
        return estimated
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return max(1, round(value))
    if isinstance(value, str):
        match = re.fullmatch(
            r"\s*(?:(\d+(?:\.\d+)?)\s*(?:h|hr|hrs|hours?))?\s*"
            r"(?:(\d+(?:\.\d+)?)\s*(?:m|min|mins|minutes?)?)?\s*(?:read)?\s*",
            value.lower(),
        )
        if match and (match.group(1) or match.group(2)):
            minutes = float(match.group(1) or 0) * 60 + float(match.group(2) or 0)
            if minutes > 0:
                return max(1, round(minutes))
    warn(
        "read_time",
        f"{reprs.repr(value)} is not a reading time "
        f"(expected like '8 mins'; using {estimated} from the word count)",
    )
    return estimated


def tags(meta: dict[str, Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for name in ("tags", "categories"):
        value = meta.get(name)
        if value is None:
            continue
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, (str, int)) for i in items):
            raise FieldError(name, f"{reprs.repr(value)} is not a list of words (expected [ai, startups])")
        tags.extend(str(i).strip() for i in items if str(i).strip())
    return tuple(dict.fromkeys(tags))
