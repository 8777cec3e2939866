"""The preview gallery: `index.html` beside the preview files, every draft on one page.

Emails show in iframes at desktop and mobile widths, posts as their network shows them (its
author row, the text, then the link card laid out as that network lays it out: `_link_card`),
problems beside the draft they concern, and the queue of sends to come. The page is a Jinja2
template (`preview/gallery.html.j2`, autoescaped) so a site can restyle it like its emails.

Relative hero images resolve against `site.base_url`, where they may not be published yet: for the
gallery only, such URLs that name a file in the content folder point at a copy under `assets/`.
The `.html`/`.eml` files keep the absolute URLs readers will get; the iframes show copies in `frames/`.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .compose.email import EmailDraft
from .compose.networks import network
from .compose.social import SocialPost
from .config import Config, EmailChannel
from .content import Article, Loaded, Problem, load_articles
from .plan import Send, upcoming
from .preview import PreviewItem, preview_articles, writing
from .state import state_path, write_private
from .templating import get_template, render_template, site_view
from .timeshow import show_time

INDEX = "index.html"
FRAMES = "frames"
ASSETS = "assets"
TEMPLATE = "preview/gallery.html.j2"
DESKTOP_WIDTH = 640
MOBILE_WIDTH = 375
_SRC = re.compile(r'(\ssrc=")([^"]*)(")')


@dataclass(frozen=True)
class Rendered:
    """One `syndicate preview` run: the articles read, the drafts written and the gallery page."""

    loaded: Loaded
    items: list[PreviewItem]
    index: Path


def render_preview(
    config: Config,
    paths: Sequence[str | os.PathLike[str]] | None,
    channel: str | None,
    out_dir: Path | None,
    now: datetime,
) -> Rendered:
    """Load the articles, write every draft and the gallery (with the queue of sends after `now`)."""
    loaded = load_articles(config, paths)
    out = out_dir or state_path(config, "preview")
    items = preview_articles(config, loaded.articles, channel=channel, out_dir=out)
    sends = upcoming(
        config,
        loaded.articles,
        now,
        queue_horizon(loaded.articles, now),
        channels=[channel] if channel else None,
    )
    noted = [p for p in loaded.problems if p.severity != "skipped"]
    index = write_gallery(config, items, noted, sends, out, now)
    return Rendered(loaded, items, index)


def write_gallery(
    config: Config,
    items: Sequence[PreviewItem],
    problems: Sequence[Problem],
    sends: Sequence[Send],
    out: Path,
    now: datetime,
) -> Path:
    """Write `out/index.html` (and its frames and local images) for drafts already written to `out`."""
    images = _LocalImages(config, out)
    tz = config.site.tz
    due: dict[str, datetime] = {}
    for send in sends:
        due.setdefault(send.draft_key, send.due)
    attached: set[Path] = set()
    emails, posts = [], []
    for item in items:
        paths = {a.path for a in item.articles}
        attached |= paths
        notes = [*item.warnings, *(str(p) for p in problems if p.path in paths)]
        when = show_time(due[item.key], tz, form="reader") if item.key in due else None
        if isinstance(item.draft, EmailDraft):
            emails.append(_email_view(item, item.draft, config, notes, when, images, out))
        else:
            posts.append(_post_view(item, config, notes, when, images))
    context = {
        "site": site_view(config.site),
        "generated": show_time(now, tz, form="reader"),
        "emails": emails,
        "posts": posts,
        "sends": [
            {
                "due": show_time(s.due, tz, form="reader"),
                "channel": s.channel,
                "target": s.target,
                "key": s.draft_key,
                "titles": [a.title for a in s.articles],
            }
            for s in sends
        ],
        "problems": [p for p in problems if p.path not in attached],
        "desktop_width": DESKTOP_WIDTH,
        "mobile_width": MOBILE_WIDTH,
    }
    page = render_gallery(config, context)
    index = out / INDEX
    _write(index, page)
    return index


def write_error_page(out: Path, message: str) -> Path:
    """What `--serve` shows when drafts cannot be rendered: the one-line error, not a dead server."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Preview error</title></head>'
        '<body style="font:16px/1.5 system-ui,sans-serif;margin:2rem;max-width:60rem">'
        "<h1>The preview could not be rendered</h1>"
        '<pre id="error" style="white-space:pre-wrap;background:#fee;padding:1rem">'
        f"{html.escape(message)}</pre>"
        "<p>Fix it and save: the page is rendered again. Reload to see it.</p></body></html>\n"
    )
    index = out / INDEX
    _write(index, page)
    return index


def queue_horizon(articles: Sequence[Article], now: datetime) -> datetime:
    """Far enough ahead to show every future article and the digest that will carry it."""
    latest = max((a.publish_date for a in articles), default=now)
    return max(latest, now) + timedelta(days=8)


def render_gallery(config: Config, context: dict[str, Any]) -> str:
    """The gallery template, from the site's templates or the shipped ones; mistakes are TemplateErrors."""
    return render_template(get_template(config, TEMPLATE, "html"), context)


