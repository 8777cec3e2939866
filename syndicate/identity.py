"""Which article is which: a renamed file keeps the ledger names of its sends.

Per-article sends are recorded under `channel:stem`; the stem is the article's slug, which
defaults to its file name, so renaming a file used to make it a new article, sent again to
every reader and network. The ledger's `articles` table now remembers, per article, the stem
its sends carry, its identity (`content.identity`: its `id`, else the `url` or
`canonical_url` it gives, else its slug), its file and content hash. `resolve()` gives each
article the stem recorded for it, trying in turn:

1. a row with its identity (for an article given an `id` or `url` since, its slug identity);
2. a row with exactly its bytes whose file is gone: the same file renamed or moved;
3. its own slug, as before this table existed, so ledgers written before it (`channel:slug`
   keys) resolve to the keys they hold. A slug whose stem still belongs to another article
   (a new file taking the name of one renamed away) gets `slug~2`, `slug~3`, ...

Each article found under another file than the one recorded comes back as a warning naming
both files. Recording (`record=True`: `syndicate send` and the daemon, never a dry run) keeps
the rows in step with the folder, so the next rename is recognised from there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from .config import Config
from .content import Article, Problem, display, identity
from .continuity import open_ledger
from .errors import DeliveryError
from .ledger import KnownArticle, Ledger
from .plan import is_digest_channel


def identify(
    config: Config,
    articles: Sequence[Article],
    *,
    channels: Iterable[str] | None = None,
    record: bool,
    new_ledger: bool = False,
) -> tuple[list[Article], list[Problem]]:
    """`resolve()` against the configured ledger, as `syndicate send` does. Only per-article
    channels among `channels` (default: all) need it: a digest's key is its date. A dry run
    records nothing, and with no ledger yet it has nothing to look up."""
    chosen = list(config.channels) if not channels else [c for c in channels if c in config.channels]
    if all(is_digest_channel(config, c) for c in chosen):
        return list(articles), []
    if not record:  # a dry run: read what the ledger knows, write nothing, create nothing
        reader = Ledger.reader(config)
        if reader is None or "articles" not in reader.tables:
            if reader is not None:
                reader.close()
            return list(articles), []
        with reader:
            return resolve(config, reader, articles, record=False)
    with open_ledger(config, new_ledger) as ledger:  # a lost ledger is refused before it is written
        try:
            return resolve(config, ledger, articles, record=record)
        except DeliveryError:  # a ledger refusing writes (a full disk): the send reports it itself
            return resolve(config, ledger, articles, record=False)


def resolve(
    config: Config,
    ledger: Ledger,
    articles: Sequence[Article],
    *,
    everyone: Sequence[Article] | None = None,
    record: bool = True,
) -> tuple[list[Article], list[Problem]]:
    """`articles`, in order, each with the stem of its sends, and a warning per article found
    under another file than before. `everyone` is the whole folder as loaded (default:
    `articles`), to tell a file that is gone from one still holding its article. Drafts are
    passed through: they are never sent."""
    sendable = [a for a in articles if not a.draft]
    near = None
    if len(sendable) <= FEW:  # a daemon's job or rescan: only the rows that can matter
        identities = {key for a in sendable for key in (identity(a), f"slug:{a.slug}")}
        near = (identities, {a.content_hash for a in sendable}, {a.slug for a in sendable})
    rows = ledger.known_articles(near)
    resolver = _Resolver(config, rows, everyone if everyone is not None else articles)
    return resolver.run(articles, ledger if record else None)


FEW = 100  # up to this many articles are looked up by their keys, more by reading every row


class _Resolver:
    def __init__(self, config: Config, rows: list[KnownArticle], everyone: Sequence[Article]) -> None:
        self.root = Path(os.path.abspath(config.content.dir))
        self._prefix = os.path.join(self.root, "")
        self._files: dict[Path, str] = {}
        self.rows = rows
        self.by_identity = {row.identity: row for row in rows}
        self.by_stem = {row.stem: row for row in rows}
        self.everyone = everyone
        self.claimed: set[str] = set()  # stems given out in this run
        self.found: dict[int, tuple[str, KnownArticle | None, str]] = {}  # index -> stem, row, why

    @cached_property
    def held(self) -> set[str]:
        """The identities the articles in the folder hold."""
        return {identity(a) for a in self.everyone}

    @cached_property
    def at(self) -> dict[str, Article]:
        """The articles in the folder by file, as recorded."""
        return {self.file(a.path): a for a in self.everyone}

    def run(self, articles: Sequence[Article], ledger: Ledger | None) -> tuple[list[Article], list[Problem]]:
        sendable = [(n, a) for n, a in enumerate(articles) if not a.draft]
        for n, article in sendable:  # an id or an explicit url: the user's word
            if identity(article) != f"slug:{article.slug}":
                self._by_row(n, self.by_identity.get(identity(article)), article)
        for n, article in sendable:  # bytes the ledger knows from a file that no longer has them
            if n not in self.found and identity(article) not in self.by_identity:
                self._by_content(n, article)
        for n, article in sendable:  # its slug (for an id or url given since, the slug it had)
            if n not in self.found:
                self._by_row(n, self._slug_row(article), article)
        for n, article in sendable:
            if n not in self.found:
                self._by_slug(n, article)
        resolved, renamed, changed = list(articles), [], []
        for n, (stem, row, why) in sorted(self.found.items()):
            article = articles[n]
            now = KnownArticle(stem, identity(article), self.file(article.path), article.content_hash)
            if row is not None and row.path != now.path:
                renamed.append(
                    Problem(
                        article.path,
                        "file",
                        "warning",
                        f"was {self.shown(row.path)} ({why}): the same article, "
                        "so nothing already sent for it goes out again",
                    )
                )
            if row != now:
                changed.append(now)
            if stem != article.slug:
                resolved[n] = replace(article, stem=stem)
        if ledger is not None:
            ledger.remember_articles(changed)
        return resolved, renamed

    def _by_row(self, n: int, row: KnownArticle | None, article: Article) -> None:
        if row is not None and row.stem not in self.claimed:
            self._take(n, row.stem, row, _same(article, row.identity))

    def _slug_row(self, article: Article) -> KnownArticle | None:
        """The row its slug identifies. For a slug shared with another article (`handle`), only
        the row of this very file (or of one gone): a new `2018/hello` must not take the sends of
        the `2019/hello` that had the slug to itself until then."""
        row = self.by_identity.get(f"slug:{article.slug}")
        mine = row is None or article.handle is None or row.path == self.file(article.path)
        return row if mine or (row is not None and self._gone(row)) else None

    def _by_content(self, n: int, article: Article) -> None:
        for row in reversed(self.rows):  # the latest first
            if (
                row.content_hash == article.content_hash
                and row.stem not in self.claimed
                and (row.identity.startswith("slug:") or row.identity not in self.held)
                and self._gone(row)
            ):
                self._take(n, row.stem, row, "same content")
                return

    def _by_slug(self, n: int, article: Article) -> None:
        stem, count = article.slug, 1
        while stem in self.claimed or (stem in self.by_stem and self._elsewhere(self.by_stem[stem], article)):
            count += 1
            stem = f"{article.slug}~{count}"
        self._take(n, stem, self.by_stem.get(stem), f"same slug {article.slug!r}")

    def _take(self, n: int, stem: str, row: KnownArticle | None, why: str) -> None:
        self.claimed.add(stem)
        self.found[n] = (stem, row, why)

    def _gone(self, row: KnownArticle) -> bool:
        """The recorded file no longer holds those bytes: deleted, renamed, or rewritten. A file
        that is there but was not loaded (unreadable, or not asked for) counts as still there."""
        there = self.at.get(row.path)
        if there is not None:
            return there.content_hash != row.content_hash
        return not (self.root / row.path).exists()

    def _elsewhere(self, row: KnownArticle, article: Article) -> bool:
        """The row's article is still in the folder, as another file than this one."""
        return row.identity in self.held or (row.path != self.file(article.path) and not self._gone(row))

    def file(self, path: Path) -> str:
        """A path as recorded: relative to the content folder, so the site can move."""
        recorded = self._files.get(path)
        if recorded is None:
            absolute = os.path.abspath(path)
            inside = absolute.startswith(self._prefix)
            recorded = absolute[len(self._prefix) :].replace(os.sep, "/") if inside else absolute
            self._files[path] = recorded
        return recorded

    def shown(self, recorded: str) -> str:
        return display(self.root / recorded)


def _same(article: Article, key: str) -> str:
    if key.startswith("id:"):
        return f"same id {article.id!r}"
    if key.startswith("url:"):
        return f"same {article.url_field} {article.url}"
    return f"same slug {article.slug!r}"
