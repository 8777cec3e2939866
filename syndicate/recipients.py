"""Who an email goes to: one `Recipient` per address, with the fields templates may use.

Recipients come from an inline list in config ("Name <a@example.com>" or a bare address) or a
CSV file with an `email` column, an optional `name` column and any other columns as template
fields. Bad rows never stop the others: each becomes a `RecipientProblem` naming its line.
Addresses on the suppression list (unsubscribed, bounced) are dropped before anything is sent.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import re
from array import array
from collections.abc import Iterator, Mapping
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

    `where` names an inline list in problems (e.g. `targets.newsletter.recipients`). The whole
    list in memory: a send streams it instead (`readers.Readers`).
    """
    blocked = load_suppression(suppression) if suppression else set()
    result = RecipientList([], [])
    for row in unique_rows(source, where, SeenAddresses()):
        if isinstance(row, RecipientProblem):
            result.problems.append(row)
        elif address_key(row.email) in blocked:
            result.suppressed += 1
        else:
            result.recipients.append(row)
    return result


def unique_rows(
    source: list[str] | Path | None, where: str, seen: SeenAddresses, *, surveyed: bool = False
) -> Iterator[Recipient | RecipientProblem]:
    """The rows of a CSV file or inline list as they are read (a file is never held whole):
    each valid address the first time it comes, and a problem for every other row (invalid,
    unreadable, or an address listed again, naming the line it came first on).

    `seen` remembers the addresses across the whole list. A second pass over the same list
    (`surveyed`: `seen` was filled by a first one) yields each address on its first line only,
    and no problems (the first pass reported them)."""
    if source is None:
        return
    rows = _csv_rows(source) if isinstance(source, Path) else _inline_rows(source, where)
    for origin, line, row in rows:
        if isinstance(row, str):
            if not surveyed:
                yield RecipientProblem(origin, line, row)
            continue
        if surveyed:
            if seen.first_line(address_key(row.email)) == line:
                yield row
            continue
        first = seen.add(address_key(row.email), line)
        if first is None:
            yield row
        else:
            message = f"{row.email} is listed twice (first on line {first}); sending once"
            yield RecipientProblem(origin, line, message)


class SeenAddresses:
    """The addresses a list has shown so far, and the line each came first on, in a compact
    open-addressing table of 8-byte hashes (blake2b of `address_key`) and 4-byte line numbers:
    12 bytes a slot, two to four slots an address (at most half are used), 25 MB for a
    million, where a set of the address strings would take several times that. Two addresses
    whose 64-bit hashes meet (about 1 in 40 million for a list of a million) would be taken as
    one: the second reported as listed twice, by its own address."""

    __slots__ = ("_hashes", "_lines", "_mask", "_used")

    def __init__(self, expected: int = 500) -> None:
        """Room for `expected` addresses without growing (growing holds the old table and the
        new one, twice its size, at once: a list whose length is known sizes it first)."""
        size = 1 << max(4, (2 * expected + 1).bit_length())
        self._hashes = array("Q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        self._mask = size - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def add(self, key: str, line: int) -> int | None:
        """Remember `key` first seen on `line`; the line it came first on if it came before."""
        hashed = _hash64(key)
        slot = self._slot(hashed)
        if self._hashes[slot]:
            return self._lines[slot]
        self._hashes[slot], self._lines[slot] = hashed, line
        self._used += 1
        if self._used * 2 > self._mask:
            self._grow()
        return None

    def first_line(self, key: str) -> int | None:
        hashed = _hash64(key)
        slot = self._slot(hashed)
        return self._lines[slot] if self._hashes[slot] else None

    def _slot(self, hashed: int) -> int:
        hashes, mask = self._hashes, self._mask
        slot = hashed & mask
        while hashes[slot] and hashes[slot] != hashed:
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        old = zip(self._hashes, self._lines, strict=True)
        size = 2 * (self._mask + 1)
        self._hashes = array("Q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        self._mask = size - 1
        for hashed, line in old:
            if hashed:
                slot = self._slot(hashed)
                self._hashes[slot], self._lines[slot] = hashed, line


def _hash64(key: str) -> int:
    """A 64-bit hash of an address key, never 0 (an empty slot)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little") or 1


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
    with _opened(path) as text:
        reader = csv.DictReader(text)
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


@contextmanager
def _opened(path: Path) -> Iterator[io.TextIOBase]:
    """The file as text read as it goes (UTF-8, a BOM skipped), with what `_read` says of a
    file that cannot be read, whenever it turns out."""
    try:
        with path.open(encoding="utf-8-sig") as text:
            yield text
    except FileNotFoundError:
        raise DeliveryError(f"{path}: no such recipients file") from None
    except UnicodeDecodeError:
        raise DeliveryError(f"{path}: is not UTF-8 text (expected a CSV saved as UTF-8)") from None
    except OSError as exc:
        raise DeliveryError(f"{path}: cannot read ({exc.strerror or os.strerror(exc.errno or 0)})") from None


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
    with _opened(path) as text:
        return text.read()
