"""MIME: one `EmailDraft` + one `Recipient` -> an `EmailMessage`, cheaply, once per recipient.

The draft's bodies are quoted-printable encoded once (cached per body) and split at the
per-recipient placeholders; a message is then the encoded pieces joined around that recipient's
values, escaped for their context (HTML-escaped in the HTML part, raw in the text part,
URL-quoted inside the unsubscribe URL). No full render, no re-encoding of 70 KB per recipient.

Unsubscribe links carry a signed token of the reader's random subscriber id (tokens.py), never
the address. Without `site.unsubscribe_secret` the key falls back to the site's public `base_url`
(the composer warns on every draft until a secret is set).
"""

from __future__ import annotations

import binascii
import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .. import clock
from ..config import Config
from ..errors import DeliveryError
from ..personal import FIELD, field_key, greeting, reader_fields
from ..recipients import Recipient, ascii_address
from ..templating import greeting_source
from ..tokens import make_token, signing_key
from ..validation import is_loopback
from .email import PLACEHOLDERS, EmailDraft, clean_header_text

HEADER_LINE = 78
QP_LINE = 76  # RFC 2045 6.7: encoded lines at most 76 characters
NAME_CHARS = 100
_FIELD_OF = {marker: name for name, marker in PLACEHOLDERS.items()}
_MARKER = re.compile("|".join([*(re.escape(m) for m in PLACEHOLDERS.values()), FIELD.pattern]))
_NOBODY = "nobody"  # the id in the token of a reader the subscriber store has not seen
_BAD_ADDRESS = re.compile(r"[\x00-\x20\x7f<>,;\"]")


def unsubscribe_links(recipient: Recipient, config: Config) -> tuple[str | None, str | None]:
    """(web URL, mailto URI) that unsubscribe this reader; either is None when not configured.

    Neither carries the address: the web URL ends in a signed token of the reader's subscriber
    id (tokens.py), answered by `syndicate serve` at `serve.public_url` or by the user's own
    `site.unsubscribe_url` (with `?token=`); the mailto's subject carries the same token, which
    the bounce intake reads. A reader the store does not know yet gets no working link (a dry
    run before the first real send): the token names no one.
    """
    site = config.site
    token = make_token("unsubscribe", recipient.id or _NOBODY, _key(config))
    web = None
    if config.serve is not None and not site.unsubscribe_url:
        web = f"{config.serve.public_url}unsubscribe/{token}"
    elif site.unsubscribe_url:
        parts = urlsplit(site.unsubscribe_url)
        query = parse_qsl(parts.query, keep_blank_values=True) + [("token", token)]
        # ASCII only, and no space or angle bracket: it goes into a header between < and >.
        web = quote(urlunsplit(parts._replace(query=urlencode(query))), safe="!#$%&'()*+,/:;=?@[]~")
    mailto = None
    if site.unsubscribe_mailto:
        target = site.unsubscribe_mailto.removeprefix("mailto:")
        mailto = f"mailto:{quote(target, safe='@')}?subject={quote('unsubscribe ' + token)}"
    return web, mailto


def _one_click(url: str) -> bool:
    """RFC 8058 one-click is offered for an https URL only (section 3.1), or plain http to
    loopback, which no mailbox provider reaches: the address a local test serves on."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))


def _key(config: Config) -> bytes:
    return signing_key(config)


def envelope_sender(recipient: Recipient, config: Config) -> str | None:
    """Where this reader's bounces go (SMTP MAIL FROM), when not the target's default: with
    `site.verp`, `local+<subscriber id>@domain` of `site.return_path`, so a bounce names its
    reader even when the report does not (feedback/). None: the target's (return_path or From)."""
    site = config.site
    if not (site.verp and site.return_path and recipient.id):
        return None
    local, _, domain = site.return_path.rpartition("@")
    return ascii_address(f"{local}+{recipient.id}@{domain}")


