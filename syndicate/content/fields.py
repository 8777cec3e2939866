"""Frontmatter fields read into their types: each refuses a wrong shape with one clear line."""

from __future__ import annotations

import contextlib
import email.utils
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone
from datetime import tzinfo as tzinfo_
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..language import check_tag
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


# Dates with month names, as Astro's blog template (`Jul 08 2022`) and people write them.
_NAMED_FORMATS = ("%b %d %Y", "%b %d, %Y", "%B %d %Y", "%B %d, %Y", "%d %B %Y", "%d %b %Y")
# Numeric dates as the generators accept them: one-digit months, days and hours (Jekyll builds
# `2013-11-22 5:00:00 +0000`), `-` or `/`, `T` or a space, seconds and fractions optional, and a
# zone of Z, UTC, GMT or an offset with or without its colon.
_NUMERIC = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[T ]\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


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
            "(expected YYYY-MM-DD, an ISO 8601 datetime like 2024-02-01T09:00:00+01:00, "
            "'2024-02-01 9:00:00 +0000', 'Feb 01 2024' or an RFC 2822 date)",
        )
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def parse_date_text(text: str, default_time: time) -> datetime | None:
    """A date written as text, or None when it is none of the shapes generators accept."""
    match = _NUMERIC.fullmatch(text)
    if match:
        return _numeric(match, default_time)
    if "," in text and ":" in text:  # RFC 2822, as feeds and some exporters write it
        with contextlib.suppress(TypeError, ValueError, IndexError):
            return email.utils.parsedate_to_datetime(text)
    for fmt in _NAMED_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(
                hour=default_time.hour, minute=default_time.minute, second=default_time.second
            )
        except ValueError:
            continue
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text)
    with contextlib.suppress(TypeError, ValueError, IndexError):  # RFC 2822 without a weekday
        return email.utils.parsedate_to_datetime(text)
    return None


def _numeric(match: re.Match[str], default_time: time) -> datetime | None:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        day_of = date(int(year), int(month), int(day))
        if hour is None:
            at = default_time
        else:
            micro = int((fraction or "0").ljust(6, "0"))
            at = time(int(hour), int(minute), int(second or 0), micro)
    except ValueError:
        return None
    tzinfo: tzinfo_ | None = None
    if zone:
        if zone.upper() in ("Z", "UTC", "GMT"):
            tzinfo = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            if offset >= timedelta(hours=24):
                return None
            tzinfo = timezone(sign * offset)
    return datetime.combine(day_of, at, tzinfo)


_DATED_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}[-_]")


def filename_date(path: Path, tz, default_time: time) -> datetime | None:
    """Jekyll names posts 2024-02-01-title.md (Zola also 2024-02-01_title.md); that date stands in
    for a missing one."""
    match = _DATED_NAME.match(path.name)
    if not match:
        return None
    try:
        return datetime.combine(date.fromisoformat(match.group(0)[:10]), default_time, tz)
    except ValueError:
        return None


def slug(meta: dict[str, Any], path: Path, bundle: str | None = None) -> str:
    """The `slug` given, else the file's name without a leading date (Jekyll's, Zola's), or for a
    page bundle (`post/index.md`) its folder's name."""
    given = text(meta, "slug")
    stem = _DATED_NAME.sub("", bundle if bundle is not None else path.stem)
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


def given_url(meta: dict[str, Any], base_url: str) -> tuple[str, str] | None:
    """The URL an article gives itself (`url`, else `canonical_url`) and the field, or None."""
    for name in ("url", "canonical_url"):
        given = text(meta, name)
        if given is not None:
            return http_url(name, given, base_url), name
    return None


def image_url(value: str, base_url: str) -> str:
    """Relative image paths are published beside the articles, under base_url (or, for a page
    bundle, beside the article itself: the caller passes its URL)."""
    return http_url("heroImage", value, base_url)


def http_url(name: str, given: str, base_url: str) -> str:
    """`given` made absolute against base_url; anything but http(s) is an error."""
    url = given if given.startswith("https://") else urljoin(base_url, given)
    parts = urlsplit(url)
    if (
        url_scheme(given) not in (None, *IMAGE_SCHEMES)
        or parts.scheme not in IMAGE_SCHEMES
        or not parts.netloc
        or not url.isprintable()  # tabs, line breaks, controls, Unicode spaces other than " "
        or " " in url
    ):
        raise FieldError(
            name,
            f"{reprs.repr(given)} is not an http(s) URL "
            "(expected https://..., or a path under site.base_url)",
        )
    return url


