"""Reading the bounce mailbox: Maildir, mbox (with a state file), and IMAP over TLS against a
small scripted IMAP server on 127.0.0.1; a second run never yields a processed message again.
End to end: a loopback SMTP relay accepts a message, later bounces it with a DSN written into a
Maildir, and read_mailbox + read_report turn that into a hard bounce for the right reader."""

from __future__ import annotations

import mailbox
import re
import smtplib
import socketserver
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from syndicate.errors import ConfigError
from syndicate.feedback import Feedback
from syndicate.feedback.mailbox import MailboxError, open_mailbox, read_mailbox
from syndicate.feedback.reports import read_report

from .conftest import running_sink, serving

DATA = Path(__file__).resolve().parent / "data" / "feedback"
RETURN_PATH = "bounces@news.example.org"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- Maildir --------------------------------------------------------------------------------


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(mailbox.MaildirMessage(sample("dsn-postfix-two-recipients.eml")))  # lands in new/
    seen = mailbox.MaildirMessage(sample("arf-abuse.eml"))
    seen.set_subdir("cur")
    seen.add_flag("S")  # a message someone looked at in a mail client is still unprocessed
    box.add(seen)
    (tmp_path / "bounces" / "tmp" / "1.half-delivered").write_bytes(b"Subject: partial")
    return tmp_path / "bounces"


def test_maildir_reads_new_and_cur_and_a_second_run_reads_nothing(maildir):
    first = list(read_mailbox(maildir))
    assert [ident.split("/")[0] for ident, _ in first] == ["new", "cur"]
    assert [len(read_report(raw)) for _, raw in first] == [2, 1]
    assert list(read_mailbox(maildir)) == []
    processed = sorted(p.name for p in (maildir / ".processed" / "cur").iterdir())
    assert len(processed) == 2 and all(":2," in name for name in processed)
    assert (maildir / ".processed" / "maildirfolder").exists()
    assert mailbox.Maildir(maildir).list_folders() == ["processed"]  # a Maildir++ subfolder


def test_maildir_a_run_stopped_early_reads_the_unhandled_message_again(maildir):
    for _ident, _raw in read_mailbox(maildir):
        break  # crashed while handling the first message
    assert len(list(read_mailbox(maildir))) == 2


def test_maildir_with_explicit_marks(maildir):
    with open_mailbox(maildir) as box:
        (ident, _), _ = list(box.messages())
        box.mark_done(ident)
        with pytest.raises(ValueError):
            box.mark_done("../../etc/passwd")
    assert len(list(read_mailbox(maildir))) == 1


def test_a_folder_that_is_not_a_maildir_is_refused(tmp_path):
    with pytest.raises(MailboxError, match="not a Maildir"), open_mailbox(tmp_path):
        pass


# --- mbox -----------------------------------------------------------------------------------


def test_mbox_remembers_processed_messages_in_the_state_file(tmp_path):
    path, state = tmp_path / "bounces.mbox", tmp_path / "state" / "bounces.done"
    box = mailbox.mbox(path)
    box.add(sample("dsn-postfix-two-recipients.eml"))
    box.add(sample("unsubscribe-mailto.eml"))
    box.flush()
    assert [len(read_report(raw)) for _, raw in read_mailbox(path, state=state)] == [2, 1]
    assert list(read_mailbox(path, state=state)) == []
    box.add(sample("arf-abuse.eml"))  # the MTA appends; the file is never rewritten by us
    box.flush()
    ((_, raw),) = list(read_mailbox(path, state=state))
    assert read_report(raw)[0].kind == "complaint"
    assert len(state.read_text().split()) == 3


def test_mbox_needs_a_state_file_and_an_existing_file(tmp_path):
    with pytest.raises(ConfigError, match="state file"), open_mailbox(tmp_path / "x.mbox"):
        pass
    with (
        pytest.raises(MailboxError, match="no such mbox"),
        open_mailbox(tmp_path / "x.mbox", state=tmp_path / "s"),
    ):
        pass


