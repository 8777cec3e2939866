"""Email drafts: articles + config + templates -> subject, preheader, HTML and plain text.

The HTML goes Jinja2 (autoescape, StrictUndefined) -> MJML -> css-inline (CSS inlined, media
queries kept). That chain costs milliseconds, so it runs once per draft: per-recipient
fields are left as placeholders (`PLACEHOLDERS`) that `compose.mime` fills in cheaply per message.
Nothing here touches the network: MJML gets only the configured fonts, css-inline runs with
`load_remote_stylesheets=False`, and images are linked, never fetched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import css_inline
import mjml
from markupsafe import Markup, escape

from ..config import Config, EmailChannel, Utm, unsubscribe_configured
from ..content import Article
from ..errors import ConfigError, TemplateError
from ..keys import article_key, digest_key
from ..language import direction
from ..naming import archive_name
from ..personal import RecipientView
from ..plan import digest_articles
from ..schedule import latest_digest_end
from ..templating import get_template, render_string, render_template, site_view
from .article_html import EmailBody, email_body
from .mjml_output import repair
from .textlength import shorten

# Per-recipient fields: templates print these markers and compose.mime replaces them in the
# finished HTML and text. Letters and underscores only, so MJML, lxml (which percent-escapes
# odd characters in href) and quoted-printable all leave them intact.
PLACEHOLDERS = {
    "name": "__syndicate_name__",
    "email": "__syndicate_email__",
    "greeting": "__syndicate_greeting__",
    "unsubscribe_url": "__syndicate_unsubscribe_url__",
}
# `recipient` in templates: name, email, greeting and any attribute, as markers (personal.py).
_RECIPIENT = RecipientView()
# Room left under the clip limit for what replaces the placeholders (a long unsubscribe URL).
PERSONALISATION_MARGIN = 1024
CTA_BUTTON_CHARS = 40
DEFAULT_SUBJECTS = {
    "digest": "{{ site.name }}: {{ articles|length }} new article{{ '' if articles|length == 1 else 's' }}",
    "single": "{{ article.title }}",
}
DEFAULT_TEMPLATES = {"digest": "digest.mjml", "single": "single.mjml"}
SYSTEM_FONTS = "Helvetica, Arial, sans-serif"
# After a whole article cut to fit the clip limit (`body: full`), before the link to the rest.
BODY_CUT_NOTE = "The article continues on the site."
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class EmailDraft:
    """One email as every recipient gets it, before personalisation; `key` names it in the ledger."""

    key: str
    channel: str
    subject: str
    preheader: str
    html: str
    text: str
    articles: tuple[Article, ...]
    overflow: tuple[Article, ...] = ()
    warnings: tuple[str, ...] = ()
    view_url: str = ""

    @cached_property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))

    @cached_property
    def sent_bytes(self) -> int:
        """The HTML part as sent and as Gmail's clip counts it: quoted-printable, CRLF line ends
        (a CJK character is 9 bytes there, not 3), before each reader's values go in."""
        from .mime import encoded_size  # mime builds messages from drafts: it imports this module

        return encoded_size(self.html)

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.subject, self.html, self.text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class _ArticleView:
    """What a template sees of an article: escaped by Jinja, links already carrying UTM tags."""

    title: str
    url: str
    subtitle: str | None
    description: str | None
    author: str | None
    meta: str
    hero_image: str | None
    hero_alt: str
    cta: str
    cta_url: str  # the article, or site.cta_url when the site's call to action stands in
    cta_is_button: bool
    # With `body: full`: the article's email-safe body (in place of the description), and whether
    # it was cut to fit the clip limit (the rest is behind the link).
    body: Markup | None = None
    body_cut: bool = False
    # The meta line for HTML: the author bidi-isolated, so "By ليلى حداد · 8 min read" keeps its
    # order in a left-to-right line (and an English name in a right-to-left one).
    meta_html: Markup = Markup()
    # On each element holding the article's own words (title, subtitle, description, body, call
    # to action): ` lang=".." dir=".."` from its `lang`, else ` dir="auto"` (the text decides).
    lang_attrs: Markup = Markup(' dir="auto"')
    align: str = "left"  # those elements' side: "right" for a right-to-left article
    start: str = "left"  # the email's own start side (its meta lines): "right" when it is rtl


