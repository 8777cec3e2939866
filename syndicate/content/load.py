"""Loading a content folder: every file read, checked and normalised into an `Article`.

Loading never raises for a bad file: it returns the good articles and a `Problem` per
mistake, so one broken article never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ContentError
from .article import Article, Loaded, Problem, display, identity, reprs
from .feed import FeedPoller, read_feed
from .files import Selection, walk
from .presets import preset
from .read import read_article


def load_articles(config: Config, paths: Iterable[str | os.PathLike[str]] | None = None) -> Loaded:
    """Load the configured content folder, or the given files and folders instead."""
    roots = [Path(p) for p in paths] if paths else [config.content.dir]
    feed = read_feed(config) if not paths and config.content.feed is not None else None  # content.feed
    if feed is not None and not config.content.dir.exists():  # the feed alone
        roots = []
    rules = selection(config)
    files: list[Path] = []
    passed: list[Problem] = []
    for root in roots:
        found = walk(root, rules)
        files.extend(found.files)
        passed.extend(Problem(path, "file", "skipped", f"is {why}") for path, why in found.skipped)
    if not files and not passed and feed is None:
        where = ", ".join(str(r) for r in roots)
        raise ContentError(f"{where}: no articles found (expected *.md, *.markdown or *.mdx files)")
    loaded = _assemble([*((path, *read_article(path, config)) for path in files), *(feed or [])])
    loaded.problems.extend(passed)
    return loaded


def selection(config: Config) -> Selection:
    settings = config.content
    return Selection.of(settings.include, settings.exclude, preset(settings.preset))


def _assemble(read: Iterable[tuple[Path, Article | None, list[Problem]]]) -> Loaded:
    """Collect read files into a `Loaded`. A second article with an `id` already taken is an
    error naming both files, and so is one at a URL already taken (unless ids tell them apart):
    it would be the same article (`identity`). Articles may share a slug at different URLs
    (`2019/hello`, `2024/hello`): each then has a `handle` naming it by its URL, and an
    identity by its URL, so the ledger keeps their sends apart."""
    loaded = Loaded([], [])
    by_url: dict[str, Path] = {}
    by_identity: dict[str, Path] = {}
    for path, article, problems in read:
        loaded.problems.extend(problems)
        if article is None:
            continue
        same = identity(article)
        if same in by_identity and not same.startswith("slug:"):  # a shared slug is told apart below
            loaded.problems.append(_taken_identity(path, article, by_identity[same]))
            continue
        if article.id is None and article.url in by_url:  # articles with ids may share a URL
            loaded.problems.append(_taken_url(path, article, by_url[article.url]))
            continue
        if article.id is None:
            by_url[article.url] = path
        by_identity[same] = path
        loaded.articles.append(article)
    shared = Counter(a.slug for a in loaded.articles)
    if any(count > 1 for count in shared.values()):
        loaded.articles = [_apart(a) if shared[a.slug] > 1 else a for a in loaded.articles]
    return loaded


def _apart(article: Article) -> Article:
    """An article whose slug another article shares: named and identified by its URL."""
    where = urlsplit(article.url).path.strip("/") or article.slug
    return replace(article, handle=f"{article.slug}@{where}", url_field=article.url_field or "permalink")


def _taken_url(path: Path, article: Article, first: Path) -> Problem:
    message = (
        f"{reprs.repr(article.url)} is already the URL of {display(first)} "
        "(expected each article its own URL: a slug, permalink or url of its own)"
    )
    return Problem(path, article.url_field or "slug", "error", message)


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

    def by_name(self) -> dict[str, Article]:
        """The articles by `Article.name`: their slug, or their handle when a slug is shared."""
        return {a.name: a for a in self.loaded.articles}

    def refresh(self) -> dict[str, Article | None]:
        """Rescan; returns the articles that appeared or changed (name -> article) and those
        that went away or became unusable (name -> None)."""
        no_folder = self.feed is not None and not self.config.content.dir.exists()  # the feed alone
        files = [] if no_folder else walk(self.config.content.dir, selection(self.config)).files
        fresh: dict[Path, _Cached] = {}
        for path in files:
            fresh[path] = self._read(path, self._files.get(path))
        before = self.by_name()
        self._files = fresh
        read = [(path, entry.article, entry.problems) for path, entry in fresh.items()]
        self.loaded = _assemble([*read, *(self.feed.poll() if self.feed is not None else [])])
        after = self.by_name()
        return {
            name: after.get(name)
            for name in before.keys() | after.keys()
            if before.get(name) != after.get(name)
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
