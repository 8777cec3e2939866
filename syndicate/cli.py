"""The `syndicate` command: a thin layer over the importable API.

User mistakes (`SyndicateError`) become one line on stderr and exit 2; validation
problems exit 1; anything else is a bug and keeps its traceback.

Each command imports what it uses when it runs: at import this module loads click and a few
small modules only, so `--version`, `--help` and a command that needs no database or email
toolchain do not wait for SQLAlchemy, APScheduler, css-inline and the rest
(tests/test_startup.py checks it).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, clock
from .config_path import CONFIG_ENV
from .errors import ConfigError, SyndicateError
from .state import write_private
from .stopping import stop_on_signals
from .subscriber_status import ENDED, STATUSES
from .timeshow import show_time

if TYPE_CHECKING:
    from .config import Config
    from .lock import Holder
    from .plan import Send
    from .recipients import RecipientProblem
    from .status import ArticleHistory, Progress, RecipientHistory, Status
    from .subscribers import Subscriber, SubscriberStore

DEFAULT_WAIT = 600.0  # seconds a send waits for another one on its state folder


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
    from .config import load_config

    config = load_config(ctx.find_root().obj)
    for line in config.warnings:
        click.echo(f"warning: {line}", err=True)
    return config


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@config_option
@click.pass_context
@_fail_cleanly
def validate(ctx: click.Context, paths: tuple[Path, ...], strict: bool, as_json: bool) -> None:
    """Check articles (the content folder, or PATHS) and report every problem.

    Exits 1 on any error (or any warning with --strict), 0 otherwise; 2 on a config error,
    such as a DKIM key that cannot be read.
    """
    from .content import load_articles
    from .dkim import alignment_warnings, check_keys
    from .preview import digest_sizes

    config = _config(ctx)
    check_keys(config)
    for line in alignment_warnings(config):
        click.echo(f"warning: {line}", err=True)
    loaded = load_articles(config, paths)
    failed = bool(loaded.errors) or (strict and bool(loaded.warnings))
    digests: list[dict[str, Any]] = digest_sizes(config, loaded.articles)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "articles": len(loaded.articles),
                    "errors": len(loaded.errors),
                    "warnings": len(loaded.warnings),
                    "skipped": len(loaded.skipped),
                    "problems": [p.as_dict() for p in loaded.problems],
                    "digests": digests,
                },
                indent=2,
            )
        )
    else:
        for problem in loaded.problems:
            if problem.severity != "skipped":  # pages and excluded files: counted below, listed by --json
                click.echo(f"{problem.severity}: {problem}")
        for digest in digests:
            click.echo(
                f"{digest['key']}: digest of {digest['articles']} article(s), "
                f"{digest['sent_bytes']:,} bytes of HTML as sent (clip limit {digest['clip_limit']:,})"
                + "".join(f"; {warning}" for warning in digest["warnings"])
            )
        click.echo(
            f"{len(loaded.articles)} article(s) ok, "
            f"{len(loaded.errors)} error(s), {len(loaded.warnings)} warning(s)"
            + (f", {len(loaded.skipped)} file(s) skipped (not articles)" if loaded.skipped else "")
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
        from .serve import DEFAULT_PORT, serve_preview

        serve_preview(
            ctx.obj, paths, channel, out_dir, DEFAULT_PORT if port is None else port, echo=click.echo
        )
        return
    from .gallery import render_preview
    from .preview import preview_table

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
    """List upcoming sends: what goes out when, where (times in the site's timezone); first the
    overdue ones (due by now, not finished), marked."""
    from .content import load_articles
    from .plan import upcoming
    from .status import overdue

    config = _config(ctx)
    _check_names(config, channels, targets)
    now = clock.now()
    articles = load_articles(config).articles
    late = overdue(config, articles, now, channels=channels, targets=targets)
    sends = upcoming(config, articles, now, now + timedelta(days=days), channels=channels, targets=targets)
    tz = config.site.tz

    def row(s: Send, state: str | None) -> dict:
        shown = {
            "due": show_time(s.due, tz),
            "channel": s.channel,
            "target": s.target,
            "draft": s.draft_key,
            "articles": [a.title for a in s.articles],
            "overdue": state is not None,
        }
        return shown | ({"state": state} if state else {})

    rows = [row(o.send, o.state or "not started") for o in late] + [row(s, None) for s in sends]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for shown in rows:
        titles = shown["articles"]
        what = titles[0] if len(titles) == 1 else f"{len(titles)} articles"
        mark = f"  [overdue: {shown['state']}]" if shown["overdue"] else ""
        click.echo(f"{shown['due']}  {shown['channel']:<12} {shown['target']:<16} {what}{mark}")
    click.echo(
        f"{len(sends)} send(s) in the next {days} day(s) ({config.site.timezone})"
        + (f"; {len(late)} overdue (due, not finished: see syndicate status)" if late else "")
    )


@cli.command()
@click.argument("articles", nargs=-1)
@click.option(
    "--due", is_flag=True, help="What the schedule says is due by now (as schedule.catch_up allows)."
)
@click.option("--all", "send_all", is_flag=True, help="Every published article now, one digest per channel.")
@click.option("--backfill", is_flag=True, help="With --due: also what schedule.catch_up passed over.")
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option(
    "--to",
    "test_address",
    metavar="ADDRESS",
    help="A test send of ARTICLE to this one address ([test] subject, no ledger row).",
)
@click.option(
    "--dry-run", is_flag=True, help="Write what would be sent to a folder; touch no server or ledger."
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Dry-run folder.")
@click.option("--resend", is_flag=True, help="Send again what the ledger says already went out.")
@click.option(
    "--new-ledger", is_flag=True, help="Accept a ledger that is not the one this state folder used."
)
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another send on the same state folder to finish.",
)
@click.option("--no-wait", is_flag=True, help="Do not wait for another send: exit 2 at once (--wait 0).")
@click.option("-v", "--verbose", is_flag=True, help="List recipients' addresses too.")
@config_option
@click.pass_context
@_fail_cleanly
def send(
    ctx: click.Context,
    articles: tuple[str, ...],
    due: bool,
    send_all: bool,
    backfill: bool,
    channels: tuple[str, ...],
    targets: tuple[str, ...],
    test_address: str | None,
    dry_run: bool,
    out_dir: Path | None,
    resend: bool,
    new_ledger: bool,
    wait: float,
    no_wait: bool,
    verbose: bool,
) -> None:
    """Compose and deliver ARTICLES (slugs or files), or --due, or --all.

    Each message is recorded in the ledger before and after it goes out, so a second run sends
    nothing twice (unless --resend). `--due` follows schedule.catch_up: what it passes over is
    recorded and listed, and `--due --backfill` sends it. `ARTICLE --to ADDRESS` sends a test copy
    to one address. Exits 1 if anything failed or is still pending, or an article could not be
    read. Ctrl-C (or SIGTERM) stops after the message in flight, a second one at once; either
    way the summary shows what is pending, and the exit code is 130 (143 for SIGTERM).

    One send at a time per state folder: a second one waits for the first (--wait, --no-wait)
    and then sends only what is left; while the daemon runs, send refuses (exit 2), as the
    daemon's jobs do the sending. --dry-run and --to take no turn.
    """
    chosen = [
        name for name, given in (("ARTICLE...", articles), ("--due", due), ("--all", send_all)) if given
    ]
    if len(chosen) != 1:
        raise click.UsageError(
            "say what to send: ARTICLE..., --due or --all (one of them"
            + (f"; got {' and '.join(chosen)})" if chosen else ")")
        )
    if backfill and not due:
        raise click.UsageError("--backfill goes with --due")
    if test_address is not None:
        for flag, given in (
            ("--due", due),
            ("--all", send_all),
            ("--dry-run", dry_run),
            ("--resend", resend),
        ):
            if given:
                raise click.UsageError(f"--to sends named articles to one address; it does not take {flag}")
    from .lock import Stopped
    from .send import check_routes, send_test
    from .send import send as send_api

    stop = ctx.with_resource(stop_on_signals(signal.SIGINT, signal.SIGTERM))
    config = _config(ctx)
    _check_names(config, channels, targets)
    check_routes(config, channels, targets)
    if test_address is not None:
        _report_test_send(send_test(config, articles, test_address, channels=channels, targets=targets))
        return
    progress = _Progress(enabled=not dry_run, collect=dry_run and verbose)

    def waiting(holder: Holder) -> None:
        click.echo(f"waiting for {holder} to finish with {config.state_dir}", err=True)

    try:
        outcome = send_api(
            config,
            select="due" if due else "all" if send_all else list(articles),
            channels=channels,
            targets=targets,
            dry_run=dry_run,
            dry_run_dir=out_dir,
            resend=resend,
            backfill=backfill,
            new_ledger=new_ledger,
            on_start=progress.start,
            on_result=progress.advance,
            on_wait=lambda seconds, why: click.echo(f"waiting {seconds:.0f} s {why}", err=True),
            stop=stop,
            wait=0 if no_wait else wait,
            on_lock_wait=waiting,
        )
    except Stopped:
        click.echo(
            f"stopped by {signal.Signals(stop.signum or signal.SIGINT).name} while waiting: nothing sent"
        )
        sys.exit(stop.exit_code)
    progress.finish()
    for problem in outcome.article_errors:
        click.echo(f"skipped: {problem}", err=True)
    warnings = sum(p.severity == "warning" for p in outcome.problems)
    if warnings:
        click.echo(f"{warnings} content warning(s): see syndicate validate", err=True)
    for notice in [*outcome.renamed, *outcome.changed, *outcome.recipient_problems]:
        click.echo(f"warning: {notice}", err=True)
    _print_catch_up(outcome, config, dry_run)
    failed_articles = 1 if outcome.article_errors else 0
    if not outcome.sends:
        click.echo("nothing to send")
    elif dry_run:
        _print_dry_run(config, outcome, progress.written)
    else:
        _print_summary(outcome)
    if stop.signum is not None:
        pending = sum(report.pending for _, report in outcome.reports)
        click.echo(
            f"stopped by {signal.Signals(stop.signum).name}: "
            f"{pending} message(s) left pending for the next run"
        )
        sys.exit(stop.exit_code)
    sys.exit(0 if (dry_run or not outcome.sends or outcome.ok) and not failed_articles else 1)


def _print_catch_up(outcome, config: Config, dry_run: bool) -> None:
    """One line for what schedule.catch_up passed over, and how to send it after all."""
    policy = config.schedule.catch_up
    if outcome.missed:
        verb = "would skip" if dry_run else "skipped"
        click.echo(
            f"{verb} {len(outcome.missed)} send(s) whose time had passed (schedule.catch_up: {policy}); "
            "`syndicate send --due --backfill` sends them"
        )
    if outcome.skipped_before:
        click.echo(
            f"{outcome.skipped_before} send(s) skipped earlier by schedule.catch_up are waiting "
            "(`syndicate status` lists them; `syndicate send --due --backfill` sends them)"
        )


def _report_test_send(outcome) -> None:
    for planned, report in outcome.reports:
        where = outcome.test_outbox if planned.target in outcome.test_outboxes else planned.target
        if report.ok:
            click.echo(f"test: {planned.draft_key} -> {where}: sent")
        for result in report.problems:
            click.echo(
                f"{result.outcome}: {planned.target}: {result.key.recipient or planned.draft_key}: "
                f"{result.detail}"
            )
        if report.error:
            click.echo(f"error: {report.error}")
    sys.exit(0 if outcome.ok else 1)


class _Progress:
    """A progress bar per batch of more than one message (on a terminal)."""

    def __init__(self, enabled: bool, collect: bool = False) -> None:
        self.enabled = enabled
        self.bar: Any = None  # click's ProgressBar while a batch runs
        self.collect = collect  # a verbose dry run lists who each message would go to
        self.written: dict[tuple[str, str], list[str]] = {}  # (draft, target) -> recipients

    def start(self, planned, count: int) -> None:
        self.finish()
        if self.enabled and count > 1:
            self.bar = click.progressbar(
                length=count, label=f"{planned.draft_key} -> {planned.target}", file=sys.stderr
            )
            self.bar.__enter__()

    def advance(self, result) -> None:
        if self.collect:
            key = result.key
            self.written.setdefault((key.draft_key, key.target), []).append(key.recipient)
        if self.bar is not None and result.outcome != "retry":
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _print_dry_run(config: Config, outcome, written: dict[tuple[str, str], list[str]]) -> None:
    """Each send marked new, already sent or partly sent (as the ledger has it), and the addresses
    in `written` (collected with -v): those each would go to."""
    from .send import dry_run_mark

    tz = config.site.tz
    for planned, report in outcome.reports:
        recipients = outcome.recipients.get(planned.target)
        who = f"{len(recipients)} recipient(s)" if recipients is not None else "1 message"
        mark: str = dry_run_mark(report)
        if mark == "partly sent":
            mark = f"partly sent: {report.sent} left to send, {report.skipped} already done"
        click.echo(f"{show_time(planned.due, tz)}  {planned.draft_key} -> {planned.target}: {who}, {mark}")
        for address in written.get((planned.draft_key, planned.target), []):
            if address:
                click.echo(f"    {address}")
    would = sum(report.sent for _, report in outcome.reports)
    if not would:
        click.echo("dry run: nothing would be sent (the ledger has every message); no messages written")
        return
    click.echo(
        f"dry run: {would} message(s) would be sent; nothing sent, no ledger written; "
        f"messages in {outcome.dry_run_dir}"
    )


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
        if report.elsewhere:
            click.echo(
                f"note: {report.elsewhere} message(s) of {planned.draft_key} were claimed by another "
                "process first: sent (or being sent) there, not here"
            )
        if report.error:
            click.echo(f"error: {report.error}; {report.pending} message(s) left pending for the next run")
        elif report.paused:
            why = report.pause_reason or "refused too many in a row"
            click.echo(f"paused: {planned.target}: {why}: {report.pending} pending; run send again to resume")
        for result in report.problems:
            who = result.key.recipient or result.key.draft_key
            click.echo(f"{result.outcome}: {planned.target}: {who}: {result.detail}")
        if report.pending and not report.error:
            click.echo(
                f"pending: {planned.target}: {report.pending} message(s) of {planned.draft_key} "
                f"left for the next run ({report.why_pending})"
            )


@cli.command()
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Rows shown per list."
)
@click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON (every row).")
@click.option("--recipient", metavar="ADDR", help="What this reader got: every message to ADDR.")
@click.option("--article", metavar="SLUG", help="Who got this article: each send holding it.")
@config_option
@click.pass_context
@_fail_cleanly
def status(ctx: click.Context, limit: int, as_json: bool, recipient: str | None, article: str | None) -> None:
    """Show the ledger: totals per channel and target, sends with messages left (pending, retry,
    unknown) and why, overdue sends, failures, unknowns, recent sends. Reads the ledger only."""
    if recipient is not None and article is not None:
        raise click.UsageError("--recipient and --article: one at a time")
    from .status import article_history, read_status, recipient_history

    config = _config(ctx)
    tz = config.site.tz
    if recipient is not None:
        history = recipient_history(config, recipient)
        if as_json:
            return _echo_json(history.as_dict(tz))
        _print_recipient(history, tz)
    elif article is not None:
        readers = article_history(config, article)
        if as_json:
            return _echo_json(readers.as_dict(tz))
        _print_article(readers, tz, limit)
    else:
        found = read_status(config, clock.now(), recent=limit)
        if as_json:
            return _echo_json(found.as_dict(tz))
        _print_status(found, tz, limit)


def _echo_json(facts: dict) -> None:
    click.echo(json.dumps(facts, indent=2, ensure_ascii=False))


def _print_status(found: Status, tz: tzinfo, limit: int) -> None:
    pid = found.daemon_pid
    click.echo(f"daemon: running (pid {pid})" if pid else "daemon: not running")
    if found.empty:
        click.echo("the ledger is empty: nothing sent yet")
    if found.totals:
        click.echo("totals:")
    for (channel, target), row in sorted(found.totals.items()):
        parts = ", ".join(f"{n} {status}" for status, n in sorted(row.items()))
        click.echo(f"  {channel} -> {target}: {parts}")
    if found.left:
        count = sum(p.left for p in found.left)
        click.echo(
            f"left to send ({count} message(s); pending and retry go with the next send, "
            "unknown as schedule.unknown says):"
        )
        _echo_capped([_left_line(p, tz) for p in found.left], limit)
    if found.overdue:
        click.echo(f"overdue (due, not finished: {len(found.overdue)}):")
        lines = [
            f"{show_time(o.send.due, tz)}  {o.send.draft_key} -> {o.send.target}  "
            f"({o.state or 'not started'})"
            for o in found.overdue
        ]
        _echo_capped(lines, limit)
    if found.content_error:
        click.echo(f"overdue: not worked out ({found.content_error})")
    sections = (
        ("recent", found.recent),
        ("failures", found.failures),
        ("unknown (the server may have them: in flight at a crash, or its answer lost)", found.unknowns),
    )
    for title, rows in sections:
        if not rows:
            continue
        click.echo(f"{title}:")
        for delivery in rows:
            who = delivery.key.recipient or "-"
            failed = delivery.last_error and delivery.status != "sent"
            error = f"  ({delivery.last_error})" if failed else ""
            click.echo(
                f"  {show_time(delivery.updated_at, tz)}  {delivery.status:<9} {delivery.key.draft_key} -> "
                f"{delivery.key.target} {who}{error}"
            )
    if found.feedback:
        click.echo("bounces and complaints per send (complaints at 0.3 % or more: marked !):")
        for fb in found.feedback:
            mark = "  ! over the 0.3 % complaint line" if fb.over_the_line else ""
            click.echo(
                f"  {fb.draft[2]} -> {fb.draft[1]}: {fb.sent} sent, {fb.bounced} bounced "
                f"({fb.bounce_rate:.2%}), {fb.complained} complained ({fb.complaint_rate:.2%}){mark}"
            )
    skipped = found.skipped
    if skipped:
        click.echo(f"skipped by the daemon's catch-up policy ({len(skipped)}; `send --due` sends them):")
        for (_channel, target, draft_key), reason in skipped[-limit:]:
            click.echo(f"  {draft_key} -> {target}  ({reason})")


def _counts(progress: Progress) -> str:
    """`104 pending, 96 sent`: what is left first, then what is settled."""
    counts = progress.counts
    parts = []
    if progress.pending is None:
        parts.append("? pending (not counted: started by an older syndicate)")
    elif progress.pending:
        parts.append(f"{progress.pending} pending")
    parts += [
        f"{counts[s]} {s}" for s in ("retry", "unknown", "in_flight", "sent", "failed") if counts.get(s)
    ]
    return ", ".join(parts) or "no message recorded"


def _left_line(progress: Progress, tz: tzinfo) -> str:
    """`weekly:2026-11-23 -> newsletter: 104 pending, 96 sent  (why; since when)`."""
    _channel, target, draft_key = progress.draft
    when = f"; since {show_time(progress.updated_at, tz)}" if progress.updated_at else ""
    return f"{draft_key} -> {target}: {_counts(progress)}  ({progress.error or 'no error recorded'}{when})"


def _print_recipient(found: RecipientHistory, tz: tzinfo) -> None:
    if not found.deliveries and not found.pending:
        click.echo(f"{found.address}: no message in the ledger")
        return
    click.echo(f"{found.address}: {len(found.deliveries)} message(s)")
    for row in found.deliveries:
        error = f"  ({row.last_error})" if row.last_error and row.status != "sent" else ""
        click.echo(
            f"  {show_time(row.sent_at or row.updated_at, tz)}  {row.status:<9} "
            f"{row.key.draft_key} -> {row.key.target}{error}"
        )
    for progress in found.pending:
        _channel, target, draft_key = progress.draft
        why = progress.error or "its run stopped before reaching this address"
        click.echo(f"  {'not yet sent':<24} pending   {draft_key} -> {target}  ({why})")


def _print_article(found: ArticleHistory, tz: tzinfo, limit: int) -> None:
    title = f": {found.title}" if found.title else ""
    click.echo(f"article {found.slug}{title}")
    if not found.sends:
        click.echo("  in no send yet")
    for sent in found.sends:
        channel, target, draft_key = sent.progress.draft
        kind = " (digest)" if sent.digest else ""
        why = f"  ({sent.progress.error})" if sent.progress.left and sent.progress.error else ""
        click.echo(f"  {channel} -> {target}  {draft_key}{kind}: {_counts(sent.progress)}{why}")
        for status, recipients in sent.by_status().items():
            shown = ", ".join(recipients[:limit])
            more = f", ... and {len(recipients) - limit} more" if len(recipients) > limit else ""
            click.echo(f"    {status} ({len(recipients)}): {shown}{more}")
    if found.unmatched_digests:
        click.echo(
            f"note: {found.unmatched_digests} digest draft(s) were recorded before the ledger kept "
            "a digest's articles: whether they held this article is not known"
        )


def _echo_capped(lines: list[str], limit: int) -> None:
    """The first `limit` lines, indented, and how many more `--json` lists."""
    for line in lines[:limit]:
        click.echo(f"  {line}")
    if len(lines) > limit:
        click.echo(f"  ... and {len(lines) - limit} more (status --json lists them all)")


def log_format_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--log-format text|json` for a long-running command whose lines are `what`."""
    return click.option(
        "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help=what
    )


@cli.command()
@log_format_option("One line per scheduled, sent, skipped or failed item.")
@click.option(
    "--new-ledger", is_flag=True, help="Accept a ledger that is not the one this state folder used."
)
@click.option(
    "--serve",
    "with_web",
    is_flag=True,
    help="Also run the readers' web service (as syndicate serve does, at serve.host:serve.port).",
)
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="With --serve: believe X-Forwarded-For/-Proto from serve.trusted_proxies only.",
)
@config_option
@click.pass_context
@_fail_cleanly
def daemon(
    ctx: click.Context, log_format: str, new_ledger: bool, with_web: bool, proxy_headers: bool
) -> None:
    """Run the scheduler: every send at its time, following content edits, until SIGTERM/SIGINT;
    SIGHUP reloads the config (the web service of --serve keeps the config it started with)."""
    if proxy_headers and not with_web:
        raise click.UsageError("--proxy-headers goes with --serve")
    from .daemon import Runner, format_event

    def log(event: dict) -> None:
        click.echo(format_event(event, log_format))

    web = None
    if with_web:
        from .web.server import ServerThread, server_config

        web = ServerThread(server_config(_config(ctx), None, None, proxy_headers)).start()
    runner = Runner(lambda: _config(ctx), log, new_ledger=new_ledger)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: _off_the_handler(runner.stop))
    signal.signal(signal.SIGHUP, lambda *_: _off_the_handler(runner.reload))
    try:
        runner.run()
    finally:
        if web is not None:
            web.stop()