def _email_view(
    item: PreviewItem,
    draft: EmailDraft,
    config: Config,
    notes: list[str],
    when: str | None,
    images: _LocalImages,
    out: Path,
) -> dict[str, Any]:
    channel = config.channels[draft.channel]
    assert isinstance(channel, EmailChannel)
    html_file, text_file = item.files[0], item.files[1]
    frame = out / FRAMES / html_file.name
    sent_html = html_file.read_text(encoding="utf-8")
    _write(frame, _SRC.sub(lambda m: images.rewrite(m, prefix="../"), sent_html))
    sender_name, sender_address = parseaddr(config.site.sender)
    return {
        "key": item.key,
        "channel": item.channel,
        "subject": draft.subject,
        "preheader": draft.preheader,
        "sender": sender_name or sender_address,
        "when": when,
        "articles": [a.title for a in draft.articles],
        "html_bytes": draft.sent_bytes,  # as sent: what the clip limit counts
        "clip_limit": channel.clip_limit,
        "percent": round(100 * draft.sent_bytes / channel.clip_limit),
        "frame": f"{FRAMES}/{quote(html_file.name)}",
        "files": [f.name for f in item.files],
        "text": text_file.read_text(encoding="utf-8"),
        "warnings": notes,
    }


def _post_view(
    item: PreviewItem, config: Config, notes: list[str], when: str | None, images: _LocalImages
) -> dict[str, Any]:
    post = item.draft
    view: dict[str, Any] = {
        "key": item.key,
        "channel": item.channel,
        "title": item.title,
        "when": when,
        "warnings": notes,
        "errors": list(item.errors),
        "files": [f.name for f in item.files],
    }
    if isinstance(post, SocialPost):
        fold = post.fold if post.fold is not None else len(post.text)
        image = (images.local(post.image) or post.image) if post.image else None
        view.update(
            network=post.network,
            label=network(post.network).label,
            before_fold=post.text[:fold],
            after_fold=post.text[fold:],
            length=post.length,
            limit=post.limit,
            unit=post.unit,
            link=post.link,
            image=image,
            card=_link_card(post, image, _image_post(post, config, item.channel)),
            # A thread: its parts in order, the first with the card, the others as its replies.
            parts=[part.text for part in post.thread],
        )
    return view


# Networks whose card carries what syndicate sends (LinkedIn's `content.article`, Bluesky's
# `app.bsky.embed.external`): the article's description alone. The others read the page's own
# preview tags, whose description a site usually fills from the excerpt when it has none.
_SENT_CARD = frozenset({"linkedin", "bluesky"})


def _link_card(post: SocialPost, image: str | None, image_post: bool) -> dict[str, Any]:
    """What the post's link card is made of; the template lays it out as the post's network does.

    `image` is the gallery's copy when there is one. `image_post`: the network shows the image as
    the post's own picture instead of a link card (Threads' IMAGE post).
    """
    article = post.article
    if post.network in _SENT_CARD:
        description = article.description or ""
    else:
        description = article.description or article.excerpt or ""
    host = urlsplit(post.link).hostname or ""
    return {
        "url": post.link,
        "domain": host.removeprefix("www."),
        "title": article.title or post.link,
        "description": " ".join(description.split()),
        "image": image,
        "alt": article.hero_alt or "",
        "image_post": image_post and image is not None,
    }


def _image_post(post: SocialPost, config: Config, channel_name: str) -> bool:
    """Whether the network shows the hero image as the post's own picture, not a link card:
    the channel's native target for the network attaches it (X's media upload and Mastodon's
    media attachment replace the link card; a Threads IMAGE post needs an https image), unless
    every such target turns `image` off. Threads with no native target (an outbox) is shown as
    the IMAGE post its target would make by default; X and Mastodon then as a pasted link."""
    if not post.image or post.network not in ("x", "mastodon", "threads"):
        return False
    if post.network == "threads" and urlsplit(post.image).scheme != "https":
        return False
    channel = config.channels.get(channel_name)
    settings = [config.targets[t] for t in getattr(channel, "targets", ()) if t in config.targets]
    native = [s for s in settings if getattr(s, "type", None) == post.network]
    if not native:
        return post.network == "threads"
    return any(getattr(s, "image", True) for s in native)


@dataclass
class _LocalImages:
    """Image URLs under base_url that name a file in the content folder, copied under `assets/`."""

    config: Config
    out: Path
    copied: dict[str, str | None] = field(default_factory=dict)

    def local(self, url: str) -> str | None:
        """The copy's path relative to the preview folder, or None when `url` is not a local file."""
        if url not in self.copied:
            self.copied[url] = self._copy(url)
        return self.copied[url]

    def rewrite(self, match: re.Match[str], prefix: str) -> str:
        local = self.local(html.unescape(match.group(2)))
        if local is None:
            return match.group()
        return f"{match.group(1)}{html.escape(prefix + local)}{match.group(3)}"

    def _copy(self, url: str) -> str | None:
        base = self.config.site.base_url
        if not url.startswith(base):
            return None
        relative = unquote(urlsplit(url[len(base) :]).path)
        content = self.config.content.dir.resolve()
        source = (content / relative).resolve()
        if not relative or not source.is_relative_to(content) or not source.is_file():
            return None
        inside = source.relative_to(content)
        _write(self.out / ASSETS / inside, source.read_bytes())
        return f"{ASSETS}/{quote(inside.as_posix())}"


def _write(path: Path, data: str | bytes) -> None:
    """Whole or not at all: `--serve` may be sending the old file while this one is written."""
    with writing(path.parent):
        write_private(path, data)
