"""The `syndicate` command: a thin layer over the importable API.

User mistakes (`SyndicateError`) become one line on stderr and exit 2; validation
problems exit 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from . import __version__
from .config import CONFIG_ENV, Config, load_config
from .content import load_articles
from .errors import ConfigError, SyndicateError
from .gallery import render_preview
from .plan import upcoming
from .preview import digest_sizes, preview_table
from .schedule import show_time
from .serve import DEFAULT_PORT, serve_preview


def _fail_cleanly(command):
    """Turn a user's mistake into one line and exit 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SyndicateError as exc:
            for line in str(exc).split("\n"):
                click.echo(f"error: {line}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syndicate")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV,
    default="config.yaml",
    show_default=True,
    help=f"Config file (or ${CONFIG_ENV}).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Turn markdown articles into email digests and social posts, and deliver each once."""
    ctx.obj = config_path


def _config(ctx: click.Context) -> Config:
    return load_config(ctx.obj)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@click.pass_context
@_fail_cleanly
def validate(ctx: click.Context, paths: tuple[Path, ...], strict: bool, as_json: bool) -> None:
    """Check articles (the content folder, or PATHS) and report every problem.

    Exits 1 on any error (or any warning with --strict), 0 otherwise.
    """
    config = _config(ctx)
    loaded = load_articles(config, paths)
    failed = bool(loaded.errors) or (strict and bool(loaded.warnings))
    digests = digest_sizes(config, loaded.articles)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "articles": len(loaded.articles),
                    "errors": len(loaded.errors),
                    "warnings": len(loaded.warnings),
                    "problems": [p.as_dict() for p in loaded.problems],
                    "digests": digests,
                },
                indent=2,
            )
        )
    else:
        for problem in loaded.problems:
            click.echo(f"{problem.severity}: {problem}")
        for digest in digests:
            click.echo(
                f"{digest['key']}: digest of {digest['articles']} article(s), "
                f"{digest['html_bytes']:,} bytes of HTML (clip limit {digest['clip_limit']:,})"
                + "".join(f"; {warning}" for warning in digest["warnings"])
            )
        click.echo(
            f"{len(loaded.articles)} article(s) ok, "
            f"{len(loaded.errors)} error(s), {len(loaded.warnings)} warning(s)"
        )
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--channel", help="Only this channel.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files (default: <state_dir>/preview).",
)
@click.option("--serve", is_flag=True, help="Serve the gallery on 127.0.0.1 and render again on changes.")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port for --serve (default 8000; 0: any free one)."
)
@click.pass_context
@_fail_cleanly
def preview(
    ctx: click.Context,
    paths: tuple[Path, ...],
    channel: str | None,
    out_dir: Path | None,
    serve: bool,
    port: int | None,
) -> None:
    """Write each email as .html, .txt and .eml files and each post as .txt and .json, print a table
    of them and write index.html, a gallery of every draft and the sends to come.

    Exits 1 when a post cannot fit its network (the other drafts are still written). With --serve,
    serves the gallery until Ctrl-C, rendering it again when content, templates or config change.
    """
    if port is not None and not serve:
        raise click.UsageError("--port needs --serve")
    if serve:
        serve_preview(
            ctx.obj, paths, channel, out_dir, DEFAULT_PORT if port is None else port, echo=click.echo
        )
        return
    config = _config(ctx)
    rendered = render_preview(config, paths, channel, out_dir, datetime.now(UTC))
    for problem in rendered.loaded.errors:
        click.echo(f"{problem.severity}: {problem}", err=True)
    items = rendered.items
    if items:
        click.echo(preview_table(items))
    written = sum(1 for item in items if item.files)
    failed = len(items) - written
    click.echo(
        f"{written} draft(s) written to {rendered.index.parent}"
        + (f"; {failed} could not be made" if failed else "")
    )
    click.echo(f"gallery: {rendered.index}")
    sys.exit(1 if failed else 0)


@cli.command()
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="How far ahead.")
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@click.pass_context
@_fail_cleanly
def queue(
    ctx: click.Context, days: int, channels: tuple[str, ...], targets: tuple[str, ...], as_json: bool
) -> None:
    """List upcoming sends: what goes out when, where (times in the site's timezone)."""
    config = _config(ctx)
    _check_names(config, channels, targets)
    now = datetime.now(UTC)
    sends = upcoming(
        config,
        load_articles(config).articles,
        now,
        now + timedelta(days=days),
        channels=channels,
        targets=targets,
    )
    tz = config.site.tz
    rows = [
        {
            "due": show_time(s.due, tz),
            "channel": s.channel,
            "target": s.target,
            "draft": s.draft_key,
            "articles": [a.title for a in s.articles],
        }
        for s in sends
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        what = row["articles"][0] if len(row["articles"]) == 1 else f"{len(row['articles'])} articles"
        click.echo(f"{row['due']}  {row['channel']:<12} {row['target']:<16} {what}")
    click.echo(f"{len(rows)} send(s) in the next {days} day(s) ({config.site.timezone})")


def _check_names(config: Config, channels: tuple[str, ...], targets: tuple[str, ...]) -> None:
    """A misspelt --channel or --target is a mistake, not an empty result."""
    for option, names, known in (
        ("--channel", channels, config.channels),
        ("--target", targets, config.targets),
    ):
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"{option} {name}: no such name in config (expected one of: {', '.join(known)})"
                )


def main() -> None:
    cli(prog_name="syndicate")