@cli.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Shards this process sends at once (each on its own connection).",
)
@click.option("--name", help="This worker's name in the queue (default: syndicate-<host>-<pid>).")
@log_format_option("One line when the worker starts, reclaims a dead worker's shard, and stops.")
@config_option
@click.pass_context
@_fail_cleanly
def worker(ctx: click.Context, concurrency: int, name: str | None, log_format: str) -> None:
    """Send the shards the daemon puts on the queue (the workers: section, PostgreSQL), until
    SIGTERM/SIGINT, which let the shard in hand finish. Run as many as the list needs, on as
    many machines: the ledger sends each message once whichever worker takes it."""
    from .daemon.events import emit, format_event
    from .queue import run_worker

    config = _config(ctx)

    def say(event: str, **fields: object) -> None:
        emit(lambda e: click.echo(format_event(e, log_format)), config, event, **fields)

    run_worker(config, say, concurrency=concurrency, name=name)


@cli.command("serve")
@click.option("--host", help="Address to listen on (default: serve.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default: serve.port, 8080).")
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Behind a reverse proxy: believe X-Forwarded-For/-Proto from serve.trusted_proxies only.",
)
@config_option
@click.pass_context
@_fail_cleanly
def serve_command(ctx: click.Context, host: str | None, port: int | None, proxy_headers: bool) -> None:
    """Run the readers' web service (the serve: section): subscribe with double opt-in,
    RFC 8058 one-click unsubscribe, the web archive and the ESP webhooks, until SIGINT/SIGTERM.

    It listens on plain HTTP: put a reverse proxy that terminates https in front of it, at
    serve.public_url, and pass --proxy-headers so the client's address is the reader's.
    """
    from .web.server import run

    config = _config(ctx)
    serve = config.serve
    if serve is None:
        raise ConfigError("serve: is missing (expected a serve: section with public_url)")
    if not serve.lists or not serve.confirm_target:
        click.echo(
            "warning: serve.lists or serve.confirm_target is not set: no subscribe form "
            "(unsubscribe and the archive work)",
            err=True,
        )
    run(config, host, port, proxy_headers)


