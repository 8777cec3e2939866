"""The `smtp` target: one authenticated, verified connection carries a whole batch.

The server's reply decides each message: 2xx sent, 4xx retry later, 5xx failed for that
recipient while the rest continue. smtplib sends RSET after a refused transaction, so the
next message on the same connection starts clean. A connection dropped before the message's
data went out is reopened and the message tried once more on the new one. A connection lost
after the data, before the reply (a stall past `timeout`, a hang-up), leaves the server perhaps
holding the message: it is `unknown`, as after a crash, and `schedule.unknown` decides, so it
is never sent twice by default. A transaction a second Ctrl-C cuts short is judged the same
way. The connection is also renewed every `per_connection` messages, as relays expect.

Near the wire: a message goes out as `wire_bytes` makes it, dot-stuffed with the parts that are
the same for every reader stuffed once per draft, through smtplib's own MAIL and RCPT and a DATA
that sends those bytes as they are (`_Session.send_stuffed`: `SMTP.data()` would stuff them again,
with a regex over the whole message). A DKIM-signed message is signed on the bytes
`message_bytes` makes and then stuffed whole: what the server keeps is what was signed. The TLS
context is made once per target, when its first connection needs it, and never for
`security: none`.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..dkim import DkimSettings, Signer, signer_for
from ..errors import DeliveryError
from ..recipients import SubscriberList, ascii_address
from ..stopping import StoppedAtOnce, cuttable
from ..validation import is_loopback, short
from . import HandOverFailed, MailTargetSettings, Message, Pacing, Result, Verdict, handed

if TYPE_CHECKING:
    from ..compose.mime import Wire
    from ..config import Config

_DROPPED = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError)


class SmtpDelivery:
    """A configured SMTP server (named for the config target) that opens sessions to it."""

    def __init__(self, name: str, settings: SmtpSettings, sender: str, signer: Signer | None = None) -> None:
        self.name = name
        self.settings = settings
        self.sender = ascii_address(parseaddr(sender)[1])  # the envelope sender unless a message has its own
        self.signer = signer
        self._context: ssl.SSLContext | None = None  # made by the first connection that needs it
        self._context_lock = threading.Lock()
        self.ehlo_name = settings.ehlo_name or default_ehlo_name(self.sender)
        self.pacing = Pacing(
            connections=settings.connections,
            rate=settings.rate,
            error_threshold=settings.error_threshold,
            max_attempts=settings.max_attempts,
            retry_delay=settings.retry_delay,
        )

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[SmtpConnection]:
        """A session for a batch; with a `Stop`, a second Ctrl-C may cut a transaction short."""
        connection = SmtpConnection(self, stop)
        try:
            connection.connect()
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"targets.{self.name}: the TLS certificate of {self._where()} is not trusted "
                f"({exc.verify_message}; expected one the system trusts, or targets.{self.name}.ca_file "
                "naming its CA)"
            ) from None
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise DeliveryError(
                f"targets.{self.name}: cannot connect to {self._where()} ({_reason(exc)})"
            ) from None
        try:
            yield connection
        finally:
            connection.close()

    def connect(self) -> _Session:
        """A logged-in session; TLS is verified against the system CAs or `ca_file`."""
        s = self.settings
        if s.security == "ssl":
            smtp: _Session = _SslSession(
                s.host, s.port, local_hostname=self.ehlo_name, timeout=s.timeout, context=self.tls_context()
            )
        else:
            smtp = _Session(s.host, s.port, local_hostname=self.ehlo_name, timeout=s.timeout)
        try:
            if s.security == "starttls":
                smtp.starttls(context=self.tls_context())
            if s.username:
                password = s.password.get_secret_value() if s.password else ""
                smtp.login(s.username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def tls_context(self) -> ssl.SSLContext:
        """The target's one TLS context, shared by all its connections (and their reconnections):
        loading the system's CAs costs milliseconds, and a shared context can resume sessions."""
        with self._context_lock:
            if self._context is None:
                self._context = self._new_tls_context()
            return self._context

    def _new_tls_context(self) -> ssl.SSLContext:
        s = self.settings
        if not s.verify_tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(
                f"targets.{self.name}.ca_file: cannot load {s.ca_file} ({_reason(exc)})"
            ) from None

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"


