"""One file read into an `Article`: frontmatter split, aliases applied, every field read into its
type, the URL made, the body rendered, and each mistake or caveat a `Problem`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from .. import clock
from ..config import Config, wants_full_body
from . import fields
from .article import Article, FieldError, Problem, reprs
from .cleanup import inline_text, split_excerpt, strip_mdx, strip_templating
from .excerpt import excerpt_of
from .files import folders_of
from .frontmatter import read_bytes, split
from .markdown import markdown, neutralise_links, url_scheme
from .permalink import Place, fill
from .presets import DEFAULT_ALIASES, DEFAULT_PERMALINK, Preset, preset

# Fields syndicate reads; the rest of the frontmatter is kept in `Article.extra` for templates.
KNOWN = {
    "title",
    "subtitle",
    "description",
    "author",
    "read_time",
    "publish_date",
    "created_date",
    "updated_date",
    "expiry_date",
    "heroImage",
    "hero_image",
    "cta",
    "cta_url",
    "social",
    "thread",
    "tags",
    "categories",
    "category",
    "slug",
    "url",
    "canonical_url",
    "permalink",
    "draft",
    "published",
    "excerpt",
    "excerpt_separator",
    "id",
    "lang",
}
EXCERPT_CHARS = 300
Warn = Callable[[str, str], None]


class Skipped(Exception):
    """A file that is not an article (a page, not a post): passed over without an error."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def read_article(path: Path, config: Config) -> tuple[Article | None, list[Problem]]:
    """Read one file; the article is None when any problem is an error (or it is skipped)."""
    problems: list[Problem] = []

    def warn(field: str, message: str) -> None:
        problems.append(Problem(path, field, "warning", message))

    try:
        raw = read_bytes(path, config.content.max_bytes)
        meta, body = split(raw)
        article = _normalise(path, raw, meta, body, config, warn)
    except FieldError as bad:
        return None, [*problems, Problem(path, bad.field, "error", bad.message)]
    except Skipped as skip:
        return None, [Problem(path, skip.field, "skipped", skip.reason)]
    return article, problems


def apply_aliases(meta: dict[str, Any], own: dict[str, str], chosen: Preset | None) -> set[str]:
    """Copy aliased fields to the names syndicate reads: the user's aliases first, then the
    preset's (or the defaults), the first present winning; a field already under its own name
    always wins. `extra.image` reads Zola's `[extra]` table. Returns the alias names used up."""
    pairs = [*own.items(), *(chosen.aliases if chosen else DEFAULT_ALIASES)]
    used: set[str] = set()
    for alias, name in pairs:
        value = _lookup(meta, alias)
        if value is None or name in meta:
            continue
        meta[name] = value
        used.add(alias.split(".", 1)[0])
    return used