def _off_the_handler(action) -> None:
    """Run `action` (which sets threading Events) on a thread of its own: a signal handler runs
    between two bytecodes of the main thread, which may hold the very lock `Event.set()` needs."""
    threading.Thread(target=action, name="syndicate-signal", daemon=True).start()


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


@cli.group()
def dkim() -> None:
    """DKIM keys for the smtp targets' `dkim:` settings."""


@dkim.command("keygen")
@click.option("--selector", required=True, help="The DKIM selector, e.g. news2026.")
@click.option("--domain", required=True, help="The signing domain: the From address's domain.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the key files.",
)
@click.option("--bits", type=int, default=2048, show_default=True, help="RSA key size (1024 to 4096).")
@_fail_cleanly
def dkim_keygen(selector: str, domain: str, out: Path, bits: int) -> None:
    """Make an RSA key pair: SELECTOR.DOMAIN.private.pem (mode 0600) and .public.pem in --out,
    and print the DNS TXT record to publish. Existing files are never overwritten."""
    from .dkim import check_name, generate_key, key_file_names, txt_record

    selector, domain = check_name("--selector", selector), check_name("--domain", domain)
    private_name, public_name = key_file_names(selector, domain)
    private, public = out / private_name, out / public_name
    for path in (private, public):
        if path.exists():
            raise ConfigError(f"{path}: already exists (expected a new file: move it, or another selector)")
    pair = generate_key(bits)
    write_private(private, pair.private_pem)
    write_private(public, pair.public_pem)
    public.chmod(0o644)  # public: DNS carries the same
    click.echo(f"private key: {private} (mode 0600; dkim.key_file of an smtp target)")
    click.echo(f"public key:  {public}")
    click.echo("publish this DNS record:")
    click.echo(txt_record(selector, domain, pair.public_b64))