class _Session(smtplib.SMTP):
    """smtplib.SMTP sending data already dot-stuffed, and remembering whether the last thing it
    wrote was a message's data: `data_sent` is true from the final "." of the data until the
    next command (every command goes through `send`)."""

    data_sent = False

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        """The socket with Nagle's algorithm off: the data and its final "." go out as two
        writes (`send`), and the second would otherwise wait for the server's delayed ACK of
        the first (40 ms a message on Linux loopback: a tenth of the rate)."""
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]  # smtplib has it; its stubs do not
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def send(self, s: str | bytes) -> None:  # type: ignore[override]  # smtplib passes str or bytes
        self.data_sent = False
        super().send(s)

    def send_stuffed(self, from_addr: str, to_addrs: list[str], wire: Wire) -> dict[str, tuple[int, bytes]]:
        """`sendmail(from_addr, to_addrs, data)` for a message already dot-stuffed (`wire.data`):
        the same commands, replies and exceptions (SMTPSenderRefused, SMTPRecipientsRefused,
        SMTPDataError, RSET or close as it does them), with the data sent as it is."""
        self.ehlo_or_helo_if_needed()
        size = f" size={wire.size}" if self.does_esmtp and self.has_extn("size") else ""
        code, resp = self._command("mail", f"FROM:{quote_address(from_addr)}{size}")
        if code != 250:
            if code == 421:
                self.close()
            else:
                self._reset()
            raise smtplib.SMTPSenderRefused(code, resp, from_addr)
        refused: dict[str, tuple[int, bytes]] = {}
        for address in to_addrs:
            code, resp = self._command("rcpt", f"TO:{quote_address(address)}")
            if code not in (250, 251):
                refused[address] = (code, resp)
            if code == 421:
                self.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(to_addrs):
            self._reset()
            raise smtplib.SMTPRecipientsRefused(refused)
        code, resp = self._data_stuffed(wire.data)
        if code != 250:
            if code == 421:
                self.close()
            else:
                self._reset()
            raise smtplib.SMTPDataError(code, resp)
        return refused

    def _command(self, name: str, args: str) -> tuple[int, bytes]:
        """`mail()`/`rcpt()` without options but SIZE, the address quoted by `quote_address`."""
        self.putcmd(name, args)
        return self.getreply()

    def _reset(self) -> None:
        """smtplib's own `_rset`: RSET, a disconnection showing at the next command instead."""
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            self.rset()

    def _data_stuffed(self, stuffed: bytes) -> tuple[int, bytes]:
        """`SMTP.data()` without its stuffing: DATA, 354, the bytes (a CRLF added if they lack
        one), `handed()`, the final ".", the reply. As with `send`, `data_sent` is true from the
        final "." until the next command."""
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        super().send(stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n")
        handed()  # all but the final ".": until it goes, the server keeps nothing
        super().send(b".\r\n")
        self.data_sent = True
        return self.getreply()


class _SslSession(_Session, smtplib.SMTP_SSL):
    pass


class SmtpConnection:
    """One SMTP session, reopened when the server drops it or `per_connection` is reached."""

    # The dispatch may claim a message at `handed()` (one round trip on PostgreSQL): a refused
    # hand-over drops the session before the final ".", so the server keeps nothing.
    claims_at_hand_over = True

    def __init__(self, delivery: SmtpDelivery, stop: threading.Event | None = None) -> None:
        self.delivery = delivery
        self.stop = stop
        self.smtp: _Session | None = None
        self.sent_here = 0
        self.connects = 0

    def connect(self) -> None:
        self.smtp = self.delivery.connect()
        self.sent_here = 0
        self.connects += 1

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def send(self, message: Message) -> Result:
        # the email toolchain: when sending
        from ..compose.mime import Wire, dot_stuff, fresh_message_id, message_bytes, wire_bytes

        payload = message.build()
        if not isinstance(payload, EmailMessage):
            return Result(message.key, "failed", "smtp targets deliver emails, not posts")
        if message.fresh_id:  # a deliberate resend: a new copy, not a duplicate to drop
            fresh_message_id(payload, message.fresh_id)
        if self.delivery.signer is None:
            wire = wire_bytes(payload)
        else:  # once, on the very bytes that go out (retries included)
            try:
                data = self.delivery.signer.sign(message_bytes(payload))
            except DeliveryError as exc:  # this message cannot be signed: never sent unsigned
                return Result(message.key, "failed", str(exc))
            wire = Wire(dot_stuff(data), len(data))
        try:
            with cuttable(self.stop):
                return self._send(message, wire)
        except HandOverFailed:  # stopped before the final ".": this session is mid-DATA
            self._drop()
            raise
        except StoppedAtOnce as exc:  # a second signal cut the transaction short: drop the session
            return self._lost(message, exc, "not sent")

    def _send(self, message: Message, data: Wire) -> Result:
        try:
            return self._transact(message, data)
        except (OSError, smtplib.SMTPException) as exc:
            if not isinstance(exc, _DROPPED) or self._data_unanswered():
                return self._lost(message, exc, "connection failed")
        # The server hung up before the data (idle timeout, its own limit): once more on a new session.
        self._drop()
        try:
            return self._transact(message, data)
        except (OSError, smtplib.SMTPException) as exc:
            return self._lost(message, exc, "connection lost")

    def _data_unanswered(self) -> bool:
        return self.smtp is not None and self.smtp.data_sent

    def _lost(self, message: Message, exc: BaseException, what: str) -> Result:
        """The session is gone: retry later, unless the server may already hold the message."""
        unanswered = self._data_unanswered()
        self._drop()
        if unanswered:
            detail = f"no reply after the message was sent ({_reason(exc)}): the server may have it"
            return Result(message.key, "unknown", detail)
        return Result(message.key, "retry", f"{what}: {_reason(exc)}")

    def _transact(self, message: Message, data: Wire) -> Result:
        if self.smtp is None or self.sent_here >= self.delivery.settings.per_connection:
            self.close()
            self.connect()
        assert self.smtp is not None
        recipient = ascii_address(message.key.recipient)
        try:
            self.smtp.send_stuffed(message.envelope_sender or self.delivery.sender, [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (0, b"refused"))
            return self._refused(message, code, reply)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return self._refused(message, exc.smtp_code, exc.smtp_error)
        except UnicodeEncodeError:  # a non-ASCII local part needs SMTPUTF8, which is not offered
            self.smtp.rset()
            return Result(message.key, "failed", "the address is not ASCII (SMTPUTF8 is not supported)")
        self.sent_here += 1
        return Result(message.key, "sent")

    def _refused(self, message: Message, code: int, reply: bytes | str) -> Result:
        if self.smtp is not None and self.smtp.sock is None:  # 421: smtplib closed it
            self.smtp = None
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        verdict: Verdict = "retry" if 400 <= code < 500 else "failed"
        return Result(message.key, verdict, f"{code} {text}")

    def _drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.close()


# A dot-atom address (RFC 5322 atext, dots between): smtplib's `quoteaddr` (which parses it with
# email.utils.parseaddr, ~50 µs) makes it `<address>`, as `quote_address` does without parsing.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(\.{_ATEXT})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


def quote_address(address: str) -> str:
    """`smtplib.quoteaddr(address)`: `<address>` for a plain one, else smtplib's own answer."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def default_ehlo_name(envelope_sender: str) -> str:
    """The envelope sender's domain: the name whose SPF record the user publishes for the
    servers that send their mail (SPF checks the HELO name too, RFC 7208 section 2.3), and a
    fully qualified name, where a machine's own is often a container id or `localhost` (smtplib
    then says `[127.0.0.1]`), which receivers score as spam or refuse (Postfix's
    reject_non_fqdn_helo_hostname). Set `ehlo_name` to the host's FQDN when it has a proper one."""
    return envelope_sender.rpartition("@")[2] or "localhost"


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__


class SmtpSettings(MailTargetSettings):
    """`type: smtp`: a mail server (or relay) and the readers it mails, one message each."""

    type: Literal["smtp"]
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    # Every number has a range, so a value that validates cannot overflow or hang a send later.
    timeout: float = Field(default=30.0, gt=0, le=3600)
    verify_tls: bool = True
    ca_file: Path | None = None
    recipients: list[str] | Path | SubscriberList
    per_connection: int = Field(default=500, gt=0, le=1_000_000)
    rate: float | None = Field(default=None, ge=0.001, le=100_000)  # messages per second
    connections: int = Field(default=1, gt=0, le=32)
    error_threshold: int = Field(default=10, gt=0, le=100_000)
    max_attempts: int = Field(default=5, gt=0, le=100)
    retry_delay: float = Field(default=60.0, ge=0, le=3600)
    local: bool = False  # a relay on this machine or a trusted network: plain-text login allowed
    # The name this client gives in EHLO (default: the envelope sender's domain, `default_ehlo_name`).
    ehlo_name: str | None = None
    # Sign every message (dkim.py): {domain, selector, key_file or key_env}.
    dkim: DkimSettings | None = None
    what: ClassVar[str] = "an smtp target, which sends email"
    networks: ClassVar[frozenset[str] | None] = frozenset()  # email only
    mails_readers: ClassVar[bool] = True

    @field_validator("ehlo_name")
    @classmethod
    def _ehlo_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip(".")
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(
                f"{short(value)} is not a fully qualified host name (expected like mail.example.com)"
            )
        return value

    @model_validator(mode="after")
    def _no_clear_text_password(self) -> SmtpSettings:
        """`security: none` would send the login in clear across the network."""
        if self.security == "none" and self.username and not self.local and not is_loopback(self.host):
            raise ValueError(
                "security: none would send the password unencrypted to "
                f"{self.host} (expected starttls or ssl, or local: true for a relay you trust)"
            )
        return self

    def connect(self, name: str, config: Config) -> SmtpDelivery:
        signer = signer_for(name, self, config)  # a bad key: a ConfigError now, before any message
        return SmtpDelivery(name, self, config.site.return_path or config.site.sender, signer)