@dataclass(frozen=True)
class _Layout:
    """One attempt at fitting a digest: article blocks (compact: without extras), then links."""

    articles: tuple[Article, ...]
    more: tuple[Article, ...] = ()
    compact: bool = False
    body_blocks: int | None = None  # with a full body: how many of its blocks (None: all)


def clean_header_text(text: str, limit: int = 200) -> str:
    """One line of text safe for a mail header: control characters (CR, LF...) become spaces."""
    return shorten(_plain(text) or "", limit)


def compose_email_channel(
    articles: Iterable[Article], channel_name: str, config: Config, now: datetime
) -> list[EmailDraft]:
    """The drafts a channel makes at `now`: the latest digest, or one email per published article."""
    channel = _email_channel(config, channel_name)
    if channel.mode == "single":
        return [compose_single(a, channel_name, config) for a in articles if not a.draft]
    end = latest_digest_end(channel.schedule, config.site.tz, now)
    chosen = digest_articles(config, channel_name, articles, end)
    if not chosen:
        return []
    return [compose_digest(chosen, channel_name, config, window_end=end)]


def compose_digest(
    articles: Sequence[Article], channel_name: str, config: Config, *, window_end: datetime
) -> EmailDraft:
    """One digest of `articles` (newest first), kept under the channel's clip limit."""
    if not articles:
        raise ValueError("a digest needs at least one article")
    channel = _email_channel(config, channel_name)
    ordered = tuple(sorted(articles, key=lambda a: (a.publish_date, a.slug), reverse=True))
    local_end = window_end.astimezone(config.site.tz)
    email = _Email(
        config=config,
        channel_name=channel_name,
        channel=channel,
        mode="digest",
        key=digest_key(channel_name, window_end, config.site.tz),
        campaign=f"{local_end:%Y-%m-%d}",
        heading=_digest_heading(channel, local_end),
    )
    return _fit(email, ordered)


def compose_single(article: Article, channel_name: str, config: Config) -> EmailDraft:
    """One email carrying one article: its teaser, or with `body: full` its whole body."""
    channel = _email_channel(config, channel_name)
    local_date = article.publish_date.astimezone(config.site.tz)
    body = email_body(article.body_html, article.url) if channel.body == "full" else None
    email = _Email(
        config=config,
        channel_name=channel_name,
        channel=channel,
        mode="single",
        key=article_key(channel_name, article),
        campaign=f"{local_date:%Y-%m-%d}",
        heading=f"{local_date.day} {local_date:%B %Y}",
        body=body if body is not None and body.blocks else None,  # an empty body: the teaser
        lead_lang=article.lang,
    )
    if email.body is None:
        return email.draft(_Layout((article,)))
    return _fit_body(email, article, email.body)


def _email_channel(config: Config, channel_name: str) -> EmailChannel:
    channel = config.channels.get(channel_name)
    if not isinstance(channel, EmailChannel):
        known = ", ".join(n for n, c in config.channels.items() if isinstance(c, EmailChannel)) or "none"
        raise ConfigError(f"{channel_name!r} is not an email channel (expected one of: {known})")
    return channel


def _digest_heading(channel: EmailChannel, local_end: datetime) -> str:
    day = f"{local_end.day} {local_end:%B %Y}"
    return f"{local_end:%A} {day}" if channel.schedule.every == "day" else f"The week to {day}"