def build_message(draft: EmailDraft, recipient: Recipient, config: Config) -> EmailMessage:
    """The message for one recipient: multipart/alternative (text, then HTML), SMTP policy (CRLF)."""
    address = _checked_address(ascii_address(recipient.email.strip()))  # an IDN domain as punycode
    name = clean_header_text(recipient.name, NAME_CHARS)
    links = [link for link in unsubscribe_links(recipient, config) if link]
    fields = reader_fields(name, address, recipient.fields)
    source, where = greeting_source(config)
    fields["greeting"] = greeting(source, fields, where, config.site.language)
    fields["unsubscribe_url"] = links[0] if links else config.site.base_url
    msg = EmailMessage(policy=_SMTP)
    msg["From"] = _from_header(config.site.sender)
    msg["To"] = _address_header("To", name, address)
    subject = draft.subject
    if "__syndicate_" in subject:
        subject = clean_header_text(_fill(_pieces(subject), fields, _as_is))
    msg["Subject"] = _text_header("Subject", clean_header_text(subject))
    msg["Date"] = _Prefolded("Date", format_datetime(clock.now()))
    msg["Message-ID"] = _Prefolded("Message-ID", message_id(draft.key, draft.content_hash, address, config))
    msg["MIME-Version"] = _MIME_VERSION
    if links:
        value = ", ".join(f"<{link}>" for link in links)
        folded = "List-Unsubscribe: " + ",\n ".join(f"<{link}>" for link in links) + "\n"
        msg["List-Unsubscribe"] = _Prefolded("List-Unsubscribe", value, folded)
    if links and _one_click(links[0]):
        msg["List-Unsubscribe-Post"] = _ONE_CLICK
    channel = config.channels.get(draft.channel)
    list_id = getattr(channel, "list_id", None) or default_list_id(draft.channel, config.site.sender)
    msg["List-Id"] = _list_id(config.site.name, draft.channel, list_id)
    msg["Feedback-ID"] = _feedback_id(draft.key, draft.channel)
    text, html_body = _encoded(draft.text), _encoded(draft.html)
    boundary = "=_" + hashlib.sha256(draft.content_hash.encode() + address.encode()).hexdigest()[:24]
    msg["Content-Type"] = _Prefolded("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    msg.attach(_part(_TEXT_PLAIN, _fill_body(text, fields, _qp_value)))
    msg.attach(_part(_TEXT_HTML, _fill_body(html_body, fields, _qp_html)))
    return msg


def message_bytes(msg: EmailMessage) -> bytes:
    """Exactly `msg.as_bytes(policy=policy.SMTP)` for a message from `build_message`, ~20x faster.

    The stdlib's generator writes each 76-character line with two calls, most of a send's cost
    (~2.5 ms for a 130 KB digest); this joins the same pieces at once. Messages of another shape
    (changed since building) go through the stdlib.
    """
    parts: Any = msg.get_payload()  # a list of parts for multipart (checked below)
    boundary = msg.get_boundary()
    if not _simple(msg, parts, boundary) or boundary is None:
        return msg.as_bytes(policy=policy.SMTP)
    nl, dashes = b"\r\n", b"--" + boundary.encode("ascii")
    chunks = [_header_bytes(msg), dashes + nl]
    for number, part in enumerate(parts):
        if number:
            chunks.append(nl + dashes + nl)
        chunks += [_header_bytes(part), _crlf(part.get_payload()).encode("ascii")]
    chunks.append(nl + dashes + b"--" + nl)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Wire:
    """A message as it goes over SMTP after `DATA`: `data` dot-stuffed (RFC 5321 section 4.5.2), the
    final "." not included; `size` its length before stuffing (what `message_bytes` makes, the
    `SIZE=` of MAIL FROM)."""

    data: bytes
    size: int


def dot_stuff(data: bytes) -> bytes:
    """`data` dot-stuffed as smtplib's `SMTP.data()` does it (a "." doubled at the start of the
    data and after every LF, CR-LF or bare), by a bytes replace: ~6x faster than its regex."""
    stuffed = data.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed[:1] == b"." else stuffed


def wire_bytes(msg: EmailMessage) -> Wire:
    """`dot_stuff(message_bytes(msg))`, with the bodies' unchanging pieces stuffed once per draft.

    A part's body from `build_message` is the draft's encoded pieces around one reader's values;
    each piece is serialised and dot-stuffed once (`_stuffed_pieces`, cached per body), so a
    message costs a join of bytes and the stuffing of its few short values, not a pass over
    ~100 KB. Messages of another shape are stuffed whole."""
    parts: Any = msg.get_payload()
    boundary = msg.get_boundary()
    if not _simple(msg, parts, boundary) or boundary is None:
        data = message_bytes(msg)
        return Wire(dot_stuff(data), len(data))
    nl, dashes = b"\r\n", b"--" + boundary.encode("ascii")
    # Every chunk below starts a line: the headers end in CRLF, so does each boundary line.
    head = _header_bytes(msg)
    chunks, size = [dot_stuff(head), dashes + nl], len(head) + len(dashes) + 2
    for number, part in enumerate(parts):
        if number:
            chunks.append(nl + dashes + nl)
            size += len(dashes) + 4
        head, payload = _header_bytes(part), part.get_payload()
        chunks.append(dot_stuff(head))
        size += len(head)
        if isinstance(payload, _CrlfText) and payload.source is not None:
            body = _stuffed_body(payload.source, payload.values)
            size += len(payload)
        else:
            raw = _crlf(payload).encode("ascii")
            body = dot_stuff(raw)
            size += len(raw)
        chunks.append(body)
    chunks.append(nl + dashes + b"--" + nl)
    size += len(dashes) + 6
    return Wire(b"".join(chunks), size)


@lru_cache(maxsize=32)
def _stuffed_pieces(pieces: tuple[_Piece, ...]) -> tuple[bytes | None, ...]:
    """Each text piece of an encoded body as bytes, dot-stuffed as if it started a line (None for
    a field's place): made once per draft's body, reused for every reader."""
    return tuple(dot_stuff(piece.encode("ascii")) if isinstance(piece, str) else None for piece in pieces)


def _stuffed_body(pieces: tuple[_Piece, ...], values: tuple[str, ...]) -> bytes:
    """The body `_fill_body` made of `pieces` and a reader's `values`, dot-stuffed from the start of a
    line. A piece stuffed ahead as starting a line, that does not (the piece before it did not
    end in LF), loses that first doubled "."; `_encoded` ends every piece before a field in CRLF,
    so that does not happen with its pieces, but the join does not rely on it."""
    chunks: list[bytes] = []
    line_start = True
    value = iter(values)
    for stuffed in _stuffed_pieces(pieces):
        if stuffed is None:
            raw = next(value).encode("ascii")
            stuffed = dot_stuff(raw) if line_start else raw.replace(b"\n.", b"\n..")
        elif not line_start and stuffed[:2] == b"..":
            stuffed = stuffed[1:]
        if stuffed:
            chunks.append(stuffed)
            line_start = stuffed[-1:] == b"\n"
    return b"".join(chunks)


def _simple(msg: EmailMessage, parts: Any, boundary: str | None) -> bool:
    """A message of `build_message`'s shape: multipart, text parts with str payloads, nothing around."""
    return bool(
        isinstance(parts, list)
        and boundary
        and msg.preamble is None
        and msg.epilogue is None
        and all(isinstance(p.get_payload(), str) and p.get_content_maintype() == "text" for p in parts)
    )


def _crlf(payload: str) -> str:
    """A part's payload with CRLF line ends (one `_fill_body` made has them already)."""
    if not isinstance(payload, _CrlfText) and payload.count("\n") != payload.count("\r\n"):
        return payload.replace("\r\n", "\n").replace("\n", "\r\n")
    return payload


def _header_bytes(msg: EmailMessage) -> bytes:
    return b"".join(policy.SMTP.fold_binary(name, value) for name, value in msg.raw_items()) + b"\r\n"


class _SmtpPolicy(EmailPolicy):
    """policy.SMTP, with header_max_count remembered: the stdlib builds a new header class on
    every lookup (~30 µs), and looks one up for every header set."""

    def header_max_count(self, name: str) -> int | None:
        return _max_count(name.lower())


@lru_cache(maxsize=256)
def _max_count(name: str) -> int | None:
    return policy.SMTP.header_max_count(name)


_SMTP = _SmtpPolicy(linesep="\r\n")


class _Prefolded(str):
    """A header the email package keeps and writes as it is: it takes any value with `name` and
    `fold()` for a parsed header. Its own parser and folder cost ~0.1 ms a header (most of a
    message's cost); these are encoded and folded here instead. `str()` is the decoded value, so
    reading msg["To"] works as usual."""

    defects: tuple = ()
    name: str
    folded: str

    def __new__(cls, name: str, value: str, folded: str | None = None) -> _Prefolded:
        self = super().__new__(cls, value)
        self.name = name
        self.folded = folded if folded is not None else f"{name}: {value}\n"
        if any(c in value for c in "\r\n") or not self.folded.isascii() or "\r" in self.folded:
            raise ValueError(f"{name}: a header value must be one line of ASCII")
        return self

    def fold(self, *, policy) -> str:
        return self.folded.replace("\n", policy.linesep)


_MIME_VERSION = _Prefolded("MIME-Version", "1.0")
_ONE_CLICK = _Prefolded("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
_TEXT_PLAIN = _Prefolded("Content-Type", 'text/plain; charset="utf-8"')
_TEXT_HTML = _Prefolded("Content-Type", 'text/html; charset="utf-8"')
_QUOTED_PRINTABLE = _Prefolded("Content-Transfer-Encoding", "quoted-printable")


@lru_cache(maxsize=16)
def _from_header(sender: str) -> _Prefolded:
    return _address_header("From", *parseaddr(sender))


def _address_header(name: str, display_name: str, address: str) -> _Prefolded:
    """Name <address>: a non-ASCII name as one RFC 2047 word (names are at most 100 characters)."""
    value = formataddr((display_name, address))
    if display_name.isascii():
        return _Prefolded(name, value)
    return _Prefolded(name, value, f"{name}: {formataddr((display_name, address), charset='utf-8')}\n")


@lru_cache(maxsize=256)
def _text_header(name: str, value: str) -> _Prefolded:
    """Free text (a subject): ASCII folded before spaces, anything else as RFC 2047 words.

    The stdlib's own folder loses a space between encoded and plain words; these round-trip exactly.
    """
    if not value.isascii():
        encoded = Header(value, "utf-8", header_name=name).encode(linesep="\n")
        return _Prefolded(name, value, f"{name}: {encoded}\n")
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > HEADER_LINE and line.strip() not in ("", f"{name}:"):
            lines.append(line)
            line = ""
        line += " " + word
    return _Prefolded(name, value, "\n".join([*lines, line]) + "\n")


def _checked_address(address: str) -> str:
    address = address.strip()
    if not address or not address.isascii() or _BAD_ADDRESS.search(address) or address.count("@") != 1:
        raise DeliveryError(f"{address!r} is not a valid email address (expected name@domain)")
    return address


@lru_cache(maxsize=16)
def _sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2]


def message_id(draft_key: str, content_hash: str, address: str, config: Config) -> str:
    """Stable per (draft, recipient): a retried send keeps its Message-ID, so it can be
    deduplicated, and a bounce report quoting it finds its ledger row again (feedback)."""
    domain = _sender_domain(config.site.sender)
    seed = f"{draft_key}\0{content_hash}\0{address.lower()}".encode()
    return f"<{hashlib.sha256(seed).hexdigest()[:32]}@{domain}>"


def fresh_message_id(msg: EmailMessage, nonce: str) -> None:
    """Give a built message a new Message-ID for a deliberate resend: the first one's, hashed
    with the resend run's `nonce` (so every attempt of that run keeps one), on the same domain.
    A bounce quoting it is not matched to its ledger row by Message-ID (intake.py), only by
    its address."""
    first = str(msg["Message-ID"] or "")
    domain = first.strip("<>").rpartition("@")[2] or "localhost"
    seed = f"{first}\0resend\0{nonce}".encode()
    del msg["Message-ID"]
    msg["Message-ID"] = _Prefolded("Message-ID", f"<{hashlib.sha256(seed).hexdigest()[:32]}@{domain}>")


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@lru_cache(maxsize=64)
def _list_id(site_name: str, channel_name: str, identifier: str) -> _Prefolded:
    """RFC 2919: `"Site channel" <id>`, the id the channel's `list_id` or `<channel>.<sender's
    domain>`: a mailbox provider groups a list's messages (and its unsubscribe) by it."""
    label = clean_header_text(f"{site_name} {channel_name}", NAME_CHARS)
    return _address_header("List-Id", label, identifier)


def default_list_id(channel_name: str, sender: str) -> str:
    """`<channel>.<sender's domain>`, the channel's name made a DNS label."""
    label = _ID_UNSAFE.sub("-", channel_name.lower()).strip("-._")[:63] or "list"
    return f"{label}.{_sender_domain(sender)}"


@lru_cache(maxsize=256)
def _feedback_id(draft_key: str, channel_name: str) -> _Prefolded:
    """Gmail's `campaign:channel:sender-id` (Postmaster Tools' feedback loop reports complaints by
    these): the draft (its date or article slug) and the channel, no reader's data, ASCII only,
    no `:` inside a field."""
    campaign = draft_key.removeprefix(f"{channel_name}:")
    fields = [_ID_UNSAFE.sub("-", part).strip("-")[:64] or "-" for part in (campaign, channel_name)]
    return _Prefolded("Feedback-ID", f"{fields[0]}:{fields[1]}:{FEEDBACK_SENDER_ID}")


FEEDBACK_SENDER_ID = "syndicate"


class _CrlfText(str):
    """A body `_fill_body` made from CRLF pieces: `message_bytes` can skip looking for bare LFs in it
    (two scans of up to 100 KB, a third of its cost). A payload set any other way is checked.
    It remembers what it was made of (the draft's encoded pieces and this reader's values, as
    filled in), so `wire_bytes` sends it from pieces stuffed once per draft."""

    source: tuple[_Piece, ...] | None = None
    values: tuple[str, ...] = ()


def _part(content_type: _Prefolded, encoded: _CrlfText) -> EmailMessage:
    part = EmailMessage(policy=_SMTP)
    part["Content-Type"] = content_type
    part["Content-Transfer-Encoding"] = _QUOTED_PRINTABLE
    part.set_payload(encoded)
    return part


def _qp(text: str) -> str:
    """Quoted-printable with CRLF line ends, as sent (so no per-message pass over 100 KB to convert).

    binascii's encoder is C: ~1 ms for 70 KB, where the email package's is pure Python (~6 ms).
    """
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii").replace("\n", "\r\n")


_Piece = str | tuple[str, str | None]


@lru_cache(maxsize=32)
def _encoded(body: str) -> tuple[_Piece, ...]:
    """The body quoted-printable encoded once, split at markers: text, field, text, ..., text.

    A text piece followed by a field ends in a soft line break, and each value is encoded ending
    in one too (`_qp_value`): a value sits on lines of its own, so every line stays within RFC
    2045's 76 characters whatever a reader's values are, and nothing is re-wrapped per message.
    """
    pieces = _pieces(body.replace("\r\n", "\n"))
    last = len(pieces) - 1
    return tuple(
        (_qp(piece) if number == last else _soft_end(_qp(piece))) if isinstance(piece, str) else piece
        for number, piece in enumerate(pieces)
    )


def encoded_size(body: str) -> int:
    """Bytes of `body` as a part of a message: quoted-printable with CRLF line ends, without what
    its markers become (each reader's values: the caller's margin). What Gmail's clip counts."""
    return sum(len(piece) if isinstance(piece, str) else 0 for piece in _encoded(body))


def _soft_end(encoded: str) -> str:
    """QP text made to end in a soft line break ("=" CRLF) with its last line, "=" included,
    within 76 characters, never cutting an =XX escape. Text ending in a line break is left as
    it is; so is empty text."""
    if not encoded or encoded.endswith("\r\n"):
        return encoded
    head, newline, line = encoded.rpartition("\r\n")
    if len(line) > QP_LINE - 1:
        cut = QP_LINE - 3
        while "=" in line[cut - 2 : cut]:  # the cut would fall inside an =XX escape
            cut -= 1
        line = f"{line[:cut]}=\r\n{line[cut:]}"
    return f"{head}{newline}{line}=\r\n"


@lru_cache(maxsize=64)
def _pieces(text: str) -> tuple[_Piece, ...]:
    """`text` split at markers: its text, and (field, fallback) for each marker."""
    pieces: list[_Piece] = []
    start = 0
    for match in _MARKER.finditer(text):
        pieces.append(text[start : match.start()])
        old = _FIELD_OF.get(match.group(0))
        pieces.append((old, None) if old is not None else field_key(match))
        start = match.end()
    pieces.append(text[start:])
    return tuple(pieces)


def _fill(pieces: tuple[_Piece, ...], fields: dict[str, str], escape: Callable[[str], str]) -> str:
    """The pieces joined with this reader's values (a missing or empty field: its fallback)."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        else:
            key, fallback = piece
            out.append(escape(fields.get(key) or fallback or ""))
    return "".join(out)


def _fill_body(pieces: tuple[_Piece, ...], fields: dict[str, str], escape: Callable[[str], str]) -> _CrlfText:
    """`_fill` for an encoded body, remembering its pieces and values (`_CrlfText`)."""
    values = tuple(escape(fields.get(p[0]) or p[1] or "") for p in pieces if not isinstance(p, str))
    filled = iter(values)
    body = _CrlfText("".join(p if isinstance(p, str) else next(filled) for p in pieces))
    body.source, body.values = pieces, values
    return body


def _as_is(text: str) -> str:
    return text


def _qp_value(text: str) -> str:
    """One reader's value in the text part: on lines of its own (see `_encoded`)."""
    return _soft_end(_qp(text))


def _qp_html(text: str) -> str:
    """One reader's value in the HTML part: escaped, on lines of its own."""
    return _soft_end(_qp(html.escape(text)))
