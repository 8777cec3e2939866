"""`syndicate send` end to end: outbox and real loopback SMTP/HTTP servers, the ledger, dry runs,
and a real `syndicate send` process killed with SIGKILL mid-batch."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate import clock
from syndicate.cli import cli
from syndicate.config import ConfigError
from syndicate.deliver import MessageKey
from syndicate.ledger import Ledger
from syndicate.send import send

from .conftest import child_env, free_port, loopback_smtp

ARTICLE = """---
title: '{title}'
description: 'What {title} is about.'
read_time: '3 mins'
publish_date: '{date}'
heroImage: 'https://img.example.com/{slug}.webp'
cta: 'Follow us on LinkedIn for more on {title}.'
---
Body of {title}.
"""
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def write_articles(site, count: int = 3, date: str = "2026-11-2{n}") -> None:
    for n in range(count):
        slug = f"article-{n}"
        site.article(f"{slug}.md", ARTICLE.format(title=f"Article {n}", slug=slug, date=date.format(n=n)))


def write_recent_articles(site, count: int = 3) -> None:
    """Articles published 8 days before the clock seam's now: in a digest window that has closed
    (a weekly one too), so due for a `syndicate send` process, which reads "now" from the seam,
    whatever instant the suite runs at."""
    write_articles(site, count, date=(clock.now() - timedelta(days=8)).strftime("%Y-%m-%dT0{n}:00:00Z"))


def smtp_site(site, port: int, recipients: list[str] | Path) -> None:
    site.data["targets"]["newsletter"] = loopback_smtp(port, recipients, retry_delay=0.01)
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.write_config()


def test_due_sends_go_to_the_outbox_once(site):
    write_articles(site)
    config = site.config()
    first = send(config, select="due", backfill=True, now=NOW)
    assert first.ok
    totals = first.totals()
    assert totals["social-outbox"]["sent"] == 3 and totals["mail-outbox"]["sent"] == 1
    email_files = list((site.root / "outbox" / "email").glob("*.eml"))
    assert len(email_files) == 1
    parsed = message_from_bytes(email_files[0].read_bytes(), policy=policy.default)
    assert parsed["To"] == "a@example.com"
    assert parsed["Subject"]
    posts = sorted((site.root / "outbox" / "social").glob("*.json"))
    assert [json.loads(p.read_text())["kind"] for p in posts] == ["post"] * 3

    again = send(config, select="due", now=NOW)
    assert again.totals()["social-outbox"] == {
        "sent": 0,
        "failed": 0,
        "pending": 0,
        "skipped": 3,
        "recovered": 0,
    }
    assert again.totals()["mail-outbox"]["skipped"] == 1  # planned again, the ledger skips it
    forced = send(config, select="all", now=NOW, resend=True)
    assert forced.totals()["social-outbox"]["sent"] == 3


def test_dry_run_writes_the_same_messages_and_touches_no_ledger(site, monkeypatch, clock_at):
    clock_at(NOW)
    monkeypatch.setenv("SYN_SEND_PASSWORD", "s3cret-value-xyz")
    write_articles(site)
    site.data["targets"]["newsletter"] = {
        "type": "smtp",
        "host": "smtp.invalid",
        "username": "me",
        "password": "${SYN_SEND_PASSWORD}",
        "recipients": ["one@example.org", "two@example.org"],
    }
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.write_config()
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "send", "--due", "--backfill", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "weekly:2026-11-23 -> newsletter: 2 recipient(s)" in result.output
    assert "one@example.org" not in result.output
    assert "s3cret-value-xyz" not in result.output
    assert not (site.root / ".syndicate" / "ledger.sqlite").exists()
    written = list((site.root / ".syndicate" / "dry-run" / "newsletter").glob("*.eml"))
    assert len(written) == 2
    verbose = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "send", "--due", "--backfill", "--dry-run", "-v"]
    )
    assert "one@example.org" in verbose.output and "s3cret-value-xyz" not in verbose.output


def test_smtp_digest_reaches_each_recipient_once_and_550_is_reported(site, smtp_sink):
    sink, port = smtp_sink
    write_articles(site)
    smtp_site(site, port, ["a@example.org", "b@example.org", "refused@example.org"])
    sink.rcpt_reply = lambda address, attempt: (
        "550 5.1.1 no such user" if address.startswith("refused") else None
    )
    outcome = send(site.config(), select="due", backfill=True, now=NOW)
    assert not outcome.ok
    assert outcome.totals()["newsletter"]["sent"] == 2 and outcome.totals()["newsletter"]["failed"] == 1
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}
    body = sink.received[0][1]
    assert b"\r\n" in body and b"List-Unsubscribe" in body
    with Ledger.from_config(site.config()) as ledger:
        [failure] = ledger.failures()
    assert failure.key.recipient == "refused@example.org" and "550" in failure.last_error

    again = send(site.config(), select="due", backfill=True, now=NOW)
    assert [(r.sent, r.skipped) for _, r in again.reports if r.target == "newsletter"] == [
        (0, 3)
    ]  # 550 is final
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}


def test_cli_send_exit_codes_and_summary(site, smtp_sink):
    sink, port = smtp_sink
    write_recent_articles(site)
    smtp_site(site, port, ["a@example.org", "refused@example.org"])
    sink.rcpt_reply = lambda address, attempt: "550 no" if address.startswith("refused") else None
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(site.config_path), "send", "--due", "--backfill"])
    assert result.exit_code == 1
    assert "newsletter" in result.output and "failed: newsletter: refused@example.org" in result.output
    assert runner.invoke(cli, ["--config", str(site.config_path), "send"]).exit_code == 2  # nothing selected
    status = runner.invoke(cli, ["--config", str(site.config_path), "status"])
    assert status.exit_code == 0 and "weekly -> newsletter: 1 failed, 1 sent" in status.output


def test_send_named_article_even_if_future(site):
    write_articles(site, count=2, date="2030-01-0{n}")
    outcome = send(site.config(), select=["article-1"], channels=["linkedin"], now=NOW)
    assert [s.draft_key for s in outcome.sends] == ["linkedin:article-1"]
    assert outcome.totals()["social-outbox"]["sent"] == 1
    with pytest.raises(ConfigError.__mro__[1], match="no-such: no such article"):
        send(site.config(), select=["no-such"], now=NOW)


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_email_digest_to_a_webhook_is_json_with_placeholders(site):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_articles(site)
        url = f"http://127.0.0.1:{server.server_port}/hook"
        site.data["targets"]["automations"] = {"type": "webhook", "url": url, "local": True}
        site.data["channels"]["weekly"]["targets"] = ["automations"]
        _Receiver.bodies = []
        outcome = send(site.config(), select="due", backfill=True, channels=["weekly"], now=NOW)
        assert outcome.ok
        [body] = _Receiver.bodies
        assert body["kind"] == "email" and body["key"] == "weekly:2026-11-23"
        assert [a["slug"] for a in body["articles"]] == ["article-2", "article-1", "article-0"]
        assert (
            body["placeholders"]["name"] in body["html"] or body["placeholders"]["greeting"] in body["html"]
        )
    finally:
        server.shutdown()


def test_channel_target_mismatch_is_a_config_error(site):
    site.data["targets"]["newsletter"] = {"type": "smtp", "host": "h", "recipients": ["a@example.org"]}
    site.data["channels"]["linkedin"]["targets"] = ["newsletter"]
    with pytest.raises(ConfigError, match="'newsletter' is an smtp target, which sends email"):
        site.config()


def test_kill_9_of_a_real_send_then_send_again(site, smtp_sink, capsys):
    """SIGKILL part-way through a 2,000-recipient digest; the next run completes the list.

    With `schedule.unknown: resend` every recipient ends with the message and duplicates are at
    most the messages in flight at the kill; with the default (skip) there would be none.
    """
    sink, port = smtp_sink
    write_recent_articles(site, count=1)
    count = 2000
    csv = site.root / "subscribers.csv"
    csv.write_text("email,name\n" + "".join(f"r{n}@example.org,Reader {n}\n" for n in range(count)))
    smtp_site(site, port, csv)
    site.data["channels"] = {"weekly": site.data["channels"]["weekly"]}
    site.data["schedule"] = {"unknown": "resend"}
    site.write_config()
    command = [
        sys.executable,
        "-m",
        "syndicate",
        "--config",
        str(site.config_path),
        "send",
        "--due",
        "--backfill",
    ]
    env = child_env()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(sink.received) < 600 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = len(sink.received)
    assert 0 < before < count, "the kill must land part-way through the batch"
    with Ledger.from_config(site.config()) as ledger:
        in_flight = sum(c.get("in_flight", 0) for c in ledger.counts().values())
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    copies = sink.copies()
    duplicates = sum(n - 1 for n in copies.values())
    assert set(copies) == {f"r{n}@example.org" for n in range(count)}
    assert duplicates <= in_flight <= 1
    with capsys.disabled():
        print(
            f"\nsyndicate send killed after {before} delivered: {in_flight} in flight, {duplicates} duplicate(s)"
        )


@pytest.mark.parametrize("policy", ["skip", "resend"])
def test_twenty_kill_9s_at_random_moments_lose_nothing_handed_and_double_nothing_by_policy(
    site, smtp_sink, policy, capsys
):
    """`syndicate send` killed with SIGKILL 20 times at (seeded) random moments of a 400-reader
    digest, then run to the end. Counted at the sink: under `skip` no reader gets two copies,
    under `resend` no reader gets none, and under either a reader is missing only if the message
    was in doubt (handed to the relay when a run died): one never handed over is never lost."""
    sink, port = smtp_sink
    sink.stall = lambda command, address, attempt: 0.03 if command == "DATA" else 0  # a slow relay
    write_recent_articles(site, count=1)
    count = 400
    csv = site.root / "subscribers.csv"
    csv.write_text("email\n" + "".join(f"r{n:03d}@example.org\n" for n in range(count)))
    smtp_site(site, port, csv)
    site.data["channels"] = {"weekly": site.data["channels"]["weekly"]}
    site.data["schedule"] = {"unknown": policy}
    site.write_config()
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "send", "--all"]
    moments = random.Random(f"kill-9-{policy}")
    for _ in range(20):
        before = len(sink.received)
        process = subprocess.Popen(
            command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while len(sink.received) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)  # until this run is sending
        time.sleep(moments.uniform(0, 0.4))  # then at any moment of a message's life
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed_after = len(sink.received)
    final = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)
    assert "Traceback" not in final.stderr
    copies = sink.copies()
    readers = {f"r{n:03d}@example.org" for n in range(count)}
    lost = readers - set(copies)
    duplicated = sum(n - 1 for n in copies.values())
    with Ledger.from_config(site.config()) as ledger:
        in_doubt = {d.key.recipient for d in ledger.unknowns()}  # under resend, all resent since
    with capsys.disabled():
        print(
            f"\n20 x kill -9 under schedule.unknown: {policy}: {killed_after} delivered before the last run; "
            f"{len(in_doubt)} left in doubt, {len(lost)} lost, {duplicated} duplicated"
        )
    assert lost <= in_doubt  # only a message handed over when a run died can be missing
    if policy == "skip":
        assert duplicated == 0
    else:  # each kill can leave at most the one message in flight in doubt; resending it may double it
        assert not lost and not in_doubt and final.returncode == 0 and duplicated <= 20


# -- the archive guard: `send --due` follows schedule.catch_up ------------------------------------


def archive_site(site, port: int, receiver_url: str, catch_up: str | None) -> datetime:
    """60 posts from 2023-2025 and one due an hour ago; a daily digest (UTC) whose latest time
    was 30 minutes ago, to one reader on a loopback SMTP sink; posts to a loopback webhook.
    Returns the instant the new article is due."""
    now = clock.now().replace(microsecond=0)
    digest_at = now - timedelta(minutes=30)
    site.data["site"]["timezone"] = "UTC"
    site.data["channels"] = {
        "daily": {
            "kind": "email",
            "mode": "digest",
            "schedule": {"every": "day", "at": f"{digest_at:%H:%M}"},
            "targets": ["newsletter"],
        },
        "linkedin": {"kind": "social", "network": "linkedin", "targets": ["hook"]},
    }
    site.data["targets"] = {
        "newsletter": loopback_smtp(port, ["reader@example.org"]),
        "hook": {"type": "webhook", "url": receiver_url, "local": True},
    }
    if catch_up is not None:
        site.data["schedule"] = {"catch_up": catch_up}
    site.write_config()
    for n in range(60):
        day = datetime(2023, 1, 2, 9, tzinfo=UTC) + timedelta(days=n * 17)  # 2023-01 to 2025-10
        slug = f"archive-{n:02d}"
        site.article(f"{slug}.md", ARTICLE.format(title=f"Archive {n:02d}", slug=slug, date=day.isoformat()))
    fresh = now - timedelta(hours=1)
    site.article(
        "fresh-tide.md", ARTICLE.format(title="Fresh Tide", slug="fresh-tide", date=fresh.isoformat())
    )
    return fresh


def posted_slugs(receiver) -> list[str]:
    return [json.loads(body)["article"]["slug"] for _, body in receiver.arrivals]


def test_first_send_due_sends_what_is_new_not_the_archive_and_backfill_sends_the_rest(
    site, smtp_sink, receiver
):
    sink, port = smtp_sink
    archive_site(site, port, receiver.url, catch_up="1d")
    runner = CliRunner()
    args = ["--config", str(site.config_path), "send", "--due"]

    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert posted_slugs(receiver) == ["fresh-tide"]  # one post
    assert sink.copies() == {"reader@example.org": 1}  # one email: the first digest, its own window
    digest = sink.received[0][1]
    assert b"Fresh Tide" in digest and b"Archive" not in digest
    assert "skipped 60 send(s) whose time had passed (schedule.catch_up: 1d)" in first.output
    assert "`syndicate send --due --backfill` sends them" in first.output

    backfill = runner.invoke(cli, [*args, "--backfill"])
    assert backfill.exit_code == 0, backfill.output
    slugs = posted_slugs(receiver)
    assert len(slugs) == 61 and sorted(slugs[1:]) == [f"archive-{n:02d}" for n in range(60)]
    assert sink.copies() == {"reader@example.org": 1}  # the digest went out already

    for again in (args, [*args, "--backfill"]):
        result = runner.invoke(cli, again)
        assert result.exit_code == 0, result.output
    assert len(receiver.arrivals) == 61 and sink.copies() == {"reader@example.org": 1}


def test_the_default_policy_sends_nothing_late_records_it_and_says_how_to_send_it(site, smtp_sink, receiver):
    sink, port = smtp_sink
    archive_site(site, port, receiver.url, catch_up=None)  # default: skip
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(site.config_path), "send", "--due"])
    assert first.exit_code == 0, first.output
    assert receiver.arrivals == [] and sink.received == []
    # 61 posts and the digest 30 minutes late.
    assert "skipped 62 send(s) whose time had passed (schedule.catch_up: skip)" in first.output
    with Ledger.from_config(site.config()) as ledger:
        skipped = {draft[2]: reason for draft, reason in ledger.skipped_drafts()}
    assert len(skipped) == 62 and skipped["linkedin:fresh-tide"].startswith("missed by 1h 0m")
    second = runner.invoke(cli, ["--config", str(site.config_path), "send", "--due"])
    assert "62 send(s) skipped earlier by schedule.catch_up are waiting" in second.output
    assert receiver.arrivals == []
    dry = runner.invoke(cli, ["--config", str(site.config_path), "send", "--due", "--backfill", "--dry-run"])
    assert dry.exit_code == 0 and receiver.arrivals == []
    backfill = runner.invoke(cli, ["--config", str(site.config_path), "send", "--due", "--backfill"])
    assert backfill.exit_code == 0, backfill.output
    assert len(receiver.arrivals) == 61 and sink.copies() == {"reader@example.org": 1}


def test_a_send_due_within_a_minute_is_on_time_under_skip(site):
    now = clock.now().replace(microsecond=0)
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.write_config()
    site.article(
        "just-now.md",
        ARTICLE.format(title="Just Now", slug="just-now", date=(now - timedelta(seconds=20)).isoformat()),
    )
    site.article(
        "old.md", ARTICLE.format(title="Old", slug="old", date=(now - timedelta(minutes=3)).isoformat())
    )
    outcome = send(site.config(), select="due", now=now)
    assert [s.draft_key for s in outcome.sends] == ["linkedin:just-now"]
    assert [m.draft_key for m in outcome.missed] == ["linkedin:old"]
    assert outcome.missed[0].reason == "missed by 3m 0s (schedule.catch_up: skip)"


# -- exit codes and selections ----------------------------------------------------------------


def test_send_exits_1_when_an_article_was_skipped_for_an_error(site):
    write_articles(site, count=1, date="2026-01-1{n}")
    site.article("broken.md", "---\ntitle: Broken\npublish_date: '2026-13-45'\n---\nBody.\n")
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--all"])
    assert result.exit_code == 1, result.output
    assert "skipped: " in result.output and "broken.md: publish_date:" in result.output
    assert len(list((site.root / "outbox" / "social").glob("*.json"))) == 1  # the good one went out
    again = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--due"])
    assert again.exit_code == 1  # still skipped for its error, though nothing is left to send


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--due", "--all"], "one of them; got --due and --all"),
        (["article-0", "--due"], "got ARTICLE... and --due"),
        (["--all", "--backfill"], "--backfill goes with --due"),
        (["article-0", "--to", "me@example.org", "--resend"], "does not take --resend"),
    ],
)
def test_conflicting_selections_are_errors(site, args, said):
    write_articles(site, count=1)
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", *args])
    assert result.exit_code == 2 and said in result.output


def test_a_target_outside_the_channel_is_an_error_naming_its_targets(site):
    write_articles(site, count=1)
    args = ["--config", str(site.config_path), "send", "article-0", "--channel", "linkedin"]
    result = CliRunner().invoke(cli, [*args, "--target", "mail-outbox"])
    assert result.exit_code == 2
    assert (
        "--target mail-outbox: not a target of the chosen channel(s) (their targets: linkedin: social-outbox)"
        in result.output
    )
    assert not (site.root / "outbox").exists()


# -- a test send ------------------------------------------------------------------------------------


def test_a_test_send_reaches_one_address_with_a_test_subject_and_no_ledger_row(site, smtp_sink):
    sink, port = smtp_sink
    write_articles(site, count=2, date="2026-01-1{n}")
    site.article(
        "unpublished.md", ARTICLE.format(title="Unpublished", slug="unpublished", date="2030-01-01") + ""
    )
    site.data["channels"]["letters"] = {
        "kind": "email",
        "mode": "single",
        "targets": ["hook", "newsletter"],  # the first email target is the one a test goes through
    }
    site.data["targets"]["hook"] = {
        "type": "webhook",
        "url": f"http://127.0.0.1:{free_port()}/",
        "local": True,
    }
    smtp_site(site, port, ["a@example.org", "b@example.org"])
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--config", str(site.config_path), "send", "unpublished", "--to", "Editor@Example.org"]
    )
    assert result.exit_code == 0, result.output
    # One email per email channel (the digest and the single letter), both to that address only.
    assert sink.copies() == {"Editor@example.org": 2}
    subjects = sorted(message_from_bytes(body, policy=policy.default)["Subject"] for _, body in sink.received)
    assert all(subject.startswith("[test] ") for subject in subjects)
    assert all(b"Unpublished" in body for _, body in sink.received)
    posts = list((site.root / ".syndicate" / "test-send" / "linkedin").glob("*.json"))
    assert len(posts) == 1 and json.loads(posts[0].read_text())["article"]["slug"] == "unpublished"
    assert not (site.root / "outbox").exists()  # the real outboxes are untouched
    with Ledger.from_config(site.config()) as ledger:
        assert ledger.counts() == {}
    # The real send still goes out to everyone.
    real = runner.invoke(
        cli,
        [
            "--config",
            str(site.config_path),
            "send",
            "article-0",
            "--channel",
            "letters",
            "--target",
            "newsletter",
        ],
    )
    assert real.exit_code == 0, real.output
    assert sink.copies() == {"Editor@example.org": 2, "a@example.org": 1, "b@example.org": 1}


def test_a_test_send_checks_its_address_and_target(site, smtp_sink):
    sink, port = smtp_sink
    write_articles(site, count=1)
    smtp_site(site, port, ["a@example.org"])
    base = ["--config", str(site.config_path), "send", "article-0"]
    bad = CliRunner().invoke(cli, [*base, "--to", "not an address"])
    assert bad.exit_code == 2 and "--to: 'not an address' contains spaces" in bad.output
    outside = CliRunner().invoke(
        cli, [*base, "--to", "me@example.org", "--channel", "weekly", "--target", "social-outbox"]
    )
    assert outside.exit_code == 2 and "their targets: weekly: newsletter" in outside.output
    assert sink.received == []


# --- the dry run reads the ledger (never writes it) and owns its folder -----------------------------


def dry_run(site, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--all", "--dry-run", *args])
    assert "Traceback" not in result.output
    return result


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_dry_run_before_any_send_marks_everything_new(site, smtp_sink, clock_at):
    clock_at(NOW)
    sink, port = smtp_sink
    write_articles(site)
    smtp_site(site, port, ["a@example.org", "b@example.org"])
    folder = site.root / ".syndicate" / "dry-run"
    (folder / "gone-target").mkdir(parents=True)
    (folder / "gone-target" / "stale.eml").write_text("from an earlier run")
    result = dry_run(site)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("  ", 1)[1] for line in lines[:4]] == [
        "linkedin:article-0 -> social-outbox: 1 message, new",
        "linkedin:article-1 -> social-outbox: 1 message, new",
        "linkedin:article-2 -> social-outbox: 1 message, new",
        "weekly:2026-11-23 -> newsletter: 2 recipient(s), new",
    ]
    assert (
        lines[4]
        == f"dry run: 5 message(s) would be sent; nothing sent, no ledger written; messages in {folder}"
    )
    assert not (site.root / ".syndicate" / "ledger.sqlite").exists()
    written = files_in(folder)
    assert len(written) == 5 and "gone-target/stale.eml" not in written  # the stale file is gone
    assert sum(name.startswith("newsletter/") for name in written) == 2
    assert sink.received == []


def test_dry_run_after_a_full_send_says_nothing_would_be_sent(site, smtp_sink, clock_at):
    clock_at(NOW)
    sink, port = smtp_sink
    write_articles(site)
    smtp_site(site, port, ["a@example.org", "b@example.org"])
    assert dry_run(site).exit_code == 0  # messages in the folder, from before the send
    sent = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--all"])
    assert sent.exit_code == 0, sent.output
    ledger = site.root / ".syndicate" / "ledger.sqlite"
    before = ledger.read_bytes()

    result = dry_run(site, "-v")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(line.endswith(", already sent") for line in lines[:4]), lines
    assert lines[4:] == ["dry run: nothing would be sent (the ledger has every message); no messages written"]
    assert files_in(site.root / ".syndicate" / "dry-run") == []  # nothing written, the earlier files gone
    assert ledger.read_bytes() == before
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}

    due = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--due", "--dry-run"])
    assert due.exit_code == 0 and "nothing would be sent" in due.output


def test_dry_run_of_a_partly_sent_digest_writes_only_what_is_left(site, smtp_sink, clock_at):
    clock_at(NOW)
    sink, port = smtp_sink
    write_articles(site, count=1)
    smtp_site(site, port, ["a@example.org", "b@example.org", "c@example.org"])
    site.data["channels"] = {"weekly": site.data["channels"]["weekly"]}
    site.write_config()
    sink.rcpt_reply = lambda address, attempt: "550 no" if address.startswith("b") else None
    with Ledger.from_config(site.config()) as ledger:  # c is left in flight, as by a crash
        ledger.mark_in_flight(MessageKey("weekly", "newsletter", "weekly:2026-11-23", "c@example.org"), "h")
    first = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "send", "--all", "--channel", "weekly"]
    )
    assert first.exit_code == 1  # b refused; c unknown (skipped under the default policy)
    site.data["targets"]["newsletter"]["recipients"].append("d@example.org")  # a new reader since
    site.write_config()

    result = dry_run(site, "-v")
    assert result.exit_code == 0, result.output
    assert "weekly:2026-11-23 -> newsletter: 4 recipient(s), partly sent: 1 left to send, 3 already done" in (
        result.output
    )
    assert "    d@example.org" in result.output and "    a@example.org" not in result.output
    [written] = files_in(site.root / ".syndicate" / "dry-run")
    assert written.startswith("newsletter/weekly-2026-11-23.d@example.org.")


def test_dry_run_out_folder_is_emptied_only_of_what_dry_runs_wrote(site, tmp_path, clock_at):
    clock_at(NOW)
    write_articles(site)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = dry_run(site, "--out", str(mine))
    assert refused.exit_code == 2
    assert refused.output == (
        f"error: {mine}: holds 1 file(s) no dry run wrote (e.g. notes.txt); not emptying it "
        "(expected a new or empty folder, or one only dry runs wrote to)\n"
    )
    assert files_in(mine) == ["notes.txt"]

    out = tmp_path / "out"
    assert dry_run(site, "--out", str(out)).exit_code == 0
    first = files_in(out)
    assert ".syndicate-dry-run" in first and len(first) == 5  # 3 posts, 1 digest, the marker
    (site.content / "article-2.md").unlink()
    assert dry_run(site, "--out", str(out)).exit_code == 0
    second = files_in(out)
    assert len(second) == 4 and not [f for f in second if "article-2" in f]  # its post is gone

    (out / "social-outbox" / "mine.json").write_text("{}")
    again = dry_run(site, "--out", str(out))
    assert (
        again.exit_code == 2
        and "holds 1 file(s) no dry run wrote (e.g. social-outbox/mine.json)" in again.output
    )
    assert files_in(out) == sorted([*second, "social-outbox/mine.json"])