def test_plain_imap_is_refused():
    with pytest.raises(ConfigError, match="only imaps://"), open_mailbox("imap://user@127.0.0.1/INBOX"):
        pass


# --- IMAP over TLS ----------------------------------------------------------------------------


class ImapServer(socketserver.ThreadingTCPServer):
    """Just enough IMAP4rev1 for imaplib's LOGIN, SELECT, UID SEARCH/FETCH/STORE and LOGOUT, over
    TLS; one user, one folder, messages by UID with their \\Seen flag."""

    daemon_threads = True

    def __init__(self, context, messages: list[bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _ImapHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.messages = {uid: raw for uid, raw in enumerate(messages, start=1)}
        self.seen: set[int] = set()
        self.commands: list[str] = []


class _ImapHandler(socketserver.StreamRequestHandler):
    server: ImapServer

    def reply(self, *lines: bytes) -> None:
        self.wfile.write(b"".join(line + b"\r\n" for line in lines))

    def handle(self) -> None:
        self.reply(b"* OK IMAP4rev1 test server ready")
        while line := self.rfile.readline():
            tag, command, *rest = line.decode().rstrip("\r\n").split(" ", 2)
            args = rest[0] if rest else ""
            command = command.upper()
            self.server.commands.append(f"{command} {args}")
            if command == "CAPABILITY":
                self.reply(b"* CAPABILITY IMAP4rev1", f"{tag} OK done".encode())
            elif command == "LOGIN":
                ok = args == 'reader-bounces "imap-pass-never-printed"'
                self.reply(
                    f"{tag} OK logged in".encode() if ok else f"{tag} NO [AUTHENTICATIONFAILED] no".encode()
                )
            elif command == "SELECT":
                self.reply(
                    f"* {len(self.server.messages)} EXISTS".encode(), f"{tag} OK [READ-WRITE] done".encode()
                )
            elif command == "UID":
                self.uid(tag, args)
            elif command == "LOGOUT":
                self.reply(b"* BYE", f"{tag} OK bye".encode())
                return
            else:
                self.reply(f"{tag} BAD unknown".encode())

    def uid(self, tag: str, args: str) -> None:
        verb, _, rest = args.partition(" ")
        if verb.upper() == "SEARCH":
            unseen = " ".join(str(uid) for uid in self.server.messages if uid not in self.server.seen)
            self.reply(f"* SEARCH {unseen}".strip().encode())
        elif verb.upper() == "FETCH":
            uid = int(rest.split()[0])
            raw = self.server.messages[uid]  # BODY.PEEK: no \Seen
            self.wfile.write(f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n")
        elif verb.upper() == "STORE":
            uid = int(rest.split()[0])
            self.server.seen.add(uid)
            self.reply(f"* {uid} FETCH (UID {uid} FLAGS (\\Seen))".encode())
        self.reply(f"{tag} OK done".encode())


@pytest.fixture
def imap_server(tls) -> Iterator[ImapServer]:
    with serving(ImapServer(tls[0], [sample("dsn-verp-forwarded.eml"), sample("arf-abuse.eml")])) as server:
        yield server


def imap_url(server: ImapServer) -> str:
    return f"imaps://reader-bounces@127.0.0.1:{server.server_address[1]}/INBOX"


def test_imap_reads_unseen_messages_and_flags_them_seen(imap_server, tls, monkeypatch):
    monkeypatch.setenv("BOUNCE_IMAP_PASSWORD", "imap-pass-never-printed")
    options = {"password_env": "BOUNCE_IMAP_PASSWORD", "ca_file": str(tls[1])}
    found = [
        read_report(raw, return_path=RETURN_PATH) for _, raw in read_mailbox(imap_url(imap_server), **options)
    ]
    assert [(f[0].kind, f[0].subscriber_id) for f in found] == [
        ("hard", "sub-7Qx2"),
        ("complaint", "sub-Kp9z"),
    ]
    assert imap_server.seen == {1, 2}
    assert any("BODY.PEEK[]" in command for command in imap_server.commands)
    assert list(read_mailbox(imap_url(imap_server), **options)) == []


def test_imap_a_wrong_password_is_a_mailbox_error_that_does_not_print_it(imap_server, tls, monkeypatch):
    monkeypatch.setenv("BOUNCE_IMAP_PASSWORD", "wrong-secret-value")
    with pytest.raises(MailboxError, match="refused") as refused:
        list(read_mailbox(imap_url(imap_server), password_env="BOUNCE_IMAP_PASSWORD", ca_file=str(tls[1])))
    assert "wrong-secret-value" not in str(refused.value)


def test_imap_needs_the_password_variable(imap_server, monkeypatch):
    monkeypatch.delenv("BOUNCE_IMAP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="BOUNCE_IMAP_PASSWORD"):
        list(read_mailbox(imap_url(imap_server), password_env="BOUNCE_IMAP_PASSWORD"))


def test_imap_an_untrusted_server_certificate_is_refused(imap_server, monkeypatch):
    monkeypatch.setenv("BOUNCE_IMAP_PASSWORD", "imap-pass-never-printed")
    with pytest.raises(MailboxError, match="cannot connect"):
        list(read_mailbox(imap_url(imap_server), password_env="BOUNCE_IMAP_PASSWORD"))
    assert imap_server.commands == []  # nothing, least of all LOGIN, went over the failed TLS


# --- end to end: SMTP relay -> DSN in a Maildir -> Feedback -----------------------------------


class BouncingRelay:
    """An aiosmtpd relay that accepts every message, then finds its recipient unknown (as a
    next hop would) and returns an RFC 3464 DSN to the envelope sender, delivered into the
    sender's Maildir on disk."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = mailbox.Maildir(maildir, create=True)

    async def handle_DATA(self, server, session, envelope):
        original = envelope.original_content
        headers = original.split(b"\r\n\r\n", 1)[0].decode("ascii")
        for rcpt in envelope.rcpt_tos:
            self.maildir.add(self.dsn(envelope.mail_from, rcpt, headers))
        return "250 2.0.0 Ok: queued"

    @staticmethod
    def dsn(sender: str, rcpt: str, headers: str) -> bytes:
        """The report as an MTA writes it: text, not built through the email package."""
        boundary = "relay.example.net/boundary-1"
        return (
            f"Return-Path: <>\r\nDelivered-To: {sender}\r\n"
            "From: MAILER-DAEMON@relay.example.net (Mail Delivery System)\r\n"
            f"To: {sender}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: {make_msgid(domain='relay.example.net')}\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n<{rcpt}>: User unknown\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; relay.example.net\r\n\r\n"
            f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\n"
            "Action: failed\r\nStatus: 5.1.1\r\n"
            f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n"
            f"--{boundary}--\r\n"
        ).encode("ascii")


def test_a_bounce_from_a_real_smtp_exchange_becomes_a_hard_bounce(tmp_path):
    relay = BouncingRelay(tmp_path / "Maildir")
    with running_sink(relay) as controller:  # takes any aiosmtpd handler, not only SmtpSink
        digest = EmailMessage()
        digest["From"] = "Example News <news@example.org>"
        digest["To"] = "nobody@example.org"
        digest["Subject"] = "This week at Example News"
        digest["Message-ID"] = message_id = make_msgid(domain="news.example.org")
        digest.set_content("Hello, this is the digest.\n")
        with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as client:
            client.send_message(digest, from_addr="bounces+sub-e2e_1@news.example.org")

    (report,) = [raw for _, raw in read_mailbox(tmp_path / "Maildir")]
    assert re.search(rb"Content-Type: multipart/report;.*report-type=", report)
    assert read_report(report, return_path=RETURN_PATH) == [
        Feedback(
            "hard",
            "nobody@example.org",
            "sub-e2e_1",
            message_id,
            "5.1.1 failed 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
            "dsn",
        )
    ]
    assert list(read_mailbox(tmp_path / "Maildir")) == []
