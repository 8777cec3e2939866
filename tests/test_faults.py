"""The fault matrix (issue 8): `syndicate send` against loopback servers that fail in each way.

Every case checks three things: what the user sees (the lines naming the fault, the exit code,
never a traceback), what the ledger says for each row, and that every message a server accepted
is in the ledger as sent exactly once (the sink's copies against the ledger's `sent` rows).
The README's Reliability table lists these cases and their results.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.ledger import Ledger

from .conftest import DATA, SmtpSink, free_port, running_sink
from .test_send import smtp_site, write_recent_articles

sys.path.insert(0, str(DATA / "email"))
from generate import write_articles as write_long_articles  # noqa: E402

READERS = ["a@example.org", "b@example.org", "c@example.org"]


def send_weekly(site, port: int, **options) -> tuple[int, list[str]]:
    """`syndicate send --all` of the weekly digest to READERS through an smtp target on `port`."""
    if not list(site.content.glob("*.md")):
        write_recent_articles(site)
    smtp_site(site, port, READERS)
    site.data["targets"]["newsletter"].update({"timeout": 1, **options})
    site.write_config()
    return cli_send(site, "--channel", "weekly")


def cli_send(site, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--all", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, result.output.splitlines()


def ledger_rows(site) -> dict[str, str]:
    """recipient (or draft key, for a post) -> status."""
    with Ledger.from_config(site.config()) as ledger:
        return {row.key.recipient or row.key.draft_key: row.status for row in ledger.recent(1000)}


def assert_each_accepted_once(sink: SmtpSink, site) -> None:
    """Nothing accepted is missing from the ledger or marked sent without being accepted; no copies."""
    copies = sink.copies()
    assert all(n == 1 for n in copies.values()), copies
    assert set(copies) == {who for who, status in ledger_rows(site).items() if status == "sent"}


def summary(output: str, target: str) -> dict[str, int]:
    """The sent and pending columns of a target's row in the summary table."""
    [row] = [line.split() for line in output.splitlines() if line.startswith(target + " ")]
    return {"sent": int(row[1]), "pending": int(row[3])}


def error_line(lines: list[str]) -> str:
    [line] = [line for line in lines if line.startswith("error: ")]
    return line


# -- the relay cannot be used at all: nothing goes out, every message stays pending ------------


def test_connection_refused(site):
    port = free_port()
    code, lines = send_weekly(site, port)
    assert code == 1
    assert error_line(lines) == (
        f"error: targets.newsletter: cannot connect to 127.0.0.1:{port} ([Errno 111] Connection refused); "
        "3 message(s) left pending for the next run"
    )
    assert ledger_rows(site) == {}


def test_tls_to_a_plain_server(site, smtp_sink):
    sink, port = smtp_sink
    code, lines = send_weekly(site, port, security="ssl")
    assert code == 1
    assert re.fullmatch(
        r"error: targets.newsletter: cannot connect to 127.0.0.1:\d+ \(.*WRONG_VERSION_NUMBER.*\); "
        r"3 message\(s\) left pending for the next run",
        error_line(lines),
    )
    assert ledger_rows(site) == {} and not sink.received


def test_tls_certificate_from_an_untrusted_ca(site, tls):
    sink = SmtpSink()
    with running_sink(sink, ssl_context=tls[0]) as controller:
        code, lines = send_weekly(site, controller.port, security="ssl")
    assert code == 1
    assert error_line(lines) == (
        f"error: targets.newsletter: the TLS certificate of 127.0.0.1:{controller.port} is not trusted "
        "(unable to get local issuer certificate; expected one the system trusts, or "
        "targets.newsletter.ca_file naming its CA); 3 message(s) left pending for the next run"
    )
    assert ledger_rows(site) == {} and not sink.received


def test_server_silent_past_the_timeout(site, silent_server):
    code, lines = send_weekly(site, silent_server)
    assert code == 1
    assert error_line(lines) == (
        f"error: targets.newsletter: cannot connect to 127.0.0.1:{silent_server} "
        "(Connection unexpectedly closed: timed out); "
        "3 message(s) left pending for the next run"
    )
    assert ledger_rows(site) == {}


# -- the relay misbehaves part-way: each message ends sent once, failed, or pending -------------


def test_server_stalls_mid_session_past_the_timeout(site, smtp_sink):
    sink, port = smtp_sink
    sink.stall = lambda command, address, attempt: (
        2.0 if (command, address, attempt) == ("RCPT", "b@example.org", 1) else 0
    )
    code, lines = send_weekly(site, port)
    assert code == 0, lines
    assert ledger_rows(site) == dict.fromkeys(READERS, "sent")
    assert_each_accepted_once(sink, site)
    assert sink.connections == 2  # the stalled session was dropped and a new one opened