@cli.group()
def bounces() -> None:
    """Read bounces, complaints and mailed unsubscribes, and apply them to the readers."""


@bounces.command("read")
@click.argument("mailbox", required=False)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="For an mbox: the file remembering which messages were read.",
)
@click.option(
    "--password-env", metavar="VAR", help="For imaps://: the environment variable with the password."
)
@click.option(
    "--ca-file", type=click.Path(dir_okay=False), help="For imaps://: a CA to trust besides the system's."
)
@config_option
@click.pass_context
@_fail_cleanly
def bounces_read(
    ctx: click.Context, mailbox: str | None, state: Path | None, password_env: str | None, ca_file: str | None
) -> None:
    """Read the bounce MAILBOX (a Maildir folder, an mbox file, or imaps://user@host/INBOX);
    without one, the config's bounces: mailbox (which syndicate daemon reads on its own).

    RFC 3464 delivery reports (a hard bounce ends the reader; soft bounces are counted), RFC 5965
    complaints (end the reader) and `unsubscribe <token>` mails (unsubscribe it). Each is noted
    on the ledger row of the message it answers; `syndicate status` shows the rates. Processed
    messages are not read again (Maildir: moved to .processed/; mbox: remembered in --state).
    """
    from .intake import read_bounce_mailbox, read_bounces

    config = _config(ctx)
    if mailbox is None:
        if state or password_env or ca_file:
            raise click.UsageError("--state, --password-env and --ca-file go with MAILBOX")
        report = read_bounce_mailbox(config)
    else:
        report = read_bounces(config, mailbox, state=state, password_env=password_env, ca_file=ca_file)
    for line in report.unmatched:
        click.echo(f"not applied: {line}", err=True)
    click.echo(report.summary())


