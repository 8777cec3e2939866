"""Bounces and complaints applied end to end: syndicate sends through a real relay on loopback
that accepts every message and then bounces it (an RFC 3464 DSN into a Maildir), the intake
reads the Maildir, and the readers, the ledger rows and `status` say so; the next send mails
none of them. An RFC 5965 complaint and a mailed unsubscribe do the same for one reader."""

from __future__ import annotations

import json
import mailbox
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

from click.testing import CliRunner
from sqlalchemy import text

from syndicate.cli import cli
from syndicate.compose.mime import message_id
from syndicate.feedback import Feedback
from syndicate.intake import apply_feedback
from syndicate.ledger import Ledger
from syndicate.send import send
from syndicate.subscribers import SubscriberStore

from .conftest import SmtpSink, loopback_smtp, running_sink
from .test_daemon import daemon_process, running, wait_for
from .test_feedback_mailbox import BouncingRelay
from .test_send import write_articles

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
READERS = [f"reader{n:02}@example.org" for n in range(20)]


class CountingBouncer(BouncingRelay):
    """Accepts each message (counted per recipient), then bounces it into the Maildir."""

    def __init__(self, maildir) -> None:
        super().__init__(maildir)
        self.received: list[tuple[str, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received += [(rcpt, envelope.original_content) for rcpt in envelope.rcpt_tos]
        return await super().handle_DATA(server, session, envelope)


def _site(site, port: int) -> None:
    site.data["site"].update({"return_path": "bounces@mail.example.com", "verp": True})
    site.data["targets"]["newsletter"] = loopback_smtp(port, READERS, retry_delay=0.01)
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.data["channels"]["weekly"]["schedule"] = {"every": "day", "at": "08:00"}
    site.write_config()
    write_articles(site, count=2, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")


def _cli(site, *args: str):
    return CliRunner().invoke(cli, ["--config", str(site.config_path), *args], catch_exceptions=False)


def test_a_relay_that_accepts_then_bounces_everything_ends_every_reader(site, tmp_path):
    relay = CountingBouncer(tmp_path / "Maildir")
    with running_sink(relay) as controller:
        _site(site, controller.port)
        config = site.config()
        assert send(config, select="all", now=NOW).ok
        assert sorted(r for r, _ in relay.received) == READERS  # the server took all 20
        first = message_from_bytes(relay.received[0][1], policy=policy.default)
        with Ledger.from_config(config) as ledger:  # a report quoting the Message-ID finds its row
            ((key, content_hash),) = ledger.sent_to(relay.received[0][0])
        assert message_id(key.draft_key, content_hash, key.recipient, config) == first["Message-ID"]
        with Ledger.from_config(config) as ledger:  # what the ledger alone knows: sent 20
            assert ledger.counts()[("weekly", "newsletter")] == {"sent": 20}

        result = _cli(site, "bounces", "read", str(tmp_path / "Maildir"))
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "20 hard"
        assert _cli(site, "bounces", "read", str(tmp_path / "Maildir")).output.strip() == "nothing applied"

        with SubscriberStore.from_config(config) as store:
            assert {s.status for s in store.subscribers("newsletter")} == {"bounced"}
        status = json.loads(_cli(site, "status", "--json").output)
        (row,) = status["feedback"]
        assert (row["sent"], row["bounced"], row["bounce_rate"]) == (20, 20, 1.0)
        with sqlite3.connect(config.state_dir / "ledger.sqlite") as db:  # each message's own row says so
            notes = dict(db.execute("SELECT recipient, feedback FROM deliveries WHERE channel = 'weekly'"))
        assert sorted(notes) == READERS
        assert all(note.startswith("bounced: dsn: 5.1.1 failed 550 5.1.1") for note in notes.values())

        site.article("later.md", "---\ntitle: Later\npublish_date: '2026-12-01T09:00:00Z'\n---\nLater.\n")
        outcome = send(site.config(), select="all", now=NOW + timedelta(days=2))
        assert outcome.ok
        assert len(relay.received) == 20  # none of them mailed again


def _arf(rcpt: str, original: bytes) -> bytes:
    headers = original.split(b"\r\n\r\n", 1)[0].decode("ascii")
    boundary = "arf-boundary-7"
    return (
        "From: feedback@isp.example.net\r\nTo: abuse@mail.example.com\r\n"
        "Subject: FW: complaint\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nA reader marked this as spam.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: <{rcpt}>\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode("ascii")


def test_a_complaint_and_a_mailed_unsubscribe_end_one_reader_each(site, tmp_path):
    sink = SmtpSink()
    with running_sink(sink) as controller:
        _site(site, controller.port)
        site.data["site"]["unsubscribe_mailto"] = "unsubscribe@mail.example.com"
        site.write_config()
        config = site.config()
        assert send(config, select="all", now=NOW).ok
        got = dict(sink.received)
        box = mailbox.Maildir(tmp_path / "Maildir", create=True)
        box.add(_arf(READERS[3], got[READERS[3]]))
        header = message_from_bytes(got[READERS[5]], policy=policy.default)["List-Unsubscribe"]
        mailto = next(part.strip(" <>") for part in str(header).split(",") if "mailto:" in part)
        token = mailto.rpartition("unsubscribe%20")[2]
        box.add(
            f"From: {READERS[5]}\r\nTo: unsubscribe@mail.example.com\r\nSubject: unsubscribe {token}\r\n\r\n\r\n".encode()
        )
        result = _cli(site, "bounces", "read", str(tmp_path / "Maildir"))
        assert result.output.strip() == "1 complaint, 1 unsubscribe", result.output
        with SubscriberStore.from_config(config) as store:
            statuses = {s.email: s.status for s in store.subscribers("newsletter")}
        assert statuses[READERS[3]] == "complained" and statuses[READERS[5]] == "unsubscribed"
        assert sum(s == "subscribed" for s in statuses.values()) == 18
        text = _cli(site, "status").output
        assert "1 complained (5.00%)  ! over the 0.3 % complaint line" in text

        site.article("later.md", "---\ntitle: Later\npublish_date: '2026-12-01T09:00:00Z'\n---\nLater.\n")
        assert send(site.config(), select="all", now=NOW + timedelta(days=2)).ok
        copies = sink.copies()
        assert copies[READERS[3]] == 1 and copies[READERS[5]] == 1 and copies[READERS[0]] == 2


def _statuses(config) -> set[str]:
    with SubscriberStore.from_config(config) as store:
        return {s.status for s in store.subscribers("newsletter")}


def test_the_daemon_reads_the_bounce_mailbox_on_its_own(site, tmp_path):
    """`bounces: {mailbox}` in the config: a running `syndicate daemon` process reads it every
    `every_seconds`, ending the 20 readers whose DSNs the relay mailed back, without a command."""
    relay = CountingBouncer(tmp_path / "Maildir")
    with running_sink(relay) as controller:
        _site(site, controller.port)
        site.data["bounces"] = {"mailbox": "Maildir", "every_seconds": 0.2}  # relative to the config
        site.write_config()
        config = site.config()
        assert send(config, select="all", now=NOW).ok
        assert len(relay.received) == 20 and _statuses(config) == {"subscribed"}
        process = daemon_process(site)
        try:
            wait_for(lambda: _statuses(config) == {"bounced"}, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        assert process.returncode == 0 and "Traceback" not in err, err
        events = [json.loads(line) for line in out.splitlines()]
        assert [e["reason"] for e in events if e["event"] == "bounces"] == ["20 hard"]
        assert list((tmp_path / "Maildir" / "new").iterdir()) == []  # each one read once


def test_a_bounce_mailbox_that_cannot_be_read_is_a_log_line_and_the_daemon_goes_on(site, tmp_path):
    site.data["bounces"] = {"mailbox": str(tmp_path / "not-a-maildir"), "every_seconds": 0.1}
    (tmp_path / "not-a-maildir").mkdir()
    site.write_config()
    with running(site.config()) as (_daemon, events):
        wait_for(lambda: sum(e["event"] == "failed" for e in events) >= 2, log=events)
        failed = [e["reason"] for e in events if e["event"] == "failed"]
        assert failed[0] == (
            f"bounces: {tmp_path / 'not-a-maildir'}: not a Maildir (no new/ and cur/ folders); reading again in 0.1 s"
        )
        (tmp_path / "not-a-maildir" / "new").mkdir()
        (tmp_path / "not-a-maildir" / "cur").mkdir()
        (tmp_path / "not-a-maildir" / "tmp").mkdir()
        count = len(events)
        time.sleep(0.5)
        assert all(e["event"] != "failed" for e in events[count + 1 :]), events


def test_a_bounce_whose_verp_local_part_was_folded_to_lowercase_finds_its_reader(site):
    """An id from before ids were lowercase, in a VERP address a mail system lowercased."""
    config = site.config()
    with SubscriberStore.from_config(config) as store:
        ann, _ = store.add("news", "ann@example.org")
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE subscribers SET id = 'Qw-Er_Ty12UiOpAs' WHERE id = :id"), {"id": ann.id}
            )
    folded = Feedback("hard", None, "qw-er_ty12uiopas", None, "5.1.1 failed", "dsn")
    assert apply_feedback(config, [folded]).applied == {"hard": 1}
    with SubscriberStore.from_config(config) as store:
        assert store.get("Qw-Er_Ty12UiOpAs").status == "bounced"
