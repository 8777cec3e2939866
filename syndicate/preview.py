"""`syndicate preview`: the drafts each channel would make, written to files to open and inspect.

Each email draft becomes `<key>.html`, `.txt` and `.eml`, built by the same code as a real send
(`build_message`) for one stand-in recipient, so the preview shows the bytes readers would get.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .compose.email import EmailDraft, compose_email_channel, file_stem
from .compose.mime import build_message, message_bytes
from .config import Config, EmailChannel
from .content import Article, load_articles
from .errors import ConfigError, ContentError
from .recipients import Recipient
from .schedule import digest_end_covering

PREVIEW_RECIPIENT = Recipient(email="reader@example.com", name="Reader")
SUBJECT_COLUMN = 50


@dataclass(frozen=True)
class PreviewItem:
    """One draft written to disk: a row of the preview table."""

    channel: str
    key: str
    subject: str
    articles: int
    html_bytes: int
    warnings: tuple[str, ...]
    files: tuple[Path, ...]


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

    Digests: the one due at `at`, or by default the one that carries the newest article.
    """
    if channel is not None and channel not in config.channels:
        known = ", ".join(config.channels) or "none defined"
        raise ConfigError(f"--channel: {channel!r} is not a channel (expected one of: {known})")
    out = out_dir or config.state_dir / "preview"
    names = [channel] if channel else list(config.channels)
    items: list[PreviewItem] = []
    for name in names:
        kind = config.channels[name]
        # The one dispatch point per channel kind; social channels are wired in with compose.social.
        if isinstance(kind, EmailChannel):
            items += [_write_email(d, out, config) for d in email_drafts(name, kind, articles, config, at)]
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
    return compose_email_channel(articles, name, config, at or datetime.now().astimezone())


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
                        "clip_limit": channel.clip_limit,
                        "warnings": list(draft.warnings),
                    }
                )
    return sizes


def _write_email(draft: EmailDraft, out: Path, config: Config) -> PreviewItem:
    message = build_message(draft, PREVIEW_RECIPIENT, config)
    stem = out / file_stem(draft.key)
    files = (stem.with_suffix(".html"), stem.with_suffix(".txt"), stem.with_suffix(".eml"))
    try:
        out.mkdir(parents=True, exist_ok=True)
        for part, path in (("html", files[0]), ("plain", files[1])):
            path.write_text(message.get_body((part,)).get_content().replace("\r\n", "\n"), encoding="utf-8")
        files[2].write_bytes(message_bytes(message))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ContentError(f"{out}: cannot write the preview ({reason})") from None
    return PreviewItem(
        channel=draft.channel,
        key=draft.key,
        subject=draft.subject,
        articles=len(draft.articles),
        html_bytes=draft.html_bytes,
        warnings=draft.warnings,
        files=files,
    )


def preview_table(items: Sequence[PreviewItem]) -> str:
    """A plain-text table: channel, subject, articles, HTML bytes, warnings."""
    header = ("channel", "subject", "articles", "HTML bytes", "warnings")
    rows = [
        (
            item.channel,
            _cut(item.subject, SUBJECT_COLUMN),
            str(item.articles),
            f"{item.html_bytes:,}",
            "; ".join(item.warnings) or "-",
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if i in (2, 3) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