def test_server_stalls_after_the_data_past_the_timeout(site, smtp_sink):
    """The relay keeps the message but its answer comes too late: sending it again could deliver
    it twice, so it is left `unknown` and, by default (schedule.unknown: skip), not resent."""
    sink, port = smtp_sink
    sink.stall = lambda command, address, attempt: (
        2.0 if (command, address, attempt) == ("DATA", "b@example.org", 1) else 0
    )
    code, lines = send_weekly(site, port)
    assert code == 1
    assert (
        "unknown: newsletter: b@example.org: no reply after the message was sent "
        "(Connection unexpectedly closed: timed out): the server may have it"
    ) in lines
    # The relay went quiet after taking b: the batch pauses there (c stays pending, not fed to it).
    assert "paused: newsletter: the relay stopped answering after taking a message" in "\n".join(lines)
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": "unknown"}
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}

    code, lines = cli_send(site, "--channel", "weekly")
    assert code == 0, lines
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": "unknown", "c@example.org": "sent"}


def test_421_mid_session(site, smtp_sink):
    sink, port = smtp_sink
    sink.rcpt_reply = lambda address, attempt: (
        "421 4.3.2 service shutting down" if address == "b@example.org" and attempt == 1 else None
    )
    code, lines = send_weekly(site, port)
    assert code == 0, lines
    assert ledger_rows(site) == dict.fromkeys(READERS, "sent")
    assert_each_accepted_once(sink, site)


def test_452_on_rcpt_stays_pending_and_goes_out_next_run(site, smtp_sink):
    sink, port = smtp_sink
    sink.rcpt_reply = lambda address, attempt: (
        "452 4.5.3 too many recipients" if address == "b@example.org" else None
    )
    code, lines = send_weekly(site, port, max_attempts=2)
    assert code == 1
    assert "retry: newsletter: b@example.org: 452 4.5.3 too many recipients" in lines
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": "retry", "c@example.org": "sent"}
    assert_each_accepted_once(sink, site)

    sink.rcpt_reply = None
    code, lines = cli_send(site, "--channel", "weekly")
    assert code == 0, lines
    assert ledger_rows(site) == dict.fromkeys(READERS, "sent")
    assert_each_accepted_once(sink, site)


def test_5xx_after_data(site, smtp_sink):
    sink, port = smtp_sink
    sink.data_reply = lambda address, attempt: (
        "554 5.7.1 message rejected" if address == "b@example.org" else None
    )
    code, lines = send_weekly(site, port)
    assert code == 1
    assert "failed: newsletter: b@example.org: 554 5.7.1 message rejected" in lines
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": "failed", "c@example.org": "sent"}
    assert_each_accepted_once(sink, site)


# -- webhooks ------------------------------------------------------------------------------------


def send_post(site, url: str, **options) -> tuple[int, list[str]]:
    """`syndicate send --all` of one LinkedIn-channel post to a webhook target at `url` (or,
    with `type: linkedin` in `options`, a linkedin target)."""
    write_recent_articles(site, count=1)
    site.data["targets"]["hook"] = {"type": "webhook", "url": url, "local": True, "retries": 1, **options}
    site.data["channels"]["linkedin"]["targets"] = ["hook"]
    site.write_config()
    return cli_send(site, "--channel", "linkedin")


def test_webhook_500_then_200(site, receiver):
    receiver.replies.append((500, {}))
    code, lines = send_post(site, receiver.url)
    assert code == 0, lines
    assert ledger_rows(site) == {"linkedin:article-0": "sent"}
    assert len(receiver.requests) == 2  # the 500 was not accepted; the 200 was, once


def test_webhook_429_with_retry_after(site, receiver):
    receiver.replies.append((429, {"Retry-After": "1"}))
    code, lines = send_post(site, receiver.url)
    assert code == 0, lines
    assert ledger_rows(site) == {"linkedin:article-0": "sent"}
    assert len(receiver.requests) == 2