def _lookup(meta: dict[str, Any], dotted: str) -> Any:
    if "." not in dotted:
        return meta.get(dotted)
    value: Any = meta
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _normalise(
    path: Path, raw: bytes, meta: dict[str, Any], body: str, config: Config, warn: Warn
) -> Article:
    settings, site, tz = config.content, config.site, config.site.tz
    chosen = preset(settings.preset)
    used = apply_aliases(meta, settings.aliases, chosen)
    if "hero_image" in meta and "heroImage" not in meta:
        meta["heroImage"] = meta["hero_image"]

    permalink = meta.get("permalink")
    if permalink is False:  # Eleventy: the file writes no page
        raise Skipped("permalink", "is false: this file makes no page (not an article)")
    title = inline_text(fields.text(meta, "title", required=True) or "")  # required: never None
    draft = fields.flag(meta, "draft")
    unpublished = _unpublished(meta)
    publish = fields.moment(meta, "publish_date", tz, settings.default_time)
    if publish is None:
        publish = fields.filename_date(path, tz, settings.default_time)
    if publish is None:
        if chosen is not None and chosen.skip_undated:
            raise Skipped("publish_date", f"has no date: a page, not a post (the {chosen.name} preset)")
        if not (draft or unpublished):
            raise FieldError("publish_date", "is missing (expected a date like '2024-02-01')")
        publish = datetime.fromtimestamp(path.stat().st_mtime, tz)
    created = fields.moment(meta, "created_date", tz, settings.default_time)
    updated = fields.moment(meta, "updated_date", tz, settings.default_time)
    expiry = fields.moment(meta, "expiry_date", tz, settings.default_time)
    folders, bundle = folders_of(path, settings.dir)
    slug = fields.slug(meta, path, bundle)
    article_id = fields.id(meta)
    place = Place(slug, publish.astimezone(tz), folders, _categories(meta))  # URL dates: the site's
    url, url_field = _url(meta, config, place, warn)
    hero, hero_alt = fields.picture(meta, "heroImage")
    if hero is not None:
        # A bundle's images sit beside its page; other relative images under base_url.
        beside = bundle is not None and url_scheme(hero) is None and not hero.startswith("/")
        hero = fields.image_url(hero, url if beside else site.base_url)
    body, teaser, clean = _prepare(path, body, meta, settings.excerpt_separator, chosen)
    minutes = fields.read_minutes(meta, body, settings.words_per_minute, warn)
    description = _plain(fields.text(meta, "description"))
    cta = _plain(fields.text(meta, "cta")) or site.cta
    # Where the call to action leads: the article's own cta_url, else site.cta_url (a "Follow us
    # on LinkedIn" in every article leads to LinkedIn), else the article (the composer's default).
    given_cta_url = fields.text(meta, "cta_url")
    cta_url = fields.http_url("cta_url", given_cta_url, site.base_url) if given_cta_url else site.cta_url
    tags = fields.tags(meta)
    excerpt = _plain(fields.text(meta, "excerpt")) or ""
    body_html = ""
    if wants_full_body(config):
        # The whole body is cleaned, parsed, its links checked and its HTML kept only for a
        # channel that sends whole articles (`body: full`): about 70 KB an article otherwise.
        tokens = markdown.parse(clean(body))
        neutralise_links(tokens, warn)
        body_html = markdown.renderer.render(tokens, markdown.options, {})
        if not excerpt:
            teased = markdown.parse(clean(teaser)) if teaser is not None else tokens
            excerpt = excerpt_of(teased, EXCERPT_CHARS)
    elif not excerpt:  # only the excerpt is needed: the teaser, or as much of the body as it takes
        excerpt = _excerpt(teaser, clean) if teaser is not None else _excerpt(body, clean, lead=True)

    if created is not None and publish < created:
        warn(
            "publish_date",
            f"{publish.date()} is before created_date {created.date()} "
            "(expected publish_date on or after created_date)",
        )
    if cta is None:
        warn("cta", "is missing (expected a call to action for emails and posts, or site.cta for all)")
    if hero is not None and not hero.startswith("https://"):
        warn(
            "heroImage",
            f"{reprs.repr(hero)} is not https (expected an https:// image URL; "
            "mail clients block or warn on plain http images)",
        )
    if description is None:
        warn("description", "is missing (expected a summary for previews; the excerpt is used)")
    elif len(description) > settings.preheader_chars:
        warn(
            "description",
            f"is {len(description)} characters (expected at most "
            f"{settings.preheader_chars} for an email preheader; it will be cut)",
        )
    if draft:
        warn("draft", "is true (this article is not sent until draft is removed)")
    if unpublished:
        warn("published", "is false (this article is not sent until it is published)")
    _warn_expiry(expiry, chosen, meta, publish, warn)

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
        subtitle=_plain(fields.text(meta, "subtitle")),
        description=description,
        author=_plain(fields.people(meta, "author")),
        created_date=created,
        updated_date=updated,
        expiry_date=expiry,
        hero_image=hero,
        hero_alt=hero_alt,
        cta=cta,
        cta_url=cta_url,
        tags=tags,
        draft=draft or unpublished,
        id=article_id,
        url_field=url_field,
        lang=fields.language(meta),
        social=fields.social_copy(meta),
        thread=fields.flag(meta, "thread") if meta.get("thread") is not None else None,
        extra={k: v for k, v in meta.items() if k not in KNOWN and k not in used},
    )


