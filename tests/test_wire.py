"""The wire path: messages dot-stuffed once per draft and sent through MAIL, RCPT and a DATA that
does not stuff again, checked byte for byte against smtplib's own `sendmail` at real servers on
127.0.0.1; one TLS context per target; a lost answer after the data still `unknown`."""

from __future__ import annotations

import smtplib
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.compose.email import PLACEHOLDERS, EmailDraft
from syndicate.compose.mime import (
    Wire,
    _stuffed_body,
    build_message,
    dot_stuff,
    fresh_message_id,
    message_bytes,
    wire_bytes,
)
from syndicate.deliver import Message, MessageKey, make_target
from syndicate.deliver.smtp import _PLAIN_ADDRESS, _Session, quote_address
from syndicate.dispatch import dispatch
from syndicate.ledger import Ledger, sqlite_url
from syndicate.recipients import Recipient

from .conftest import SmtpSink, loopback_smtp, running_sink
from .test_dkim import dkim_config, keys  # noqa: F401  # keys: the module's DKIM key fixture

NAME, GREETING, UNSUBSCRIBE = (PLACEHOLDERS[k] for k in ("name", "greeting", "unsubscribe_url"))
# Lines a relay would cut the message at, or eat a dot of, if they went out unstuffed: a line of
# its own dot, lines starting with one or two, and a run of dots long enough that quoted-printable
# wraps it onto lines that start with dots; the reader's values land on lines of their own.
TEXT = (
    f"{GREETING}\n.\n.hidden line\n..two dots\n{'.' * 200}\nname: {NAME}\n"
    f"{NAME}\n.{NAME}.\nend . of text\n{UNSUBSCRIBE}\n..."
)
HTML = f'<p>{GREETING}</p>\n.<b>{NAME}</b>\n{"." * 150}x\n<a href="{UNSUBSCRIBE}">.</a>\n.'
DRAFT = EmailDraft("weekly:2026-11-23", "weekly", f"Dots for {NAME}", "", HTML, TEXT, ())
READERS = [
    Recipient("a@example.org", "Ann"),
    Recipient("dot@example.org", ".Dot"),
    Recipient("dots@example.org", "..."),
    Recipient("empty@example.org", ""),
]
# Raw messages for the session: CRLF lines starting with dots, no CRLF at the end, bare CR and LF.
RAW = {
    "dotted lines": b"Subject: dots\r\n\r\n.first\r\n..second\r\n.\r\nlast\r\n",
    "no CRLF at the end": b"Subject: open end\r\n\r\n.one\r\nends here.",
    "ends in a dot line without CRLF": b"Subject: open end\r\n\r\nbody\r\n.",
    "bare CR": b"Subject: cr\r\n\r\nbare\r.after a CR\r\n.x\r\n",
    "bare LF": b"Subject: lf\r\n\r\nbare\n.after an LF\r\n.x\r\n",
    "starts with a dot": b".Subject-less start\r\n\r\nbody\r\n",
}


def smtp_config(site, port: int, **options):
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], **{"timeout": 5, **options})
    return site.config()


def built(config, recipient: Recipient) -> EmailMessage:
    return build_message(DRAFT, recipient, config)


def message(msg: EmailMessage, address: str) -> Message:
    """A delivery of an already built message (one Date, so its bytes can be compared)."""
    return Message(MessageKey("weekly", "newsletter", DRAFT.key, address), DRAFT.content_hash, lambda: msg)


def test_wire_bytes_are_smtplibs_stuffing_of_message_bytes(site):
    config = site.config()
    for reader in READERS:
        msg = built(config, reader)
        raw = message_bytes(msg)
        assert b"\r\n.hidden" in raw and b"\r\n.." in raw  # the draft does put dots where they matter
        wire = wire_bytes(msg)
        assert wire.data == smtplib._quote_periods(raw) and wire.size == len(raw)
        fresh_message_id(msg, "nonce")  # a resend's new header: still the same as stuffing it whole
        assert wire_bytes(msg).data == smtplib._quote_periods(message_bytes(msg))
    other = EmailMessage()  # another shape (not from build_message): stuffed whole
    other["Subject"] = "x"
    other.set_content(".a\n..b\n")
    assert wire_bytes(other).data == smtplib._quote_periods(message_bytes(other))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda b: b.replace(b"x", b".").replace(b"y", b"\n")))
def test_dot_stuff_is_smtplibs_regex(data):
    assert dot_stuff(data) == smtplib._quote_periods(data)


_TEXTS = st.text(alphabet=".\r\nab", max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_TEXTS, st.just(None)), max_size=8), st.data())
def test_a_body_stuffed_from_pieces_is_the_whole_body_stuffed(layout, data):
    """Pieces ending anywhere (not only at a line's end, as `_encoded` makes them) and values
    starting with dots: the join undoes a piece's leading doubled dot where no line starts."""
    pieces = tuple(p if p is not None else ("name", None) for p in layout)
    values = tuple(data.draw(_TEXTS) for p in pieces if not isinstance(p, str))
    filled = iter(values)
    whole = "".join(p if isinstance(p, str) else next(filled) for p in pieces).encode("ascii")
    assert _stuffed_body(pieces, values) == smtplib._quote_periods(whole)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(_PLAIN_ADDRESS, fullmatch=True), st.emails(), st.text(max_size=30)))
def test_addresses_are_quoted_as_smtplib_quotes_them(address):
    assert quote_address(address) == smtplib.quoteaddr(address)


