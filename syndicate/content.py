"""Articles: markdown files with YAML (---) or TOML (+++) frontmatter, normalised.

Loading never raises for a bad file: it returns the good articles and a `Problem` per
mistake, so one broken article never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import os
import re
import reprlib
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import yaml
from frontmatter.default_handlers import BaseHandler, YAMLHandler
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .compose.textlength import shorten
from .config import Config
from .errors import ContentError
from .yaml_shape import shape_problem

MARKDOWN_SUFFIXES = (".md", ".markdown")
Severity = Literal["error", "warning"]

# Commonmark without raw HTML: article bodies end up in emails, so a stray <script> or
# <style> in a body must arrive as text. Links are checked after parsing (`_neutralise_links`),
# where a refused one can be reported, so markdown-it's own quieter check is turned off.
_markdown = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
_markdown.validateLink = lambda url: True  # type: ignore[method-assign]
# Schemes links and images in a body may use; relative links (no scheme) stay as they are.
LINK_SCHEMES = ("http", "https", "mailto")
IMAGE_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")
_reprs = reprlib.Repr()
_reprs.maxstring = 60
_reprs.maxother = 60


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; `str()` is the one line a user sees."""

    path: Path
    field: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{_display(self.path)}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "path": _display(self.path),
            "field": self.field,
            "severity": self.severity,
            "message": self.message,
        }


def _display(path: Path) -> str:
    """Paths as the user typed them: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Article:
    """One article, its frontmatter normalised; what every channel composes from."""

    path: Path
    slug: str
    title: str
    url: str
    publish_date: datetime
    body_html: str
    excerpt: str
    read_minutes: int
    content_hash: str
    subtitle: str | None = None
    description: str | None = None
    author: str | None = None
    created_date: datetime | None = None
    hero_image: str | None = None
    cta: str | None = None
    tags: tuple[str, ...] = ()
    draft: bool = False
    id: str | None = None  # the frontmatter's `id`: what keeps it the same article (see `identity`)
    url_field: str | None = None  # `url` or `canonical_url` when given, None when made from the slug
    # The name its sends carry in the ledger (`channel:stem`) when not its slug: the slug it was
    # first seen under, for an article renamed since. Set by `identity.resolve`, never by loading.
    stem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The article's public fields as JSON-able values (what webhooks receive)."""
        return {
            "slug": self.slug,
            "title": self.title,
            "subtitle": self.subtitle,
            "description": self.description,
            "author": self.author,
            "url": self.url,
            "publish_date": self.publish_date.isoformat(),
            "created_date": self.created_date.isoformat() if self.created_date else None,
            "hero_image": self.hero_image,
            "cta": self.cta,
            "tags": list(self.tags),
            "read_minutes": self.read_minutes,
            "excerpt": self.excerpt,
            "content_hash": self.content_hash,
        }


def identity(article: Article) -> str:
    """What makes an article the same article when its file is renamed or edited: its `id`, else
    the `url` or `canonical_url` it gives, else its slug (which defaults to the file name). The
    ledger remembers each identity's first slug, so its sends keep their names (`identity.py`)."""
    if article.id is not None:
        return f"id:{article.id}"
    if article.url_field is not None:
        return f"url:{article.url}"
    return f"slug:{article.slug}"


@dataclass
class Loaded:
    """What a load found: articles that can be used, and every problem on the way."""

    articles: list[Article]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


class _TomlHandler(BaseHandler):
    """Hugo-style `+++` TOML frontmatter, read with the standard library's tomllib."""

    FM_BOUNDARY = re.compile(r"^\+{3,}\s*$", re.MULTILINE)

    def load(self, fm: str, **kwargs: object) -> Any:
        return tomllib.loads(fm)


_HANDLERS = (YAMLHandler(), _TomlHandler())
_KNOWN = {
    "title",
    "subtitle",
    "description",
    "author",
    "read_time",
    "publish_date",
    "created_date",
    "heroImage",
    "hero_image",
    "cta",
    "tags",
    "categories",
    "slug",
    "url",
    "canonical_url",
    "draft",
    "id",
}
_DEFAULT_ALIASES = {"date": "publish_date", "image": "heroImage", "cover": "heroImage"}