def test_webhook_500_every_time_stays_pending(site, receiver):
    receiver.replies.extend([(500, {})] * 2)
    code, lines = send_post(site, receiver.url)
    assert code == 1
    assert "retry: hook: linkedin:article-0: HTTP 500 Internal Server Error after 2 attempts" in lines
    assert ledger_rows(site) == {"linkedin:article-0": "retry"}
    code, _ = cli_send(site, "--channel", "linkedin")
    assert code == 0 and ledger_rows(site) == {"linkedin:article-0": "sent"}
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("kind", ["webhook", "linkedin"])
def test_http_answer_lost_after_the_body_went_out(site, receiver, monkeypatch, kind):
    """The receiver keeps the post but answers after the client's timeout. Posting it again
    could publish it twice (it used to: 2 posts on the server, 1 `sent` in the ledger), so it is
    left `unknown`, like an SMTP message whose reply was lost after the data."""
    receiver.delay = 2.0
    options = {"timeout": 1, "retries": 3}
    if kind == "linkedin":
        monkeypatch.setenv("LINKEDIN_TOKEN", "AQX-test-token")
        options.update(
            type="linkedin", author="urn:li:organization:123", token="${LINKEDIN_TOKEN}", thumbnail=False
        )
    code, lines = send_post(site, receiver.url, **options)
    assert code == 1
    assert (
        "unknown: hook: linkedin:article-0: no answer after the request was sent "
        "(ReadTimeout: none within 1 s): the receiver may have it"
    ) in lines
    assert ledger_rows(site) == {"linkedin:article-0": "unknown"}
    assert len(receiver.requests) == 1
    status = CliRunner().invoke(cli, ["--config", str(site.config_path), "status"])
    assert re.search(
        r"^unknown \(the server may have them.*\n.*unknown +linkedin:article-0 -> hook .*"
        r"\(no answer after the request was sent",
        status.output,
        re.MULTILINE,
    ), status.output

    receiver.delay = 0
    code, lines = cli_send(site, "--channel", "linkedin")  # schedule.unknown: skip, the default
    assert code == 0, lines
    assert len(receiver.requests) == 1 and ledger_rows(site) == {"linkedin:article-0": "unknown"}

    site.data["schedule"] = {"unknown": "resend"}
    site.write_config()
    code, lines = cli_send(site, "--channel", "linkedin")
    assert code == 0, lines
    assert len(receiver.requests) == 2 and ledger_rows(site) == {"linkedin:article-0": "sent"}


def test_webhook_connection_refused(site):
    code, lines = send_post(site, f"http://127.0.0.1:{free_port()}/hook", retries=0)
    assert code == 1
    assert (
        "retry: hook: linkedin:article-0: cannot reach the receiver (ConnectionError) after 1 attempts"
        in lines
    )
    assert ledger_rows(site) == {"linkedin:article-0": "retry"}


# -- the disk fills ------------------------------------------------------------------------------


def test_disk_fills_while_writing_the_ledger(site, smtp_sink, small_disk):
    sink, port = smtp_sink
    write_recent_articles(site)
    readers = [f"r{n}@example.org" for n in range(40)]
    smtp_site(site, port, readers)
    site.data["state_dir"] = str(small_disk.folder)
    site.write_config()
    small_disk.resize(384 * 1024)  # room for the ledger's tables, its subscribers, folder.id and a few rows
    args = ("--config", str(site.config_path), "send", "--all", "--channel", "weekly")
    done = small_disk.run(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("error: ")]
    assert re.fullmatch(
        r"error: ledger sqlite:///.*: cannot record a delivery \((database or disk is full|disk I/O error)\); "
        r"\d+ message\(s\) left pending for the next run",
        line,
    )
    copies, rows = sink.copies(), ledger_rows(site)
    assert 0 < len(copies) < len(readers) and set(copies.values()) == {1}
    assert summary(done.stdout, "newsletter") == {"sent": len(copies), "pending": len(readers) - len(copies)}
    # Each accepted message is `sent`, but for at most one whose `sent` could not be written: it
    # stays `in_flight` (`unknown` next run, not resent). The only other row may be the message
    # claimed when the disk filled, before its data went (its hand-over mark could not be
    # written, so no final "."): `in_flight`, never handed, pending again next run.
    sent = {who for who, status in rows.items() if status == "sent"}
    assert sent <= set(copies) <= set(rows) and len(set(copies) - sent) <= 1
    unsent = set(rows) - set(copies)
    assert len(unsent) <= 1 and all(rows[who] == "in_flight" for who in unsent)

    small_disk.grow()
    again = small_disk.run(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sink.copies() == dict.fromkeys(readers, 1)


def test_disk_fills_while_writing_the_outbox(site, small_disk):
    write_long_articles(site.content, 40, body_words=1500)  # a 240 KB email: bigger than the disk
    site.data["channels"]["weekly"].update({"clip_limit": 10_000_000, "max_articles": 64})
    site.data["targets"]["mail-outbox"].update(
        {"dir": str(small_disk.folder), "recipients": ["a@example.org", "b@example.org"]}
    )
    site.write_config()
    args = ("--config", str(site.config_path), "send", "--all", "--channel", "weekly")
    done = small_disk.run(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(
        r"^retry: mail-outbox: a@example.org: cannot write .*\.eml \((No space left on device|File too large)\)$",
        done.stdout,
        re.MULTILINE,
    ), done.stdout
    assert ledger_rows(site) == {"a@example.org": "retry"}
    assert list(small_disk.folder.iterdir()) == []  # no half-written file left behind

    small_disk.grow()
    again = small_disk.run(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": "sent"}
    assert len(list(Path(small_disk.folder).glob("*.eml"))) == 2