def _prepare(
    path: Path, body: str, meta: dict[str, Any], separator: str | None, chosen: Preset | None
) -> tuple[str, str | None, Callable[[str], str]]:
    """The body (without a separator that is not a comment), the part before the excerpt
    separator (None without one), and how to clean either as its generator would before
    markdown: `.mdx` loses its imports, exports and component tags (their text kept); under a
    preset whose generator runs a template language first (Jekyll's Liquid, Hugo's shortcodes,
    Eleventy's Nunjucks, Zola's Tera) its tags and comments go too. Cleaning is left to the
    caller, so a teaser email cleans only the part its excerpt is read from."""
    own = meta.get("excerpt_separator")
    teaser = split_excerpt(body, own if isinstance(own, str) and own else separator)
    if isinstance(own, str) and own and own in body and not own.lstrip().startswith("<!--"):
        body = body.replace(own, "", 1)  # a separator that is not a comment stays out of the body
    mdx = path.suffix.lower() == ".mdx"
    templating = chosen is not None and chosen.templating

    def clean(text: str) -> str:
        text = strip_mdx(text) if mdx else text
        return strip_templating(text) if templating else text

    return body, teaser, clean


# How much of a body the excerpt is read from, in characters of markdown, before the first blank
# line after it: 300 characters of text need far fewer, unless the start is code or HTML.
LEAD_CHARS = 1_000
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S.*$", re.MULTILINE)


def _excerpt(body: str, clean: Callable[[str], str], lead: bool = False) -> str:
    """The excerpt from a body's first paragraphs (`lead`: cleaning and parsing only them, and
    the link reference definitions further down that they may use), or from the whole body when
    those hold too little text."""
    cut = body.find("\n\n", LEAD_CHARS) if lead else -1
    if cut >= 0:
        references = _REFERENCE.findall(body, cut)
        head = clean(body[:cut]) + ("\n\n" + "\n".join(references) if references else "")
        excerpt = excerpt_of(markdown.parse(head), EXCERPT_CHARS)
        if len(excerpt) >= EXCERPT_CHARS - 40:
            return excerpt
    return excerpt_of(markdown.parse(clean(body)), EXCERPT_CHARS)


def _plain(text: str | None) -> str | None:
    """Markdown in a frontmatter text (`[Ann](https://a.example)`, backticks) read as its text."""
    return inline_text(text) or None if text is not None else None


def _unpublished(meta: dict[str, Any]) -> bool:
    """Jekyll's `published: false`. A `published` that is a date (Hugo's alias of publishDate)
    is not this flag."""
    value = meta.get("published")
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return not fields.flag(meta, "published")
    return False


def _categories(meta: dict[str, Any]) -> tuple[str, ...]:
    """Jekyll's `:categories`: `categories` (a list or space-separated) or `category`, slugified."""
    value = meta.get("categories", meta.get("category"))
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return ()
    return tuple(s for s in (fields.slugify(str(v)) for v in value if isinstance(v, (str, int))) if s)


def _url(meta: dict[str, Any], config: Config, place: Place, warn: Warn) -> tuple[str, str | None]:
    """The URL an article gives (`url`, `canonical_url`), else its own `permalink`, else the
    configured (or preset's) pattern; and the field that gave it (None for the pattern)."""
    base = config.site.base_url
    given = fields.given_url(meta, base)
    if given is not None:
        return given
    own = meta.get("permalink")
    if isinstance(own, str) and own.strip():
        if "{{" in own or "{%" in own:  # Eleventy's templated permalinks are its own to evaluate
            warn("permalink", f"{reprs.repr(own)} is a template (expected a path; the pattern is used)")
        else:
            return fields.http_url("permalink", urljoin(base, fill(own.strip(), place)), base), "permalink"
    elif own is not None and own is not True:
        raise FieldError("permalink", f"{reprs.repr(own)} is not a path (expected like /news/:slug/)")
    chosen = preset(config.content.preset)
    pattern = config.content.permalink or (chosen.permalink if chosen else DEFAULT_PERMALINK)
    path = fill(pattern, place)
    plain = "./" not in path and path != "." and ":" not in path.partition("/")[0]
    return (base + path if plain else urljoin(base, path)), None  # base_url ends with /


def _warn_expiry(
    expiry: datetime | None, chosen: Preset | None, meta: dict[str, Any], publish: datetime, warn: Warn
) -> None:
    now = clock.now()
    if expiry is not None and expiry <= now:
        warn("expiry_date", f"{expiry.isoformat()} has passed (this article is no longer sent)")
    elif expiry is not None and expiry <= publish:
        warn("expiry_date", f"{expiry.isoformat()} is not after its publish date (it is never sent)")
    if chosen is not None and chosen.name == "hugo" and "publishDate" in meta and publish > now:
        warn(
            "publishDate",
            f"{publish.isoformat()} is in the future (Hugo builds it only then; nothing goes out before)",
        )