def _fit(email: _Email, articles: tuple[Article, ...]) -> EmailDraft:
    """Gmail clips long HTML, hiding the unsubscribe link: shrink until the draft fits.

    First drop per-article extras (image, subtitle, description), then move the oldest articles
    into the "more" list of links (binary search on how many keep their block).
    """
    draft = email.draft(_Layout(articles))
    if email.fits(draft):
        return draft
    limit = email.channel.clip_limit
    compact = email.draft(_Layout(articles, compact=True))
    if email.fits(compact):
        return email.with_warning(compact, f"over {limit} bytes: dropped images and descriptions")

    def layout(kept: int) -> _Layout:
        return _Layout(articles[:kept], more=articles[kept:], compact=True)

    best = _largest_fitting(email, 0, len(articles) - 1, layout)
    if best is None:
        best = _largest_fitting(
            email, 1, len(articles), lambda n: _Layout((), more=articles[:n], compact=True)
        )
    if best is None:
        raise TemplateError(
            f"{email.template_name}: even a digest of one link is over the clip limit of {limit} bytes "
            f"(expected a smaller template or a larger channels.{email.channel_name}.clip_limit)"
        )
    note = f"over {limit} bytes: dropped images and descriptions, {len(best.overflow)} article(s) as links"
    if len(best.articles) < len(articles):
        note += f", {len(articles) - len(best.articles)} left out"
    return email.with_warning(best, note)


def _fit_body(email: _Email, article: Article, body: EmailBody) -> EmailDraft:
    """A whole article over the clip limit keeps as many of its first blocks as fit, the rest
    behind the link; when not even its first block fits, the email carries the teaser."""
    draft = email.draft(_Layout((article,)))
    if email.fits(draft):
        return draft
    limit, total = email.channel.clip_limit, len(body.blocks)
    best, kept, low, high = None, 0, 1, total - 1
    while low <= high:  # the size grows with the number of blocks kept
        middle = (low + high) // 2
        tried = email.draft(_Layout((article,), body_blocks=middle))
        if email.fits(tried):
            best, kept, low = tried, middle, middle + 1
        else:
            high = middle - 1
    if best is None:
        teaser = dataclasses.replace(email, body=None).draft(_Layout((article,)))
        return email.with_warning(teaser, f"over {limit} bytes: the teaser instead of the whole article")
    return email.with_warning(
        best, f"over {limit} bytes: the article cut after {kept} of {total} blocks, the rest linked"
    )