class _Bad(Exception):
    """A field that makes the article unusable; becomes an error Problem."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def load_articles(config: Config, paths: Iterable[str | os.PathLike[str]] | None = None) -> Loaded:
    """Load the configured content folder, or the given files and folders instead."""
    roots = [Path(p) for p in paths] if paths else [config.content.dir]
    files: list[Path] = []
    for root in roots:
        files.extend(_markdown_files(root))
    if not files:
        where = ", ".join(str(r) for r in roots)
        raise ContentError(f"{where}: no articles found (expected *.md or *.markdown files)")
    return _assemble((path, *read_article(path, config)) for path in files)


def _assemble(read: Iterable[tuple[Path, Article | None, list[Problem]]]) -> Loaded:
    """Collect read files into a `Loaded`; a second article with a slug already taken is an error,
    and so is one with an `id` (or, without ids, a `url`) already taken: it would be the same
    article (`identity`)."""
    loaded = Loaded([], [])
    by_slug: dict[str, Path] = {}
    by_identity: dict[str, Path] = {}
    for path, article, problems in read:
        loaded.problems.extend(problems)
        if article is None:
            continue
        if article.slug in by_slug:
            loaded.problems.append(
                Problem(
                    path,
                    "slug",
                    "error",
                    f"{article.slug!r} is already used by {by_slug[article.slug]} "
                    "(expected each article to have its own slug)",
                )
            )
            continue
        same = identity(article)
        if same in by_identity:
            loaded.problems.append(_taken_identity(path, article, by_identity[same]))
            continue
        by_slug[article.slug] = path
        by_identity[same] = path
        loaded.articles.append(article)
    return loaded


def _taken_identity(path: Path, article: Article, first: Path) -> Problem:
    if article.id is not None:
        taken = f"{_reprs.repr(article.id)} is already the id of {_display(first)}"
        message = f"{taken} (expected each article its own id)"
        return Problem(path, "id", "error", message)
    message = (
        f"{_reprs.repr(article.url)} is already the URL of {_display(first)}, which makes them one "
        "article (expected each article its own URL, or an id to tell them apart)"
    )
    return Problem(path, article.url_field or "url", "error", message)


@dataclass
class _Cached:
    stat: tuple[int, int]  # (mtime_ns, size): unchanged means the file is not even opened
    digest: bytes  # of the raw bytes: a touched but unchanged file is not parsed again
    article: Article | None
    problems: list[Problem]


class ArticleCache:
    """The content folder kept loaded, for the daemon's frequent rescans.

    `refresh()` stats every file and reads only those whose mtime or size changed, parsing
    again only when their bytes changed, so rescanning a large unchanged folder costs a
    directory walk.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loaded = Loaded([], [])
        self._files: dict[Path, _Cached] = {}

    def by_slug(self) -> dict[str, Article]:
        return {a.slug: a for a in self.loaded.articles}

    def refresh(self) -> dict[str, Article | None]:
        """Rescan; returns the articles that appeared or changed (slug -> article) and those
        that went away or became unusable (slug -> None)."""
        files = _markdown_files(self.config.content.dir)
        fresh: dict[Path, _Cached] = {}
        for path in files:
            fresh[path] = self._read(path, self._files.get(path))
        before = {a.slug: a for a in self.loaded.articles}
        self._files = fresh
        self.loaded = _assemble((path, entry.article, entry.problems) for path, entry in fresh.items())
        after = {a.slug: a for a in self.loaded.articles}
        return {
            slug: after.get(slug)
            for slug in before.keys() | after.keys()
            if before.get(slug) is not after.get(slug)
        }

    def _read(self, path: Path, cached: _Cached | None) -> _Cached:
        try:
            info = path.stat()
        except OSError:
            info = None
        stat = (info.st_mtime_ns, info.st_size) if info else (0, -1)
        if cached is not None and cached.stat == stat:
            return cached
        digest = b""
        if info is not None and info.st_size <= self.config.content.max_bytes:
            with contextlib.suppress(OSError):  # read_article below reports it
                digest = hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
        if cached is not None and digest and cached.digest == digest:
            return _Cached(stat, digest, cached.article, cached.problems)
        article, problems = read_article(path, self.config)
        return _Cached(stat, digest, article, problems)