def send_with_smtplib(port: int, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("news@example.com", ["a@example.org"], data)


def send_stuffed(port: int, data: bytes) -> None:
    with _Session("127.0.0.1", port) as smtp:
        smtp.send_stuffed("news@example.com", ["a@example.org"], Wire(dot_stuff(data), len(data)))


@pytest.mark.parametrize("case", list(RAW))
def test_the_server_keeps_what_smtplib_would_have_given_it(smtp_sink, case):
    sink, port = smtp_sink
    data = RAW[case]
    send_with_smtplib(port, data)
    send_stuffed(port, data)
    (_, theirs), (_, ours) = sink.received
    assert ours == theirs
    if b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b""):
        assert ours == data if data.endswith(b"\r\n") else ours == data + b"\r\n"


class Recorder:
    """A bare SMTP server on 127.0.0.1 that keeps each session's commands and its data exactly as
    they arrived, dots and all (aiosmtpd hands on the data un-stuffed)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sessions: list[tuple[list[bytes], bytes]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                commands: list[bytes] = []
                data = b""
                conn.sendall(b"220 recorder\r\n")
                for line in reader:
                    commands.append(line)
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        conn.sendall(b"250-recorder\r\n250 SIZE 10000000\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go on\r\n")
                        while not data.endswith(b"\r\n.\r\n"):
                            data += reader.readline()
                        conn.sendall(b"250 kept\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 ok\r\n")
                self.sessions.append((commands, data))

    def close(self) -> None:
        self.server.close()


@contextmanager
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("case", list(RAW))
def test_the_bytes_on_the_wire_are_smtplibs_byte_for_byte(case):
    data = RAW[case]
    with recorder() as server:
        send_with_smtplib(server.port, data)
        send_stuffed(server.port, data)
        server.thread.join(0.5)
    (their_commands, theirs), (our_commands, ours) = server.sessions
    assert ours == theirs and our_commands == their_commands  # MAIL FROM's SIZE= included
    assert f"SIZE={len(data)}".encode() in our_commands[1].upper()


def test_a_built_digest_arrives_byte_for_byte(site, smtp_sink):
    """Through the smtp target: the server keeps exactly `message_bytes` of each reader's message,
    every dot where it was, whatever the reader's values."""
    sink, port = smtp_sink
    config = smtp_config(site, port)
    messages = {r.email: built(config, r) for r in READERS}
    with make_target("newsletter", config).open() as connection:
        results = [connection.send(message(msg, address)) for address, msg in messages.items()]
    assert [r.outcome for r in results] == ["sent"] * len(READERS)
    assert dict(sink.received) == {address: message_bytes(msg) for address, msg in messages.items()}


def test_a_signed_digest_arrives_as_signed(site, smtp_sink, keys):  # noqa: F811
    """With DKIM the signature covers the message as the server keeps it, dotted lines included."""
    sink, port = smtp_sink
    config = dkim_config(site, port, keys)
    msg = built(config, READERS[1])
    with make_target("newsletter", config).open() as connection:
        assert connection.send(message(msg, READERS[1].email)).outcome == "sent"
    kept = sink.received[0][1]
    assert kept.endswith(message_bytes(msg)) and kept.startswith(b"DKIM-Signature:")
    assert dkim.verify(kept, dnsfunc=keys.dnsfunc())


@pytest.fixture
def counted_contexts(monkeypatch) -> list[ssl.SSLContext]:
    """Every TLS context syndicate makes while the test runs (not the test server's own)."""
    made: list[ssl.SSLContext] = []
    original = ssl.create_default_context

    def counting(*args, **kwargs):
        context = original(*args, **kwargs)
        if sys._getframe(1).f_globals["__name__"].startswith("syndicate."):
            made.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return made


def addressed(count: int) -> list[Message]:
    return [
        Message(MessageKey("weekly", "newsletter", "d", f"r{n}@example.org"), "h", EmailMessage)
        for n in range(count)
    ]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_one_tls_context_per_target_however_many_connections(site, tls, counted_contexts, security):
    context, ca_file = tls
    sink = SmtpSink()
    options = {"tls_context": context} if security == "starttls" else {"ssl_context": context}
    with running_sink(sink, **options) as controller:
        config = smtp_config(
            site, controller.port, security=security, ca_file=str(ca_file), per_connection=1, connections=2
        )
        target = make_target("newsletter", config)
        report = dispatch(addressed(6), target, None)
    ehlos = 2 if security == "starttls" else 1  # the sink counts EHLOs: again after STARTTLS
    assert report.sent == 6 and sink.connections == 6 * ehlos  # two connections, renewed per message
    assert len(counted_contexts) == 1


def test_no_tls_context_for_security_none(site, smtp_sink, counted_contexts):
    _, port = smtp_sink
    report = dispatch(
        addressed(3), make_target("newsletter", smtp_config(site, port, per_connection=1)), None
    )
    assert report.sent == 3 and counted_contexts == []


class HangUp(SmtpSink):
    """Keeps the message, then hangs up without answering the final "."."""

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append((envelope.rcpt_tos[0], envelope.original_content))
        server.transport.close()
        return "250 never heard"


def test_a_hang_up_after_the_data_is_unknown_in_the_ledger_and_not_sent_again(site, tmp_path):
    sink = HangUp()
    with running_sink(sink) as controller, Ledger(sqlite_url(tmp_path / "ledger.sqlite")) as ledger:
        target = make_target("newsletter", smtp_config(site, controller.port))
        report = dispatch(addressed(2), target, ledger)
        assert report.unknown == 1 and report.paused and report.sent == 0
        assert [d.key.recipient for d in ledger.unknowns()] == ["r0@example.org"]
        assert ledger.statuses("weekly", "newsletter", "d") == {"r0@example.org": ("unknown", "h")}
    assert [address for address, _ in sink.received] == ["r0@example.org"]  # once, not resent