def _largest_fitting(email: _Email, low: int, high: int, layout) -> EmailDraft | None:
    """The draft for the largest n in [low, high] whose layout fits (size grows with n)."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        draft = email.draft(layout(middle))
        if email.fits(draft):
            best, low = draft, middle + 1
        else:
            high = middle - 1
    return best


@dataclass(frozen=True)
class _Email:
    """Everything fixed about one email while its layout is tried: renders a layout to a draft."""

    config: Config
    channel_name: str
    channel: EmailChannel
    mode: str
    key: str
    campaign: str
    heading: str
    body: EmailBody | None = None  # a single email's whole article (`body: full`), made email-safe
    lead_lang: str | None = None  # a single email's article's `lang`

    @property
    def template_name(self) -> str:
        return f"email/{self.channel.template or DEFAULT_TEMPLATES[self.mode]}"

    def fits(self, draft: EmailDraft) -> bool:
        """Measured as sent (`sent_bytes`), with room for each reader's values."""
        return draft.sent_bytes + PERSONALISATION_MARGIN <= self.channel.clip_limit

    def with_warning(self, draft: EmailDraft, warning: str) -> EmailDraft:
        return dataclasses.replace(draft, warnings=(*draft.warnings, warning))

    @cached_property
    def site(self) -> dict[str, Any]:
        """What templates see of the site: never the whole config (it holds the unsubscribe secret)."""
        return site_view(self.config.site)

    @cached_property
    def language(self) -> str | None:
        """The email's language: a single email's article's `lang`, else `site.language`."""
        if self.mode == "single" and self.lead_lang is not None:
            return self.lead_lang
        return self.config.site.language

    @property
    def start(self) -> str:
        """The side lines in the email's language start from."""
        return "right" if self.language is not None and direction(self.language) == "rtl" else "left"

    def draft(self, layout: _Layout) -> EmailDraft:
        site = self.config.site
        views = [self._view(a, layout.body_blocks) for a in layout.articles]
        more = [self._view(a) for a in layout.more]
        shown = layout.articles + layout.more
        subject = self._subject(shown)
        lead = shown[0]
        preheader = shorten(lead.description or lead.excerpt, self.config.content.preheader_chars)
        view_url = self._view_url(lead)
        unsubscribe = PLACEHOLDERS["unsubscribe_url"] if unsubscribe_configured(self.config) else None
        context = {
            "site": self.site,
            "subject": subject,
            "preheader": preheader,
            "heading": self.heading,
            "articles": views,
            "more": more,
            "compact": layout.compact,
            "more_heading": self._more_heading(),
            "view_url": view_url,
            "unsubscribe_url": unsubscribe,
            "recipient": _RECIPIENT,
            "font_family": ", ".join([*site.fonts, SYSTEM_FONTS]),
            # <html lang dir>: "und" (undetermined) and "auto" when no language is configured.
            "lang": self.language or "und",
            "dir": "auto" if self.language is None else direction(self.language),
            "start": self.start,
        }
        html = render_html(self.config, self.template_name, context)
        text = self._text(views, more, view_url, unsubscribe, layout.body_blocks)
        return EmailDraft(
            key=self.key,
            channel=self.channel_name,
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            articles=shown,
            overflow=layout.more,
            warnings=tuple(self._warnings()),
            view_url=view_url,
        )

    def _view(self, article: Article, body_blocks: int | None = None) -> _ArticleView:
        tz = self.config.site.tz
        published = article.publish_date.astimezone(tz)
        author = _plain(article.author)
        meta = [f"By {author}"] if author else []
        meta += [f"{article.read_minutes} min read", f"{published.day} {published:%B %Y}"]
        meta_html = [Markup("By <bdi>{}</bdi>").format(author)] if author else []
        meta_html += [escape(part) for part in meta[1 if author else 0 :]]
        own = direction(article.lang) if article.lang else None  # None: its text decides
        lang_attrs = Markup(' lang="{}" dir="{}"').format(article.lang, own) if own else Markup(' dir="auto"')
        cta = _plain(article.cta) or "Read the article"
        url = add_utm(article.url, self.channel.utm, self.campaign)
        title = _plain(article.title) or article.slug
        return _ArticleView(
            title=title,
            url=url,
            subtitle=_plain(article.subtitle),
            description=_plain(article.description or article.excerpt),
            author=author,
            meta=" · ".join(meta),
            hero_image=article.hero_image,
            hero_alt=_plain(article.hero_alt) or title,
            cta=cta,
            cta_url=add_utm(article.cta_url, self.channel.utm, self.campaign) if article.cta_url else url,
            cta_is_button=len(cta) <= CTA_BUTTON_CHARS,
            # Safe to print unescaped: compose.article_html built it from a parsed, cleaned tree.
            body=None if self.body is None else Markup(self.body.html(body_blocks)),
            body_cut=self.body is not None and body_blocks is not None,
            meta_html=Markup(" · ").join(meta_html),
            lang_attrs=lang_attrs,
            align="right" if own == "rtl" or (own is None and self.start == "right") else "left",
            start=self.start,
        )

    def _subject(self, articles: tuple[Article, ...]) -> str:
        source = self.channel.subject or DEFAULT_SUBJECTS[self.mode]
        context = {
            "site": self.site,
            "articles": articles,
            "article": articles[0],
            "date": self.campaign,
            "recipient": _RECIPIENT,
        }
        rendered = render_string(source, context, where=f"channels.{self.channel_name}.subject")
        return clean_header_text(rendered) or self.config.site.name

    def _more_heading(self) -> str:
        return "More today" if self.channel.schedule.every == "day" else "More this week"

    def _view_url(self, lead: Article) -> str:
        archive = self.config.site.archive_url
        if archive:
            return urljoin(archive if archive.endswith("/") else archive + "/", archive_name(self.key))
        return lead.url if self.mode == "single" else self.config.site.base_url

    def _warnings(self) -> Iterable[str]:
        site = self.config.site
        if not unsubscribe_configured(self.config):
            yield "no unsubscribe link (set serve.public_url, site.unsubscribe_url or unsubscribe_mailto)"
        elif site.unsubscribe_secret is None:
            yield "unsubscribe tokens are not signed (set site.unsubscribe_secret)"

    def _text(
        self,
        views: list[_ArticleView],
        more: list[_ArticleView],
        view_url: str,
        unsub: str | None,
        body_blocks: int | None = None,
    ) -> str:
        """The plain-text part, written from the same data as the HTML: every link spelled out."""
        site = self.config.site
        lines = [site.name, self.heading, "=" * max(len(site.name), len(self.heading)), ""]
        lines += [PLACEHOLDERS["greeting"], ""]
        for number, view in enumerate(views, 1):
            prefix = f"{number}. " if len(views) > 1 or more else ""
            lines += _wrap(prefix + view.title)
            if view.cta_url != view.url:  # the call to action points elsewhere: the article's own link
                lines.append(view.url)
            if view.subtitle:
                lines += _wrap(view.subtitle)
            lines += _wrap(view.meta)
            lines.append("")
            if view.body is not None and self.body is not None:
                lines += [self.body.text(body_blocks), ""]
                if view.body_cut:
                    lines += [BODY_CUT_NOTE, ""]
            elif view.description:
                lines += [*_wrap(view.description), ""]
            lines += [*_wrap(view.cta), view.cta_url, ""]
        if more:
            lines += [self._more_heading(), "-" * len(self._more_heading()), ""]
            for view in more:
                lines += [*_wrap(f"- {view.title}"), f"  {view.url}"]
            lines.append("")
        lines += ["--", f"View in browser: {view_url}"] + ([f"Unsubscribe: {unsub}"] if unsub else [])
        lines += _wrap(f"{site.name} · {site.postal_address}")
        return "\n".join(lines) + "\n"


