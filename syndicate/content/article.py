"""What loading gives: `Article`, the `Problem`s found on the way, and what makes an article itself."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

# "skipped": a file that is not an article (a page without a date under a preset, `permalink:
# false`): passed over without an error, counted in `validate`'s summary.
Severity = Literal["error", "warning", "skipped"]
reprs = reprlib.Repr()
reprs.maxstring = 60
reprs.maxother = 60


class FieldError(Exception):
    """A field that makes the article unusable; becomes an error Problem."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; `str()` is the one line a user sees."""

    path: Path
    field: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{display(self.path)}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "path": display(self.path),
            "field": self.field,
            "severity": self.severity,
            "message": self.message,
        }


def display(path: Path) -> str:
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
    updated_date: datetime | None = None
    # Hugo's expiryDate: nothing goes out for it from then on (`live`).
    expiry_date: datetime | None = None
    hero_alt: str | None = None  # the image's own alt text, when its frontmatter gives one
    cta_url: str | None = None  # where the call to action points when not the article (site.cta_url)
    # Its name among the loaded articles when its slug is shared with another article at another
    # URL (`slug@path`); None when the slug is its own. What the daemon's jobs are named by.
    handle: str | None = None
    # The name its sends carry in the ledger (`channel:stem`) when not its slug: the slug it was
    # first seen under, for an article renamed since. Set by `identity.resolve`, never by loading.
    stem: str | None = None
    lang: str | None = None  # its language (BCP 47) when its frontmatter's `lang` gives one
    # Its own post text per network (frontmatter `social:`), used instead of the template's.
    social: dict[str, str] = field(default_factory=dict)
    # Frontmatter `thread:`: whether its posts may become threads; None: as the channel says.
    thread: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The article's name among those loaded: its slug, unless another article shares it."""
        return self.handle or self.slug

    def live(self, now: datetime) -> bool:
        """Whether anything may go out for it at `now`: not a draft (or `published: false`), and
        not past its expiry date."""
        return not self.draft and (self.expiry_date is None or now < self.expiry_date)

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
            "updated_date": self.updated_date.isoformat() if self.updated_date else None,
            "hero_image": self.hero_image,
            "hero_alt": self.hero_alt,
            "cta": self.cta,
            "cta_url": self.cta_url,
            "tags": list(self.tags),
            "social": dict(self.social),
            "thread": self.thread,
            "lang": self.lang,
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

    @property
    def skipped(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "skipped"]
