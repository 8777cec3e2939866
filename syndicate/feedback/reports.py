"""Reading mail that comes back: delivery status notifications (RFC 3464), abuse feedback
reports (ARF, RFC 5965) and unsubscribe requests mailed to the list's mailto address.

Only machine-readable reports are read. A DSN is a multipart/report whose message/delivery-status
part holds one block of per-message fields and then one block per recipient (RFC 3464 §2.2,
§2.3); an ARF report is a multipart/report whose message/feedback-report part holds the
Feedback-Type and Original-Rcpt-To fields (RFC 5965 §3). A free-text "Mail Delivery System"
bounce without one of those parts yields nothing: guessing an address and a verdict from prose
would unsubscribe readers on the strength of an auto-reply.

Reading never raises on malformed mail: the parser is the stdlib's forgiving compat32 one, and
what cannot be read yields no record (or the records read before it).
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from .. import clock
from ..tokens import BadToken, read_token
from . import Feedback, Kind
from ._text import address as _address
from ._text import message_id as _message_id
from ._text import one_line

__all__ = ["read_report", "verp_id"]

# What a subscriber id may look like in a VERP local part or a token: the store's ids are
# URL-safe, and anything else in that place is not one of ours.
_PERMANENT = re.compile(r"5\.\d{1,3}\.\d{1,3}")  # RFC 3463 class 5: permanent failure
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UNSUBSCRIBE = re.compile(r"\s*unsubscribe\s+([A-Za-z0-9_.-]{1,512})\s*", re.IGNORECASE)
# ARF feedback types that are a reader saying "this is unwanted"; not-spam and auth-failure
# (RFC 6591) are not a reader's complaint about the list.
_COMPLAINTS = {"abuse", "fraud", "virus", "other"}
# Headers of a report that may hold the envelope address it was sent to (a VERP address).
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "To")


def verp_id(address: str | None, return_path: str | None) -> str | None:
    """The `<id>` of `local+<id>@domain` when the configured return path is `local@domain`;
    None for any other address. Local part and domain compare case-insensitively, as the
    receiving side of a bounce may have folded them."""
    if not address or not return_path:
        return None
    _, mailbox = parseaddr(address)
    _, expected = parseaddr(return_path)
    local, _, domain = mailbox.rpartition("@")
    base, _, base_domain = expected.rpartition("@")
    if not local or not base or domain.lower() != base_domain.lower():
        return None
    prefix = base + "+"
    if not local.lower().startswith(prefix.lower()):
        return None
    ident = local[len(prefix) :]
    return ident if _ID.fullmatch(ident) else None


def read_report(
    raw: bytes, *, return_path: str | None = None, unsubscribe_key: bytes | None = None
) -> list[Feedback]:
    """The feedback one received message carries: one record per failed or delayed recipient of a
    DSN, one per reported recipient of an ARF complaint, one for an unsubscribe request, or none.

    `return_path` (site.return_path) lets VERP addresses name the subscriber. With
    `unsubscribe_key` (tokens.signing_key) an unsubscribe request's token is checked and its
    subscriber id filled in; a request whose token does not verify yields nothing. Without it
    the token is passed on unchecked in `Feedback.token` for the store to verify.
    """
    try:
        message = message_from_bytes(raw, policy=compat32)
        payload = message.get_payload() if message.is_multipart() else []
        parts = [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []
        types = {part.get_content_type(): part for part in parts}
        if "message/delivery-status" in types:
            return _dsn(message, types["message/delivery-status"], parts, return_path)
        if "message/feedback-report" in types:
            return _arf(types["message/feedback-report"], parts, return_path)
        if message.get_content_type() == "multipart/report":
            return []
        return _unsubscribe(message, unsubscribe_key)
    except (MessageError, ValueError, LookupError, UnicodeError):
        return []


def _dsn(message: Message, status: Message, parts: list[Message], return_path: str | None) -> list[Feedback]:
    """RFC 3464: the per-recipient blocks after the per-message one. The DSN goes to the envelope
    sender, so with VERP its To (or Delivered-To) names the subscriber; a VERP envelope has one
    recipient, so every block (an alias may expand to several) is that subscriber's."""
    blocks = [block for block in status.get_payload() if isinstance(block, Message)]
    recipients = [block for block in blocks if block.get("Final-Recipient") or block.get("Action")]
    original = _original_headers(parts)
    message_id = _message_id(original.get("Message-ID")) if original is not None else None
    candidates = [_text(message, name) for name in _ENVELOPE_HEADERS]
    if original is not None:
        candidates.append(_text(original, "Return-Path"))
    subscriber = _first_verp(candidates, return_path)
    found = []
    for block in recipients:
        kind, status_code = _dsn_verdict(block)
        if kind is None:
            continue
        # The address we sent to is Original-Recipient; Final-Recipient may be where an alias
        # or a forward led, which the store does not know.
        reader = _address(_text(block, "Original-Recipient")) or _address(_text(block, "Final-Recipient"))
        diagnostic = _text(block, "Diagnostic-Code")
        diagnostic = diagnostic.split(";", 1)[1] if ";" in diagnostic else diagnostic
        detail = one_line(status_code, _text(block, "Action").lower(), diagnostic)
        found.append(Feedback(kind, reader, subscriber, message_id, detail, "dsn"))
    return found