def _markdown_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.exists():
        raise ContentError(f"{root}: no such file or folder (expected markdown articles)")
    if not root.is_dir():
        raise ContentError(f"{root}: not a file or folder")
    found: list[Path] = []
    # followlinks=False: a symlinked folder loop must not walk forever.
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(folder) / n
            for n in sorted(names)
            if n.lower().endswith(MARKDOWN_SUFFIXES) and not n.startswith(".")
        )
    return found


def read_article(path: Path, config: Config) -> tuple[Article | None, list[Problem]]:
    """Read one file; the article is None when any problem is an error."""
    problems: list[Problem] = []

    def warn(field: str, message: str) -> None:
        problems.append(Problem(path, field, "warning", message))

    try:
        raw = _read_bytes(path, config.content.max_bytes)
        meta, body = _split(raw)
        article = _normalise(path, raw, meta, body, config, warn)
    except _Bad as bad:
        return None, [*problems, Problem(path, bad.field, "error", bad.message)]
    return article, problems


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise _Bad("file", f"is {size:,} bytes (expected at most {limit:,}; see content.max_bytes)")
        with path.open("rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _Bad("file", f"cannot be read: {reason} (expected a readable file)") from None


def _split(raw: bytes) -> tuple[dict[str, Any], str]:
    if not raw.strip():
        raise _Bad("file", "is empty (expected frontmatter and a markdown body)")
    if b"\x00" in raw:
        raise _Bad("file", "contains NUL bytes: looks binary (expected UTF-8 markdown text)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Bad("file", f"is not UTF-8: bad byte at offset {exc.start} (expected UTF-8 text)") from None
    text = text.replace("\r\n", "\n")
    first = text.lstrip("\n").split("\n", 1)[0].strip()
    handler = next((h for h in _HANDLERS if h.detect(text.lstrip("\n"))), None)
    if handler is None:
        if first.startswith(("---", "+++")):
            raise _Bad("frontmatter", f"opening {first!r} is not alone on its line")
        raise _Bad("frontmatter", "is missing (expected the file to start with --- or +++)")
    body_text = text.lstrip("\n")
    try:
        fm, body = handler.split(body_text)
    except ValueError:
        raise _Bad(
            "frontmatter", f"opened with {first!r} is never closed (expected a closing {first[:3]!r} line)"
        ) from None
    try:
        meta = handler.load(fm)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        message = f"is not valid YAML{where}: {problem} (expected key: value lines)"
        raise _Bad("frontmatter", message) from None
    except tomllib.TOMLDecodeError as exc:
        raise _Bad("frontmatter", f"is not valid TOML: {exc} (expected key = value lines)") from None
    except RecursionError:
        raise _Bad("frontmatter", "is nested too deeply (expected simple key: value pairs)") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise _Bad("frontmatter", f"is a {type(meta).__name__} (expected key: value pairs)")
    _check_shape(meta)
    return meta, body


def _check_shape(meta: dict[str, Any]) -> None:
    """Refuse YAML alias bombs and absurd nesting before anything walks the values."""
    problem = shape_problem(meta, max_depth=20, max_nodes=10_000, expected="a small set of fields")
    if problem is not None:
        raise _Bad("frontmatter", problem)


def _normalise(path: Path, raw: bytes, meta: dict[str, Any], body: str, config: Config, warn) -> Article:
    aliases = {**_DEFAULT_ALIASES, **config.content.aliases}
    for alias, name in aliases.items():
        if alias in meta and name not in meta:
            meta[name] = meta[alias]
    if "hero_image" in meta and "heroImage" not in meta:
        meta["heroImage"] = meta["hero_image"]
    tz = config.site.tz

    title = _text(meta, "title", required=True) or ""  # required: never None
    draft = _bool(meta, "draft")
    publish = _date(meta, "publish_date", tz, config.content.default_time)
    if publish is None:
        publish = _filename_date(path, tz, config.content.default_time)
    if publish is None:
        if not draft:
            raise _Bad("publish_date", "is missing (expected a date like '2024-02-01')")
        publish = datetime.fromtimestamp(path.stat().st_mtime, tz)
    created = _date(meta, "created_date", tz, config.content.default_time)
    slug = _slug(meta, path)
    article_id = _id(meta)
    url, url_field = _url(meta, config.site.base_url, slug)
    hero = _text(meta, "heroImage")
    if hero is not None:
        hero = _image_url(hero, config.site.base_url)
    words = len(body.split())
    minutes = _read_minutes(meta, words, config.content.words_per_minute, warn)
    description = _text(meta, "description")
    cta = _text(meta, "cta")
    tags = _tags(meta)
    tokens = _markdown.parse(body)  # parsed once: the HTML and the excerpt share it
    _neutralise_links(tokens, warn)
    body_html = _markdown.renderer.render(tokens, _markdown.options, {})
    excerpt = _excerpt(tokens, 300)

    if created is not None and publish < created:
        warn(
            "publish_date",
            f"{publish.date()} is before created_date {created.date()} "
            "(expected publish_date on or after created_date)",
        )
    if cta is None:
        warn("cta", "is missing (expected a call to action for emails and posts)")
    if hero is not None and not hero.startswith("https://"):
        warn(
            "heroImage",
            f"{_reprs.repr(hero)} is not https (expected an https:// image URL; "
            "mail clients block or warn on plain http images)",
        )
    if description is None:
        warn("description", "is missing (expected a summary for previews; the excerpt is used)")
    elif len(description) > config.content.preheader_chars:
        warn(
            "description",
            f"is {len(description)} characters (expected at most "
            f"{config.content.preheader_chars} for an email preheader; it will be cut)",
        )
    if draft:
        warn("draft", "is true (this article is not sent until draft is removed)")

    return Article(
        path=path,
        slug=slug,
        title=title,
        url=url,
        publish_date=publish,
        body_html=body_html,
        excerpt=excerpt,
        read_minutes=minutes,
        content_hash=hashlib.sha256(raw).hexdigest(),
        subtitle=_text(meta, "subtitle"),
        description=description,
        author=_text(meta, "author"),
        created_date=created,
        hero_image=hero,
        cta=cta,
        tags=tags,
        draft=draft,
        id=article_id,
        url_field=url_field,
        extra={k: v for k, v in meta.items() if k not in _KNOWN and k not in aliases},
    )


def _text(meta: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = meta.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _Bad(name, "is missing (expected text)")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        kind = "mapping" if isinstance(value, dict) else type(value).__name__
        raise _Bad(name, f"{_reprs.repr(value)} is a {kind} (expected text)")
    return " ".join(str(value).split())


def _bool(meta: dict[str, Any], name: str) -> bool:
    value = meta.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise _Bad(name, f"{_reprs.repr(value)} is not true or false (expected true or false)")


_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d %B %Y", "%B %d, %Y", "%Y/%m/%d")


def _date(meta: dict[str, Any], name: str, tz, default_time: time) -> datetime | None:
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
        parsed = _parse_date_text(value.strip(), default_time)
    if parsed is None:
        raise _Bad(
            name,
            f"{_reprs.repr(value)} is not a date "
            "(expected YYYY-MM-DD or an ISO 8601 datetime like 2024-02-01T09:00:00+01:00)",
        )
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _parse_date_text(text: str, default_time: time) -> datetime | None:
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


def _filename_date(path: Path, tz, default_time: time) -> datetime | None:
    """Jekyll names posts 2024-02-01-title.md; that date stands in for a missing one."""
    match = re.match(r"(\d{4}-\d{2}-\d{2})-", path.name)
    if not match:
        return None
    try:
        return datetime.combine(date.fromisoformat(match.group(1)), default_time, tz)
    except ValueError:
        return None


def _slug(meta: dict[str, Any], path: Path) -> str:
    given = _text(meta, "slug")
    stem = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", path.stem)
    slug = slugify(given if given is not None else stem)
    if not slug:
        raise _Bad("slug", f"{_reprs.repr(given or stem)} gives an empty slug (expected letters or digits)")
    return slug


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


ID_MAX_CHARS = 200
_ID_EXPECTED = "expected one line of text or a whole number, like 'tide-tables' or 1042"
_ID_QUOTED = "expected text in quotes, like '1.10', or a whole number"


def _id(meta: dict[str, Any]) -> str | None:
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
            shown = f"{_reprs.repr(value)} is a {kind}"
        raise _Bad("id", f"{shown} ({_ID_EXPECTED})")
    if isinstance(value, float):
        raise _Bad(
            "id", f"{_reprs.repr(value)} is a decimal number, which YAML may have changed ({_ID_QUOTED})"
        )
    text = str(value).strip()
    if not text:
        raise _Bad("id", f"is empty ({_ID_EXPECTED})")
    if not text.isprintable():
        raise _Bad("id", f"{_reprs.repr(text)} is not one line ({_ID_EXPECTED}, no line breaks or tabs)")
    if len(text) > ID_MAX_CHARS:
        raise _Bad("id", f"is {len(text)} characters ({_ID_EXPECTED}, at most {ID_MAX_CHARS} characters)")
    return text


def _url(meta: dict[str, Any], base_url: str, slug: str) -> tuple[str, str | None]:
    """The article's URL, and the field that gave it (None when made from base_url + slug)."""
    for name in ("url", "canonical_url"):
        given = _text(meta, name)
        if given is not None:
            return _http_url(name, given, base_url), name
    return urljoin(base_url, slug), None


def _image_url(value: str, base_url: str) -> str:
    """Relative image paths are published beside the articles, under base_url."""
    return _http_url("heroImage", value, base_url)


def _http_url(name: str, given: str, base_url: str) -> str:
    """`given` made absolute against base_url; anything but http(s) is an error."""
    url = urljoin(base_url, given)
    parts = urlsplit(url)
    if (
        url_scheme(given) not in (None, *IMAGE_SCHEMES)
        or parts.scheme not in IMAGE_SCHEMES
        or not parts.netloc
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        raise _Bad(
            name,
            f"{_reprs.repr(given)} is not an http(s) URL "
            "(expected https://..., or a path under site.base_url)",
        )
    return url


def url_scheme(url: str) -> str | None:
    """The scheme a browser would see, lower-cased, or None for a relative URL.

    Read after HTML entities and percent-escapes are decoded and spaces, tabs and control
    characters dropped, so ` JaVaScRiPt:`, `java<TAB>script:` and `&#106;avascript:` all give
    `javascript`.
    """
    seen = _INVISIBLE.sub("", unquote(html.unescape(url)))
    match = _SCHEME.match(seen)
    return match.group(1).lower() if match else None


def _neutralise_links(tokens: list[Token], warn) -> None:
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


def _allowed(token: Token, attr: str, schemes: tuple[str, ...], warn) -> bool:
    url = str(token.attrGet(attr) or "")
    if url_scheme(url) in (None, *schemes):
        return True
    what = "link" if attr == "href" else "image"
    warn(
        "body",
        f"{what} {_reprs.repr(url)} is not allowed (expected {', '.join(f'{s}:' for s in schemes)} "
        "or a relative path; shown as text)",
    )
    return False


def _read_minutes(meta: dict[str, Any], words: int, wpm: int, warn) -> int:
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
        f"{_reprs.repr(value)} is not a reading time "
        f"(expected like '8 mins'; using {estimated} from the word count)",
    )
    return estimated


def _tags(meta: dict[str, Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for name in ("tags", "categories"):
        value = meta.get(name)
        if value is None:
            continue
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, (str, int)) for i in items):
            raise _Bad(name, f"{_reprs.repr(value)} is not a list of words (expected [ai, startups])")
        tags.extend(str(i).strip() for i in items if str(i).strip())
    return tuple(dict.fromkeys(tags))


def _excerpt(tokens: list[Token], limit: int) -> str:
    """Plain text of the body's first paragraphs, cut at a word boundary."""
    words: list[str] = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        words.extend(" ".join(c.content for c in token.children if c.type in ("text", "code_inline")).split())
        if sum(len(w) + 1 for w in words) > limit:
            break
    return shorten(" ".join(words), limit)
