"""Who an email goes to: one `Recipient` per address, with the fields templates may use.

Recipients come from an inline list in config ("Name <a@example.com>" or a bare address) or a
CSV file with an `email` column, an optional `name` column and any other columns as template
fields. Bad rows never stop the others: each becomes a `RecipientProblem` naming its line.
Addresses on the suppression list (unsubscribed, bounced) are dropped before anything is sent.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import Field

from .errors import DeliveryError
from .validation import Strict


@dataclass(frozen=True, slots=True)
class Recipient:
    """An address plus its name and any extra CSV columns (for personalisation). Slotted, and
    without extra columns sharing one empty mapping: a list holds many."""

    email: str
    name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    # The subscriber store's opaque id (subscribers.py): what unsubscribe links and VERP
    # addresses carry instead of the address. Empty for a reader the store does not know yet.
    id: str = ""


@dataclass(frozen=True)
class RecipientProblem:
    """One unusable row; `str()` is the line a user sees, e.g. `subscribers.csv:7: ...`."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class RecipientList:
    recipients: list[Recipient]
    problems: list[RecipientProblem]
    suppressed: int = 0


class SubscriberList(Strict):
    """`recipients: {list: L, where: {attribute: value or [values]}}`: the subscribed readers of
    a list in the subscriber store (readers.py), optionally only those whose attributes match:
    a segment."""

    name: str = Field(alias="list", min_length=1, max_length=200)
    where: dict[str, str | list[str]] = Field(default_factory=dict)

    def matches(self, attributes: Mapping[str, str]) -> bool:
        for key, wanted in self.where.items():
            value = attributes.get(key.lower(), "")
            if value not in (wanted if isinstance(wanted, list) else [wanted]):
                return False
        return True


_NO_FIELDS: Mapping[str, str] = MappingProxyType({})
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_address(text: str) -> str:
    """The address, trimmed and with a lower-case domain; ValueError says what is wrong with it."""
    address = text.strip()
    if not address:
        raise ValueError("has no email address")
    if any(c.isspace() or ord(c) < 32 for c in address):
        raise ValueError(f"{address!r} contains spaces or control characters")
    if len(address) > 254 or address.count("@") != 1:
        raise ValueError(f"{address!r} is not an email address (expected one like name@example.com)")
    local, domain = address.split("@")
    if len(local) > 64 or not _LOCAL.fullmatch(local):
        raise ValueError(f"{address!r} has an invalid part before the @")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{address!r} has an invalid domain (expected one like example.com)")
    return f"{local}@{domain.lower()}"


def ascii_address(address: str) -> str:
    """The address with an internationalised domain in its ASCII (punycode) form: what an SMTP
    envelope without SMTPUTF8 and an RFC 5322 `To:` header need. Every relay takes it; the
    readers' mail programs show it as the domain they know. (Local parts are ASCII already:
    `check_address` refuses others.)"""
    local, _, domain = address.rpartition("@")
    return address if domain.isascii() else f"{local}@{domain.encode('idna').decode('ascii')}"