# Scripts written without spaces between words (Chinese, Japanese) and Hangul are read by the
# character: about 500 a minute, where a whitespace count would make a long article one "word".
CJK_CHARS_PER_MINUTE = 500
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f]"
)
# CJK punctuation and full-width forms: neither characters read nor words.
_CJK_MARKS = re.compile("[\u3000-\u303f\uff00-\uff65\uffa0-\uffef]")


def estimate_minutes(text: str, wpm: int) -> int:
    """Minutes to read `text`: CJK characters at CJK_CHARS_PER_MINUTE, other text by whitespace
    words at `wpm`; mixed text sums both. At least 1. Every reading-time estimate comes from here."""
    characters = len(_CJK.findall(text))
    words = len(_CJK_MARKS.sub(" ", _CJK.sub(" ", text)).split())
    return max(1, round(characters / CJK_CHARS_PER_MINUTE + words / wpm))


def read_minutes(meta: dict[str, Any], text: str, wpm: int, warn: Warn) -> int:
    """The article's `read_time` when it gives one, else the estimate from its text."""
    estimated = estimate_minutes(text, wpm)
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
        f"(expected like '8 mins'; using {estimated} from the text's length)",
    )
    return estimated


def language(meta: dict[str, Any]) -> str | None:
    """The article's `lang`: a BCP 47 tag (its emails say it, and its direction, for its words)."""
    given = text(meta, "lang")
    if given is None:
        return None
    try:
        return check_tag(given)
    except ValueError as exc:
        raise FieldError("lang", str(exc)) from None


def social_copy(meta: dict[str, Any]) -> dict[str, str]:
    """The article's own text per network (`social: {x: "...", linkedin: "..."}`), which its posts
    on that network use instead of the template's. Line breaks are kept: they are the post's."""
    value = meta.get("social")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError(
            "social", f"{reprs.repr(value)} is not a mapping (expected network: text, like {{x: '...'}})"
        )
    copy: dict[str, str] = {}
    for network, given in value.items():
        if not isinstance(given, str) or not given.strip():
            raise FieldError(
                f"social.{network}", f"{reprs.repr(given)} is not text (expected the post's text)"
            )
        copy[str(network).lower()] = "\n".join(line.rstrip() for line in given.strip().splitlines())
    return copy


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


_NAME_KEYS = ("name", "display_name", "title")
_PERSON_EXPECTED = "expected text, a map with a name, or a list of those"


def people(meta: dict[str, Any], name: str) -> str | None:
    """An author as text, a map with a `name`, or a list of either: "Ann", "Ann and Bob",
    "Ann, Bob and Cy"."""
    value = meta.get(name)
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list) else [value]
    names = [_person(name, item) for item in items]
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        return None
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _person(name: str, item: Any) -> str:
    if isinstance(item, dict):
        found = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), (str, int))), None)
        if found is None:
            raise FieldError(name, f"{reprs.repr(item)} has no name ({_PERSON_EXPECTED})")
        item = found
    if isinstance(item, bool) or not isinstance(item, (str, int, float)):
        raise FieldError(
            name, f"{reprs.repr(item)} is not a name (expected text, a map with a name, or a list)"
        )
    return " ".join(str(item).split())


_IMAGE_KEYS = ("path", "src", "url", "image", "file", "filename")
_ALT_KEYS = ("alt", "alt_text", "alternative", "caption")


def picture(meta: dict[str, Any], name: str) -> tuple[str | None, str | None]:
    """An image as text, a list (its first), or a map (`path`, `src`, `url` or `image`, with its
    `alt` kept for the email's alt text): (address, alt)."""
    value = meta.get(name)
    if isinstance(value, list):
        value = next((v for v in value if v not in (None, "")), None)
    alt: str | None = None
    if isinstance(value, dict):
        alt = next(
            (" ".join(str(value[k]).split()) for k in _ALT_KEYS if isinstance(value.get(k), str)), None
        )
        inner = next((value[k] for k in _IMAGE_KEYS if value.get(k) not in (None, "")), None)
        if isinstance(inner, (dict, list)):  # {image: {src: ...}}: one level further
            inner, _ = picture({name: inner}, name)
        if inner is None:
            keys = ", ".join(_IMAGE_KEYS[:4])
            raise FieldError(
                name, f"{reprs.repr(value)} names no image (expected text, or a map with {keys})"
            )
        value = inner
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool) or not isinstance(value, str):
        raise FieldError(name, f"{reprs.repr(value)} is not an image (expected a URL or a path)")
    return value.strip(), alt