def _dsn_verdict(block: Message) -> tuple[Kind | None, str]:
    """(kind, status code) for one recipient block. `failed` with a 5.x.x status is permanent;
    a 4.x.x status, a missing or malformed one, or `delayed` is not (a reader is never dropped on a report
    that does not say the failure is permanent); delivered, relayed and expanded are not
    failures at all."""
    action = (_text(block, "Action").split() or [""])[0].lower()
    status_code = (_text(block, "Status").split() or [""])[0]
    if action == "failed":
        return ("hard" if _PERMANENT.fullmatch(status_code) else "soft"), status_code
    if action == "delayed":
        return "soft", status_code
    return None, status_code


def _arf(report: Message, parts: list[Message], return_path: str | None) -> list[Feedback]:
    """RFC 5965: Feedback-Type, Original-Rcpt-To (any number, often redacted away), and the
    original message or its headers as the third part. Without Original-Rcpt-To the original's
    To is the reader's address: we wrote it, one reader per message."""
    fields = report.get_payload(0) if report.is_multipart() else None
    if not isinstance(fields, Message):
        return []
    feedback_type = (_text(fields, "Feedback-Type").split() or [""])[0].lower()
    if feedback_type not in _COMPLAINTS:
        return []
    original = _original_headers(parts)
    message_id = _message_id(original.get("Message-ID")) if original is not None else None
    readers = [_address(value) for value in fields.get_all("Original-Rcpt-To") or []]
    if not any(readers) and original is not None:
        readers = [_address(mailbox) for _, mailbox in getaddresses([_text(original, "To")])]
    readers = [reader for reader in readers if reader] or [None]
    candidates = [_text(fields, "Original-Mail-From")]
    if original is not None:
        candidates.append(_text(original, "Return-Path"))
    subscriber = _first_verp(candidates, return_path)
    detail = one_line("feedback-type", feedback_type, _text(fields, "User-Agent"))
    return [Feedback("complaint", reader, subscriber, message_id, detail, "arf") for reader in readers]


def _unsubscribe(message: Message, key: bytes | None) -> list[Feedback]:
    """A mail to the mailto: of List-Unsubscribe, whose subject the composer set to
    `unsubscribe <token>`. From is only what the sender claims; the token is what counts."""
    found = _UNSUBSCRIBE.fullmatch(_decoded(_text(message, "Subject")))
    if not found:
        return []
    token = found.group(1)
    subscriber = None
    if key is not None:
        try:
            subscriber = read_token("unsubscribe", token, key, clock.now())
        except BadToken:
            return []
    _, sender = parseaddr(_text(message, "From"))
    detail = "unsubscribe request by mail"
    return [Feedback("unsubscribe", sender or None, subscriber, None, detail, "mailto", token)]


def _original_headers(parts: list[Message]) -> Message | None:
    """The returned message's headers: a text/rfc822-headers part (parsed here) or a
    message/rfc822 part (parsed by the parser already). None when the report returns neither."""
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload(0) if part.is_multipart() else None
            if isinstance(inner, Message):
                return inner
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                return HeaderParser(policy=compat32).parsestr(text.decode("utf-8", "replace"))
    return None


def _first_verp(candidates: list[str], return_path: str | None) -> str | None:
    for value in candidates:
        for _, mailbox in getaddresses([value]):
            ident = verp_id(mailbox, return_path)
            if ident:
                return ident
    return None


def _text(message: Message, name: str) -> str:
    """A header as plain text (compat32 gives a Header object for raw 8-bit values)."""
    value = message.get(name)
    return "" if value is None else str(value)


def _decoded(value: str) -> str:
    """RFC 2047 encoded-words decoded; the raw text when they are malformed."""
    try:
        return str(make_header(decode_header(value)))
    except (MessageError, ValueError, LookupError, UnicodeError):
        return value