def address_key(address: str) -> str:
    """How the ledger names a reader: the address with its local part case-folded and its
    domain lower-cased in its ASCII (IDNA, punycode) form, so `R1@Bücher.example` and
    `r1@xn--bcher-kva.example` are one reader. Virtually every provider treats the local part
    without regard to case. Something that is not an address comes back trimmed and folded."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return address.strip().casefold()
    with suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local.casefold()}@{domain.lower()}"


def load_recipients(
    source: list[str] | Path | None, suppression: Path | None = None, where: str = "recipients"
) -> RecipientList:
    """Valid, unique, not-suppressed recipients plus a problem per rejected row.

    `where` names an inline list in problems (e.g. `targets.newsletter.recipients`).
    """
    if source is None:
        rows: Iterable[tuple[str, int, Recipient | str]] = []
    elif isinstance(source, Path):
        rows = _csv_rows(source)
    else:
        rows = _inline_rows(source, where)
    blocked = load_suppression(suppression) if suppression else set()
    result = RecipientList([], [])
    first_seen: dict[str, int] = {}
    for origin, line, row in rows:
        if isinstance(row, str):
            result.problems.append(RecipientProblem(origin, line, row))
            continue
        folded = address_key(row.email)
        if folded in first_seen:
            message = f"{row.email} is listed twice (first on line {first_seen[folded]}); sending once"
            result.problems.append(RecipientProblem(origin, line, message))
        elif folded in blocked:
            first_seen[folded] = line
            result.suppressed += 1
        else:
            first_seen[folded] = line
            result.recipients.append(row)
    return result


def load_suppression(path: Path) -> set[str]:
    """Addresses never to mail (as `address_key` names them): a CSV with an `email` column, or
    one address a line."""
    reader = csv.reader(io.StringIO(_read(path)))
    with _readable(path, reader):
        first = next(reader, [])
        header = [cell.strip().lower() for cell in first]
        column = header.index("email") if "email" in header else 0
        rows = reader if "email" in header else itertools.chain([first], reader)
        return {address_key(row[column]) for row in rows if len(row) > column and row[column].strip()}


def _inline_rows(entries: list[str], where: str) -> Iterator[tuple[str, int, Recipient | str]]:
    for number, entry in enumerate(entries, start=1):
        name, address = parseaddr(entry) if "<" in entry else ("", entry)
        yield where, number, _recipient(address, name, {})


def _csv_rows(path: Path) -> Iterator[tuple[str, int, Recipient | str]]:
    reader = csv.DictReader(io.StringIO(_read(path)))
    with _readable(path, reader.reader):  # DictReader's own line_num lags behind a failing row
        columns = {name.strip().lower(): name for name in reader.fieldnames or [] if name}
        if "email" not in columns:
            raise DeliveryError(f"{path}: has no email column (expected a header row like email,name)")
        for row in _rows_past_bad_ones(path, reader):
            if isinstance(row, tuple):  # (line, problem): one row the csv module could not read
                yield str(path), row[0], row[1]
                continue
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            if None in row:
                yield str(path), reader.line_num, "has more cells than the header row"
                continue
            values = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
            extras = {key: value for key, value in values.items() if key not in ("email", "name")}
            yield str(path), reader.line_num, _recipient(values["email"], values.get("name", ""), extras)


def _rows_past_bad_ones(path: Path, reader: csv.DictReader) -> Iterator[dict | tuple[int, str]]:
    """Rows of `reader`, and (line, problem) for one it cannot read (a cell over the csv module's
    128 KiB limit, a NUL): that row is left out and the rest of the list still goes out."""
    while True:
        before = reader.reader.line_num
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.reader.line_num == before:  # no progress: not a row-sized problem
                raise DeliveryError(f"{path}:{before}: cannot be read as CSV ({exc})") from None
            yield reader.reader.line_num, f"cannot be read as CSV ({exc}); left out"


@contextmanager
def _readable(path: Path, reader: Any) -> Iterator[None]:
    """A csv.Error from `reader` (a csv.reader; e.g. a cell over the csv module's 128 KiB limit)
    is one line naming its row."""
    try:
        yield
    except csv.Error as exc:
        raise DeliveryError(f"{path}:{reader.line_num}: cannot be read as CSV ({exc})") from None


def _recipient(address: str, name: str, extras: dict[str, str]) -> Recipient | str:
    try:
        email = check_address(address)
    except ValueError as exc:
        return str(exc)
    return Recipient(email, " ".join(name.split()), extras or _NO_FIELDS)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DeliveryError(f"{path}: no such recipients file") from None
    except UnicodeDecodeError:
        raise DeliveryError(f"{path}: is not UTF-8 text (expected a CSV saved as UTF-8)") from None
    except OSError as exc:
        raise DeliveryError(f"{path}: cannot read ({exc.strerror or os.strerror(exc.errno or 0)})") from None
