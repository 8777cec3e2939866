"""Loading a content folder: every file read, checked and normalised into an `Article`.

Loading never raises for a bad file: it returns the good articles and a `Problem` per
mistake, so one broken article never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ContentError
from . import fields
from .article import Article, FieldError, Loaded, Problem, display, identity, reprs
from .excerpt import excerpt_of
from .feed import FeedPoller, read_feed
from .frontmatter import read_bytes, split
from .markdown import markdown, neutralise_links

MARKDOWN_SUFFIXES = (".md", ".markdown")
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


def load_articles(config: Config, paths: Iterable[str | os.PathLike[str]] | None = None) -> Loaded:
    """Load the configured content folder, or the given files and folders instead."""
    if not paths and config.content.feed is not None:  # content.feed: its entries, and the folder's if any
        folder = _markdown_files(config.content.dir) if config.content.dir.exists() else []
        return _assemble([*((path, *read_article(path, config)) for path in folder), *read_feed(config)])
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
        taken = f"{reprs.repr(article.id)} is already the id of {display(first)}"
        message = f"{taken} (expected each article its own id)"
        return Problem(path, "id", "error", message)
    message = (
        f"{reprs.repr(article.url)} is already the URL of {display(first)}, which makes them one "
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
        self.feed = FeedPoller(config) if config.content.feed is not None else None  # content.feed

    def by_slug(self) -> dict[str, Article]:
        return {a.slug: a for a in self.loaded.articles}

    def refresh(self) -> dict[str, Article | None]:
        """Rescan; returns the articles that appeared or changed (slug -> article) and those
        that went away or became unusable (slug -> None)."""
        no_folder = self.feed is not None and not self.config.content.dir.exists()  # the feed alone
        files = [] if no_folder else _markdown_files(self.config.content.dir)
        fresh: dict[Path, _Cached] = {}
        for path in files:
            fresh[path] = self._read(path, self._files.get(path))
        before = {a.slug: a for a in self.loaded.articles}
        self._files = fresh
        read = [(path, entry.article, entry.problems) for path, entry in fresh.items()]
        self.loaded = _assemble([*read, *(self.feed.poll() if self.feed is not None else [])])
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
        raw = read_bytes(path, config.content.max_bytes)
        meta, body = split(raw)
        article = _normalise(path, raw, meta, body, config, warn)
    except FieldError as bad:
        return None, [*problems, Problem(path, bad.field, "error", bad.message)]
    return article, problems


def _normalise(path: Path, raw: bytes, meta: dict[str, Any], body: str, config: Config, warn) -> Article:
    aliases = {**_DEFAULT_ALIASES, **config.content.aliases}
    for alias, name in aliases.items():
        if alias in meta and name not in meta:
            meta[name] = meta[alias]
    if "hero_image" in meta and "heroImage" not in meta:
        meta["heroImage"] = meta["hero_image"]
    tz = config.site.tz

    title = fields.text(meta, "title", required=True) or ""  # required: never None
    draft = fields.flag(meta, "draft")
    publish = fields.moment(meta, "publish_date", tz, config.content.default_time)
    if publish is None:
        publish = fields.filename_date(path, tz, config.content.default_time)
    if publish is None:
        if not draft:
            raise FieldError("publish_date", "is missing (expected a date like '2024-02-01')")
        publish = datetime.fromtimestamp(path.stat().st_mtime, tz)
    created = fields.moment(meta, "created_date", tz, config.content.default_time)
    slug = fields.slug(meta, path)
    article_id = fields.id(meta)
    url, url_field = fields.url(meta, config.site.base_url, slug)
    hero = fields.text(meta, "heroImage")
    if hero is not None:
        hero = fields.image_url(hero, config.site.base_url)
    words = len(body.split())
    minutes = fields.read_minutes(meta, words, config.content.words_per_minute, warn)
    description = fields.text(meta, "description")
    cta = fields.text(meta, "cta")
    tags = fields.tags(meta)
    tokens = markdown.parse(body)  # parsed once: the HTML and the excerpt share it
    neutralise_links(tokens, warn)
    body_html = markdown.renderer.render(tokens, markdown.options, {})
    excerpt = excerpt_of(tokens, 300)

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
            f"{reprs.repr(hero)} is not https (expected an https:// image URL; "
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
        subtitle=fields.text(meta, "subtitle"),
        description=description,
        author=fields.text(meta, "author"),
        created_date=created,
        hero_image=hero,
        cta=cta,
        tags=tags,
        draft=draft,
        id=article_id,
        url_field=url_field,
        extra={k: v for k, v in meta.items() if k not in _KNOWN and k not in aliases},
    )
