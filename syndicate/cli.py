"""The `syndicate` command: a thin layer over the importable API.

User mistakes (`SyndicateError`) become one line on stderr and exit 2; validation
problems exit 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path

import click

from . import __version__, clock
from .config import CONFIG_ENV, Config, load_config
from .content import load_articles
from .daemon import Runner, format_event, running_daemon
from .errors import ConfigError, SyndicateError
from .gallery import render_preview
from .ledger import Ledger
from .plan import upcoming
from .preview import digest_sizes, preview_table
from .schedule import show_time
from .send import send as send_api
from .serve import DEFAULT_PORT, serve_preview
from .stopping import stop_on_signals


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


def _use_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.find_root().obj = value


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    expose_value=False,
    callback=_use_config,
    help="Config file (also accepted before the command).",
)


def _config(ctx: click.Context) -> Config:
    return load_config(ctx.find_root().obj)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@config_option
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
@config_option
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
    rendered = render_preview(config, paths, channel, out_dir, clock.now())
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
@config_option
@click.pass_context
@_fail_cleanly
def queue(
    ctx: click.Context, days: int, channels: tuple[str, ...], targets: tuple[str, ...], as_json: bool
) -> None:
    """List upcoming sends: what goes out when, where (times in the site's timezone)."""
    config = _config(ctx)
    _check_names(config, channels, targets)
    now = clock.now()
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


@cli.command()
@click.argument("articles", nargs=-1)
@click.option("--due", "select", flag_value="due", help="What the schedule says is due by now (backfill).")
@click.option(
    "--all", "select", flag_value="all", help="Every published article now, one digest per channel."
)
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="Write what would be sent to a folder; touch no server or ledger."
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Dry-run folder.")
@click.option("--resend", is_flag=True, help="Send again what the ledger says already went out.")
@click.option("-v", "--verbose", is_flag=True, help="List recipients' addresses too.")
@config_option
@click.pass_context
@_fail_cleanly
def send(
    ctx: click.Context,
    articles: tuple[str, ...],
    select: str | None,
    channels: tuple[str, ...],
    targets: tuple[str, ...],
    dry_run: bool,
    out_dir: Path | None,
    resend: bool,
    verbose: bool,
) -> None:
    """Compose and deliver ARTICLES (slugs or files), or --due, or --all.

    Each message is recorded in the ledger before and after it goes out, so a second run sends
    nothing twice (unless --resend). Exits 1 if anything failed or is still pending. Ctrl-C (or
    SIGTERM) stops after the message in flight, a second one at once; either way the summary
    shows what is pending, and the exit code is 130 (143 for SIGTERM).
    """
    if bool(articles) == bool(select):
        raise click.UsageError("say what to send: ARTICLE..., --due or --all (one of them)")
    stop = ctx.with_resource(stop_on_signals(signal.SIGINT, signal.SIGTERM))
    config = _config(ctx)
    _check_names(config, channels, targets)
    progress = _Progress(enabled=not dry_run)
    outcome = send_api(
        config,
        select=select or list(articles),
        channels=channels,
        targets=targets,
        dry_run=dry_run,
        dry_run_dir=out_dir,
        resend=resend,
        on_start=progress.start,
        on_result=progress.advance,
        stop=stop,
    )
    progress.finish()
    for problem in outcome.problems:
        if problem.severity == "error":
            click.echo(f"skipped: {problem}", err=True)
    warnings = sum(p.severity == "warning" for p in outcome.problems)
    if warnings:
        click.echo(f"{warnings} content warning(s): see syndicate validate", err=True)
    for problem in outcome.recipient_problems:
        click.echo(f"warning: {problem}", err=True)
    if not outcome.sends:
        click.echo("nothing to send")
    elif dry_run:
        _print_dry_run(config, outcome, verbose)
    else:
        _print_summary(outcome)
    if stop.signum is not None:
        pending = sum(report.pending for _, report in outcome.reports)
        click.echo(
            f"stopped by {signal.Signals(stop.signum).name}: "
            f"{pending} message(s) left pending for the next run"
        )
        sys.exit(stop.exit_code)
    sys.exit(0 if dry_run or not outcome.sends or outcome.ok else 1)


class _Progress:
    """A progress bar per batch of more than one message (on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def start(self, planned, count: int) -> None:
        self.finish()
        if self.enabled and count > 1:
            self.bar = click.progressbar(
                length=count, label=f"{planned.draft_key} -> {planned.target}", file=sys.stderr
            )
            self.bar.__enter__()

    def advance(self, result) -> None:
        if self.bar is not None and result.outcome != "retry":
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _print_dry_run(config: Config, outcome, verbose: bool) -> None:
    tz = config.site.tz
    for planned, _ in outcome.reports:
        recipients = outcome.recipients.get(planned.target)
        who = f"{len(recipients)} recipient(s)" if recipients is not None else "1 message"
        click.echo(f"{show_time(planned.due, tz)}  {planned.draft_key} -> {planned.target}: {who}")
        if verbose and recipients:
            for recipient in recipients:
                click.echo(f"    {recipient.email}")
    click.echo(f"dry run: nothing sent, no ledger written; messages in {outcome.dry_run_dir}")


def _print_summary(outcome) -> None:
    click.echo(f"{'target':<20} {'sent':>7} {'failed':>7} {'pending':>8} {'skipped':>8}")
    for target, row in outcome.totals().items():
        click.echo(
            f"{target:<20} {row['sent']:>7} {row['failed']:>7} {row['pending']:>8} {row['skipped']:>8}"
        )
    for planned, report in outcome.reports:
        if report.recovered:
            click.echo(
                f"note: {report.recovered} message(s) were in flight when an earlier run stopped: "
                "marked unknown, not resent (see syndicate status)"
            )
        if report.error:
            click.echo(f"error: {report.error}; {report.pending} message(s) left pending for the next run")
        elif report.paused:
            click.echo(f"paused: {planned.target} refused too many in a row; run send again to resume")
        for result in report.problems:
            who = result.key.recipient or result.key.draft_key
            click.echo(f"{result.outcome}: {planned.target}: {who}: {result.detail}")


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Recent rows shown.")
@config_option
@click.pass_context
@_fail_cleanly
def status(ctx: click.Context, limit: int) -> None:
    """Show the ledger: totals per channel and target, recent sends, failures, unknowns."""
    config = _config(ctx)
    tz = config.site.tz
    with Ledger.from_config(config) as ledger:
        counts, recent, failures, unknowns, skipped = (
            ledger.counts(),
            ledger.recent(limit),
            ledger.failures(),
            ledger.unknowns(),
            ledger.skipped_drafts(),
        )
    pid = running_daemon(config.state_dir)
    click.echo(f"daemon: running (pid {pid})" if pid else "daemon: not running")
    if not counts and not skipped:
        click.echo("the ledger is empty: nothing sent yet")
        return
    if counts:
        click.echo("totals:")
    for (channel, target), row in sorted(counts.items()):
        parts = ", ".join(f"{n} {status}" for status, n in sorted(row.items()))
        click.echo(f"  {channel} -> {target}: {parts}")
    sections = (
        ("recent", recent),
        ("failures", failures),
        ("unknown (the server may have them: in flight at a crash, or its answer lost)", unknowns),
    )
    for title, rows in sections:
        if not rows:
            continue
        click.echo(f"{title}:")
        for row in rows:
            who = row.key.recipient or "-"
            error = f"  ({row.last_error})" if row.last_error and row.status != "sent" else ""
            click.echo(
                f"  {show_time(row.updated_at, tz)}  {row.status:<9} {row.key.draft_key} -> "
                f"{row.key.target} {who}{error}"
            )
    if skipped:
        click.echo(f"skipped by the daemon's catch-up policy ({len(skipped)}; `send --due` sends them):")
        for (_channel, target, draft_key), reason in skipped[-limit:]:
            click.echo(f"  {draft_key} -> {target}  ({reason})")


@cli.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per scheduled, sent, skipped or failed item.",
)
@config_option
@click.pass_context
@_fail_cleanly
def daemon(ctx: click.Context, log_format: str) -> None:
    """Run the scheduler: every send at its time, following content edits, until SIGTERM/SIGINT;
    SIGHUP reloads the config."""

    def log(event: dict) -> None:
        click.echo(format_event(event, log_format))

    runner = Runner(lambda: _config(ctx), log)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    signal.signal(signal.SIGHUP, lambda *_: runner.reload())
    runner.run()


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