def _plain(text: str | None) -> str | None:
    """Text as one line without control characters (a NUL or bell breaks MJML and mail clients)."""
    return None if text is None else " ".join(_CONTROL.sub(" ", text).split())


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 72, break_long_words=False, break_on_hyphens=False) or [""]


def add_utm(url: str, utm: Utm | None, campaign: str) -> str:
    """Tag an article link for analytics, keeping its query; tags the author already set win."""
    if utm is None:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    tags = {"utm_source": utm.source, "utm_medium": utm.medium, "utm_campaign": utm.campaign or campaign}
    query += [(name, value) for name, value in tags.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def render_html(config: Config, template_name: str, context: dict[str, Any]) -> str:
    """Jinja2 -> MJML -> css-inline; any template mistake becomes a TemplateError naming file and line."""
    template = get_template(config, template_name, "html")
    source = render_template(template, context)
    filename = template.filename or template_name
    try:
        html = mjml.mjml2html(source, fonts=dict(config.site.fonts))
    except ValueError as exc:
        line, detail = _unbalanced_tag(filename)
        raise TemplateError(f"{filename}{line}: MJML: {exc} ({detail})") from None
    leftover = re.search(r"<mj-[\w-]+", html)
    if leftover:
        raise TemplateError(
            f"{filename}: MJML: unknown element {leftover.group()}> (expected an MJML component)"
        )
    return _inline_css(repair(html))


_STYLE = re.compile(r"<style([^>]*)>(.*?)</style>", re.DOTALL)
# Standards mode in every client that reads it; without one, some render quirks mode.
DOCTYPE = "<!doctype html>"
# Style blocks that are not the template's CSS to inline are left alone: MJML's web fonts
# (@import) and its rules for one client under a `media` attribute (Thunderbird's `.moz-text-html`).
_MEDIA_ATTRIBUTE = re.compile(r"\bmedia\s*=", re.IGNORECASE)
# Where a block left alone waits during inlining: a comment, which css-inline keeps as it is.
_KEPT = "<!--syndicate-kept-style-{}-->"
_KEPT_AGAIN = re.compile(r"<!--syndicate-kept-style-(\d+)-->")
# A start tag as css-inline writes one: every attribute value double-quoted, no `"` inside.
_START_TAG = re.compile(r'<[a-zA-Z][^>"]*(?:"[^"]*"[^>"]*)*>')
_ANGLED_VALUE = re.compile(r'="[^"<>]*[<>]')
_QUOTED = re.compile(r'"[^"]*"')


def _inline_css(html: str) -> str:
    """css-inline, offline: inline the template's CSS into style attributes, keep media queries.

    css-inline (Rust) replaced premailer here for speed: about 1 ms where premailer took 29 of a
    digest's 42 ms (`benchmarks/bench_email.py`). It runs offline (`load_remote_stylesheets=
    False`); web-font links stay for the reader's client, and the style blocks of web fonts and
    of a `media` attribute are set aside and put back as they were, neither inlined nor dropped.
    """
    kept: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        if not _MEDIA_ATTRIBUTE.search(match.group(1)) and "@import" not in match.group(2):
            return match.group()
        kept.append(match.group())
        return _KEPT.format(len(kept) - 1)

    inlined = _INLINER.inline(_STYLE.sub(set_aside, html))
    if kept:
        inlined = _KEPT_AGAIN.sub(lambda m: kept[int(m.group(1))], inlined)
    if inlined.startswith("<!DOCTYPE html>"):  # html5ever's spelling; mrml's (and ours) as it was
        inlined = DOCTYPE + inlined[len(DOCTYPE) :]
    return _escape_angles_in_attributes(inlined)


def _escape_angles_in_attributes(html: str) -> str:
    """`<` and `>` in attribute values as `&lt;` and `&gt;`, as mrml wrote them: the HTML
    serializer writes them bare (valid HTML), which puts `<script` in the markup of an article
    titled so, for filters and clients that scan the text. Only when some value has one."""
    if not _ANGLED_VALUE.search(html):
        return html

    def escape_values(tag: re.Match[str]) -> str:
        return _QUOTED.sub(lambda v: v.group().replace("<", "&lt;").replace(">", "&gt;"), tag.group())

    return _START_TAG.sub(escape_values, html)


# MJML's own pixel sizes stay (no width/height attributes from the CSS: Outlook for Windows ignores
# percent widths, so a 1200 px hero would show at 1200 px); @media and the other at-rules stay in
# a <style> block for the clients that read one; <link>s (web fonts) stay, never fetched.
_INLINER = css_inline.CSSInliner(
    keep_at_rules=True,
    keep_link_tags=True,
    load_remote_stylesheets=False,
    apply_width_attributes=False,
    apply_height_attributes=False,
)


_JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
_MJ_TAG = re.compile(r"<(/?)(mjml|mj-[\w-]+)\b[^>]*?(/?)>")


def _unbalanced_tag(filename: str) -> tuple[str, str]:
    """MJML's errors carry no position: find the first unclosed or stray tag in the template.

    Returns (":line" or "", what is wrong)."""
    source = Path(filename).read_text(encoding="utf-8")
    source = _JINJA.sub(lambda m: "\n" * m.group().count("\n"), source)
    stack: list[tuple[str, int]] = []
    for match in _MJ_TAG.finditer(source):
        closing, name, self_closing = match.groups()
        line = source.count("\n", 0, match.start()) + 1
        if self_closing:
            continue
        if not closing:
            stack.append((name, line))
        elif stack and stack[-1][0] == name:
            stack.pop()
        elif stack:
            opened, opened_line = stack[-1]
            return f":{opened_line}", f"<{opened}> is not closed before </{name}> on line {line}"
        else:
            return f":{line}", f"</{name}> closes nothing"
    if stack:
        name, line = stack[-1]
        return f":{line}", f"<{name}> is never closed"
    return "", "no unbalanced tag in this file; check the templates it imports"
