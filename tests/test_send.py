"""`syndicate send` end to end: outbox and real loopback SMTP/HTTP servers, the ledger, dry runs,
and a real `syndicate send` process killed with SIGKILL mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.config import ConfigError
from syndicate.ledger import Ledger
from syndicate.send import send

from .conftest import child_env, loopback_smtp

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


def smtp_site(site, port: int, recipients: list[str] | Path) -> None:
    site.data["targets"]["newsletter"] = loopback_smtp(port, recipients, retry_delay=0.01)
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.write_config()


def test_due_sends_go_to_the_outbox_once(site):
    write_articles(site)
    config = site.config()
    first = send(config, select="due", now=NOW)
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
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--due", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "weekly:2026-11-23 -> newsletter: 2 recipient(s)" in result.output
    assert "one@example.org" not in result.output
    assert "s3cret-value-xyz" not in result.output
    assert not (site.root / ".syndicate" / "ledger.sqlite").exists()
    written = list((site.root / ".syndicate" / "dry-run" / "newsletter").glob("*.eml"))
    assert len(written) == 2
    verbose = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--due", "--dry-run", "-v"])
    assert "one@example.org" in verbose.output and "s3cret-value-xyz" not in verbose.output


def test_smtp_digest_reaches_each_recipient_once_and_550_is_reported(site, smtp_sink):
    sink, port = smtp_sink
    write_articles(site)
    smtp_site(site, port, ["a@example.org", "b@example.org", "refused@example.org"])
    sink.rcpt_reply = lambda address, attempt: (
        "550 5.1.1 no such user" if address.startswith("refused") else None
    )
    outcome = send(site.config(), select="due", now=NOW)
    assert not outcome.ok
    assert outcome.totals()["newsletter"]["sent"] == 2 and outcome.totals()["newsletter"]["failed"] == 1
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}
    body = sink.received[0][1]
    assert b"\r\n" in body and b"List-Unsubscribe" in body
    with Ledger.from_config(site.config()) as ledger:
        [failure] = ledger.failures()
    assert failure.key.recipient == "refused@example.org" and "550" in failure.last_error

    again = send(site.config(), select="due", now=NOW)
    assert [(r.sent, r.skipped) for _, r in again.reports if r.target == "newsletter"] == [
        (0, 3)
    ]  # 550 is final
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}


def test_cli_send_exit_codes_and_summary(site, smtp_sink):
    sink, port = smtp_sink
    write_articles(site)
    smtp_site(site, port, ["a@example.org", "refused@example.org"])
    sink.rcpt_reply = lambda address, attempt: "550 no" if address.startswith("refused") else None
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(site.config_path), "send", "--due"])
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
        outcome = send(site.config(), select="due", channels=["weekly"], now=NOW)
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
    write_articles(site, count=1)
    count = 2000
    csv = site.root / "subscribers.csv"
    csv.write_text("email,name\n" + "".join(f"r{n}@example.org,Reader {n}\n" for n in range(count)))
    smtp_site(site, port, csv)
    site.data["channels"] = {"weekly": site.data["channels"]["weekly"]}
    site.data["schedule"] = {"unknown": "resend"}
    site.write_config()
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "send", "--due"]
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
