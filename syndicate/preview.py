"""`syndicate preview`: the drafts each channel would make, written to files to open and inspect.

Each email draft becomes `<key>.html`, `.txt` and `.eml`, built by the same code as a real send
(`build_message`) for one stand-in recipient, so the preview shows the bytes readers would get.
Each social post becomes `<key>.txt` and `.json`, the same `SocialPost` that delivery posts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from . import clock
from .compose.email import EmailDraft, compose_email_channel
from .compose.mime import build_message, message_bytes
from .compose.social import SocialPost, compose_social_channel, describe, write_post_files
from .config import Config, EmailChannel
from .content import Article, Problem, load_articles
from .errors import ConfigError, ContentError
from .naming import EML, HTML, TEXT, draft_files
from .recipients import Recipient
from .schedule import digest_end_covering
from .state import state_path, write_private

PREVIEW_RECIPIENT = Recipient(email="reader@example.com", name="Reader")
SUBJECT_COLUMN = 50


@dataclass(frozen=True)
class PreviewItem:
    """One draft written to disk (or one that could not be made): a row of the preview table.

    `draft` is the EmailDraft or SocialPost itself, None when `errors` say why there is none.
    """

    kind: Literal["email", "social"]
    channel: str
    key: str
    title: str
    articles: tuple[Article, ...]
    size: str
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    draft: EmailDraft | SocialPost | None = None


def preview(
    config: Config,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    channel: str | None = None,
    out_dir: Path | None = None,
    at: datetime | None = None,
) -> list[PreviewItem]:
    """Load the articles (the content folder, or `paths`) and preview them; see `preview_articles`."""
    return preview_articles(config, load_articles(config, paths).articles, channel, out_dir, at)


def preview_articles(
    config: Config,
    articles: Sequence[Article],
    channel: str | None = None,
    out_dir: Path | None = None,
    at: datetime | None = None,
) -> list[PreviewItem]:
    """Write every draft of every channel (or just `channel`) to `out_dir` (default <state_dir>/preview).

    Digests: the one due at `at`, or by default the one that carries the newest article. Social
    posts: one per published article; a post that cannot fit its network is an item with errors.
    """
    if channel is not None and channel not in config.channels:
        known = ", ".join(config.channels) or "none defined"
        raise ConfigError(f"--channel: {channel!r} is not a channel (expected one of: {known})")
    out = out_dir or state_path(config, "preview")
    names = [channel] if channel else list(config.channels)
    items: list[PreviewItem] = []
    for name in names:
        kind = config.channels[name]
        if isinstance(kind, EmailChannel):
            drafts = email_drafts(name, kind, articles, config, at)
            items += [_write_email(d, out, config, kind.clip_limit) for d in drafts]
        else:
            items += _social_items(name, articles, config, out)
    return items


def email_drafts(
    name: str, channel: EmailChannel, articles: Sequence[Article], config: Config, at: datetime | None
) -> list[EmailDraft]:
    """An email channel's drafts at `at`; without `at`, a digest holding the newest article."""
    if at is None and channel.mode == "digest":
        published = [a for a in articles if not a.draft]
        if not published:
            return []
        newest = max(a.publish_date for a in published)
        at = digest_end_covering(channel.schedule, config.site.tz, newest)
    return compose_email_channel(articles, name, config, at or clock.now())


def digest_sizes(config: Config, articles: Sequence[Article]) -> list[dict[str, object]]:
    """For `validate`: the HTML size of each digest channel's newest digest, against its clip limit."""
    sizes = []
    for name, channel in config.channels.items():
        if isinstance(channel, EmailChannel) and channel.mode == "digest":
            for draft in email_drafts(name, channel, articles, config, None):
                sizes.append(
                    {
                        "channel": name,
                        "key": draft.key,
                        "articles": len(draft.articles),
                        "html_bytes": draft.html_bytes,
                        "sent_bytes": draft.sent_bytes,
                        "clip_limit": channel.clip_limit,
                        "warnings": list(draft.warnings),
                    }
                )
    return sizes


def _write_email(draft: EmailDraft, out: Path, config: Config, clip_limit: int) -> PreviewItem:
    message = build_message(draft, PREVIEW_RECIPIENT, config)
    files = draft_files(out, draft.key, HTML, TEXT, EML)
    with writing(out):
        for part, path in (("html", files[0]), ("plain", files[1])):
            body = message.get_body((part,))
            assert body is not None  # build_message always makes both parts
            write_private(path, body.get_content().replace("\r\n", "\n"))
        write_private(files[2], message_bytes(message))
    return PreviewItem(
        kind="email",
        channel=draft.channel,
        key=draft.key,
        title=draft.subject,
        articles=draft.articles,
        size=f"{draft.sent_bytes:,}/{clip_limit:,} bytes of HTML as sent",
        warnings=draft.warnings,
        files=files,
        draft=draft,
    )


def _social_items(name: str, articles: Sequence[Article], config: Config, out: Path) -> list[PreviewItem]:
    """Each published article's post for channel `name`, with the problems its article had on the way."""
    published = [a for a in articles if not a.draft]
    posts, problems = compose_social_channel(published, name, config)
    by_path: dict[Path, list[Problem]] = {}
    for problem in problems:
        by_path.setdefault(problem.path, []).append(problem)
    items = []
    for post in posts:
        with writing(out):
            files = tuple(write_post_files(post, out))
        items.append(
            PreviewItem(
                kind="social",
                channel=name,
                key=post.key,
                title=post.text.split("\n", 1)[0],
                articles=(post.article,),
                size=describe(post),
                warnings=tuple(f"{p.field}: {p.message}" for p in by_path.pop(post.article.path, [])),
                files=files,
                draft=post,
            )
        )
    for article in published:
        failed = by_path.get(article.path, [])
        if failed:
            items.append(
                PreviewItem(
                    kind="social",
                    channel=name,
                    key=f"{name}:{article.slug}",
                    title=article.title,
                    articles=(article,),
                    size="-",
                    warnings=tuple(f"{p.field}: {p.message}" for p in failed if p.severity != "error"),
                    errors=tuple(f"{p.field}: {p.message}" for p in failed if p.severity == "error"),
                )
            )
    return items


@contextmanager
def writing(out: Path) -> Iterator[None]:
    """A folder that cannot be written is the user's mistake: one line, not a traceback."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ContentError(f"{out}: cannot write the preview ({reason})") from None


def preview_table(items: Sequence[PreviewItem]) -> str:
    """A plain-text table: channel, subject (or a post's first line), articles, size, problems."""
    header = ("channel", "subject", "articles", "size", "warnings")
    rows = [
        (
            item.channel,
            _cut(item.title, SUBJECT_COLUMN),
            str(len(item.articles)),
            item.size,
            "; ".join([*(f"ERROR {e}" for e in item.errors), *item.warnings]) or "-",
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