@cli.group()
def ledger() -> None:
    """Keep the ledger's size in bounds."""


@ledger.command("prune")
@click.option(
    "--before",
    metavar="DATE",
    required=True,
    help="Drafts finished before this (YYYY-MM-DD in site.timezone, or an ISO 8601 instant).",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; change nothing.")
@click.option("--vacuum", is_flag=True, help="SQLite: give the freed space back to the file system.")
@config_option
@click.pass_context
@_fail_cleanly
def ledger_prune(ctx: click.Context, before: str, dry_run: bool, vacuum: bool) -> None:
    """Delete the message rows of drafts finished before DATE whose every message is settled
    (sent or failed), keeping each draft's counts: `status` still shows them, and neither
    `send --due` nor the daemon sends a pruned draft again (only `--resend` does, to everyone).
    A draft with a message that may still go out, or not finished, keeps its rows."""
    from .continuity import open_ledger
    from .ledger import Ledger, PruneResult

    config = _config(ctx)
    moment = _instant("--before", before, config.site.tz)
    if dry_run:
        found = Ledger.reader(config)
        if found is None:
            click.echo(PruneResult(0, 0, 0, None, dry_run=True).summary())
            return
        with found:
            click.echo(found.prune(moment, dry_run=True).summary())
        return
    with open_ledger(config) as opened:
        click.echo(opened.prune(moment, vacuum=vacuum).summary())


def _instant(option: str, value: str, tz: tzinfo) -> datetime:
    """A date (its midnight in `tz`) or an ISO 8601 instant (without an offset: in `tz`)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: not a date (expected YYYY-MM-DD or an ISO 8601 instant)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


@cli.group()
def subscribers() -> None:
    """Manage the subscriber lists kept in the ledger's database.

    A list is a name (`--list`); an address is on a list once, with a status: subscribed,
    unconfirmed, unsubscribed, bounced or complained. The last three are never mailed again and
    an import or `add` does not bring them back.
    """


list_option = click.option("--list", "list_name", required=True, metavar="LIST", help="The list's name.")


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@list_option
@config_option
@click.pass_context
@_fail_cleanly
def subscribers_import(ctx: click.Context, file: Path, list_name: str) -> None:
    """Import FILE into a list.

    FILE is a CSV export of Mailchimp, listmonk, Substack or Buttondown, a `subscribers export`,
    any CSV with an email column (`,` `;` or tab), or one address a line.

    Running it again with the same file changes nothing. Rows left out are printed on stderr
    as `file:line: problem`; the others are imported. Exits 1 when a row was left out.
    """
    from .subscriber_files import iter_subscriber_file
    from .subscribers import SubscriberStore

    config = _config(ctx)
    problems: list[RecipientProblem] = []
    rows = iter_subscriber_file(file, problems)  # read as it is imported: memory stays flat
    with SubscriberStore.from_config(config) as store:
        result = store.import_rows(list_name, rows)
    left_out = [*problems, *result.problems]
    for problem in left_out:
        click.echo(str(problem), err=True)
    total = result.added + result.updated + result.unchanged
    line = (
        f"imported {total} into {list_name} "
        f"({result.added} new, {result.updated} updated, {result.unchanged} unchanged)"
    )
    if left_out:
        line += f"; {len(left_out)} row(s) left out"
    click.echo(line)
    sys.exit(1 if left_out else 0)


@subscribers.command("export")
@list_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (owner-only)."
)
@config_option
@click.pass_context
@_fail_cleanly
def subscribers_export(ctx: click.Context, list_name: str, output: Path | None) -> None:
    """Write a list as CSV.

    Columns: email,name,status, one per attribute, created_at; every status included, to stdout
    or --output. `subscribers import` reads it back."""
    from .subscriber_files import write_subscribers
    from .subscribers import SubscriberStore

    config = _config(ctx)
    with SubscriberStore.from_config(config) as store:
        found = _Listing(store, list_name)  # read twice (attribute columns, then rows), never held
        if output is None:
            write_subscribers(found, sys.stdout)
            return
        text = io.StringIO()
        count = write_subscribers(found, text)
    write_private(output, text.getvalue())
    click.echo(f"exported {count} subscriber(s) of {list_name} to {output}")


@subscribers.command("add")
@click.argument("address")
@list_option
@click.option("--name", default="", help="The reader's name.")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="An attribute (repeatable).")
@config_option
@click.pass_context
@_fail_cleanly
def subscribers_add(
    ctx: click.Context, address: str, list_name: str, name: str, attrs: tuple[str, ...]
) -> None:
    """Add ADDRESS to a list as subscribed. An address already there keeps its row (and takes
    the name and attributes given); one that unsubscribed, bounced or complained is left as it is."""
    from .subscriber_files import attribute_key
    from .subscribers import SubscriberError, SubscriberStore

    attributes: dict[str, str] = {}
    for item in attrs:
        key, equals, value = item.partition("=")
        if not equals or not attribute_key(key):
            raise SubscriberError(f"--attr {item!r}: expected KEY=VALUE, e.g. --attr city=Leeds")
        attributes[attribute_key(key)] = value.strip()
    config = _config(ctx)
    with SubscriberStore.from_config(config) as store:
        found, created = store.add(list_name, address, name=name, attributes=attributes)
    if created:
        click.echo(f"added {found.email} to {list_name}")
    elif found.status in ENDED:
        click.echo(f"{found.email} is {found.status} on {list_name}; left as it is")
    else:
        click.echo(f"{found.email} is already on {list_name} ({found.status})")


@subscribers.command("remove")
@click.argument("address")
@list_option
@config_option
@click.pass_context
@_fail_cleanly
def subscribers_remove(ctx: click.Context, address: str, list_name: str) -> None:
    """Unsubscribe ADDRESS from a list. Its row stays (unsubscribed), so it is never mailed again."""
    from .subscribers import SubscriberError, SubscriberStore

    config = _config(ctx)
    with SubscriberStore.from_config(config) as store:
        found = store.remove(list_name, address, reason="removed with the cli")
    if found is None:
        raise SubscriberError(f"{address}: not on {list_name}")
    click.echo(f"{found.email} is {found.status} on {list_name}")


@subscribers.command("list")
@list_option
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only these statuses (repeatable; default: all).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines), no summary.")
@config_option
@click.pass_context
@_fail_cleanly
def subscribers_list(ctx: click.Context, list_name: str, statuses: tuple[str, ...], as_json: bool) -> None:
    """List a list's subscribers.

    In the order they were added: address, status and name (tab-separated), then a count. With
    --json, one object a line (id, list, email, name, attributes, status, source, created_at,
    updated_at, confirmed_at, ended_at, reason, soft_bounces)."""
    from .subscribers import SubscriberStore

    config = _config(ctx)
    count = 0
    with SubscriberStore.from_config(config) as store:
        for found in store.subscribers(list_name, statuses or None):  # type: ignore[arg-type]
            count += 1
            if as_json:
                click.echo(json.dumps(_subscriber_json(found), ensure_ascii=False))
            else:
                click.echo(f"{found.email}\t{found.status}\t{found.name}")
    if not as_json:
        click.echo(f"{count} subscriber(s) on {list_name}")


class _Listing:
    """A list's subscribers, read from the store afresh each time it is iterated."""

    def __init__(self, store: SubscriberStore, list_name: str) -> None:
        self.store, self.list_name = store, list_name

    def __iter__(self) -> Iterator[Subscriber]:
        return self.store.subscribers(self.list_name)


def _subscriber_json(found: Subscriber) -> dict[str, Any]:
    facts = {field.name: getattr(found, field.name) for field in dataclasses.fields(found)}
    facts["attributes"] = dict(found.attributes)
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in facts.items()}


def main() -> None:
    cli(prog_name="syndicate")
