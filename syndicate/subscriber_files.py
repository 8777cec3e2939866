"""Subscriber files in and out: the CSV exports of other newsletter services, and our own.

`read_subscriber_file` takes a CSV whose delimiter (`,`, `;` or tab) it guesses from the first
line, in UTF-8 with or without a BOM, with a header row or none (one address per line, an
optional name after it). Header names are matched without regard to case, spaces or
punctuation, and these exports' columns are understood:

- Mailchimp (audience export): `Email Address`, `First Name`, `Last Name`; every other column
  (merge fields, `MEMBER_RATING`, `OPTIN_TIME`, `CONFIRM_TIME`, `TAGS`, ...) is an attribute. In
  the unsubscribed and cleaned files, a `UNSUB_TIME` makes the row `unsubscribed` and a
  `CLEAN_TIME` makes it `bounced`.
- listmonk: `email`, `name`, `status` (`enabled`, `disabled`, `blocklisted`) and `attributes`,
  a JSON object whose keys become attributes.
- Substack: `email`, `name`, `active_subscription`, `expiry`, `plan`, `email_disabled` (true:
  `unsubscribed`), `created_at` (kept as the attribute `signed_up_at`), ...
- Buttondown: `email` or `email_address`, `notes`, `tags`, `metadata` (a JSON object, as
  listmonk's `attributes`) and `subscriber_type` (`unsubscribed`, `unactivated`, ...).
- Ours (`write_subscribers`): `email,name,status,<attributes>,created_at`.

Attribute names become lower snake_case (`First Name` -> `first_name`), so a template can say
`recipient.first_name`. `first_name` and `last_name` are attributes, and `name` is both joined
when the file has no name column. Empty cells are left out. A bad row (no address, an invalid
one, an unknown status, attributes that are not a JSON object, more cells than the header) is a
`RecipientProblem` naming its line; the other rows are read.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from .errors import DeliveryError
from .recipients import RecipientProblem, address_key, check_address
from .subscribers import Status, Subscriber, SubscriberRow

__all__ = ["attribute_key", "iter_subscriber_file", "read_subscriber_file", "write_subscribers"]

EMAIL_COLUMNS = ("email", "email_address", "e_mail", "e_mail_address", "emailaddress", "mail")
NAME_COLUMNS = ("name", "full_name", "fullname", "display_name")
FIRST_NAME_COLUMNS = ("first_name", "firstname", "fname", "given_name")
LAST_NAME_COLUMNS = ("last_name", "lastname", "lname", "surname", "family_name")
STATUS_COLUMNS = ("status", "subscriber_type")  # ours, listmonk's, Mailchimp's; Buttondown's
JSON_COLUMNS = ("attributes", "metadata")  # listmonk's; Buttondown's
RENAMED = {"created_at": "signed_up_at", "creation_date": "signed_up_at"}  # a source's own date
_TRUE = {"true", "yes", "1", "t", "y"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Columns that end a row when no status column says otherwise: Substack's, Mailchimp's.
ENDING_COLUMNS: tuple[tuple[str, Status], ...] = (
    ("email_disabled", "unsubscribed"),
    ("clean_time", "bounced"),
    ("unsub_time", "unsubscribed"),
)

# A source's status words (lower-cased) -> ours.
STATUS_WORDS: dict[str, Status] = {
    **{word: "subscribed" for word in ("subscribed", "enabled", "confirmed", "active", "regular", "premium")},
    **{word: "subscribed" for word in ("gifted", "trialed", "churning", "past_due", "paid", "free", "comp")},
    **{word: "unconfirmed" for word in ("unconfirmed", "pending", "unactivated")},
    **{word: "unsubscribed" for word in ("unsubscribed", "blocklisted", "blacklisted", "disabled")},
    **{word: "unsubscribed" for word in ("removed", "blocked", "spammy")},
    **{word: "bounced" for word in ("bounced", "cleaned", "undeliverable")},
    "complained": "complained",
}

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def attribute_key(header: str) -> str:
    """A header as an attribute name: lower snake_case (`First Name`, `firstName` -> `first_name`)."""
    return _NOT_WORD.sub("_", _CAMEL.sub("_", header.strip()).lower()).strip("_")


def read_subscriber_file(path: Path) -> tuple[list[SubscriberRow], list[RecipientProblem]]:
    """The file's usable rows and a problem per row left out. A file that cannot be used at all
    (missing, not UTF-8, no email column) is a DeliveryError."""
    problems: list[RecipientProblem] = []
    rows = list(iter_subscriber_file(path, problems))
    return rows, problems


def iter_subscriber_file(path: Path, problems: list[RecipientProblem]) -> Iterator[SubscriberRow]:
    """`read_subscriber_file` a row at a time (what `import_rows` takes, so a long file is never
    all in memory): the usable rows, each row left out appended to `problems` as it is met. The
    file is opened and its header read before this returns: a file that cannot be used at all
    is a DeliveryError here, not at the first row."""
    read = _rows(path)
    first = next(read, None)
    return _unique(path, itertools.chain([first] if first is not None else [], read), problems)


def _unique(
    path: Path, read: Iterator[tuple[int, SubscriberRow | str]], problems: list[RecipientProblem]
) -> Iterator[SubscriberRow]:
    source = str(path)
    first_seen: dict[str, int] = {}
    for line, row in read:
        if isinstance(row, str):
            problems.append(RecipientProblem(source, line, row))
            continue
        key = address_key(row.email)
        seen = first_seen.get(key)
        if seen is not None:
            message = f"{row.email} is listed twice (first on line {seen}); imported once"
            problems.append(RecipientProblem(source, line, message))
            continue
        first_seen[key] = line
        yield row


def write_subscribers(subscribers: Iterable[Subscriber], out: TextIO) -> int:
    """Write a CSV: `email,name,status`, a column per attribute any row has (sorted), then
    `created_at` (ISO 8601, UTC). Returns the rows written. `read_subscriber_file` reads it back."""
    # The attribute columns need a pass of their own: a collection that can be iterated again
    # (a list, `subscribers export`'s listing of the store) is read twice rather than held.
    every = subscribers if iter(subscribers) is not subscribers else list(subscribers)
    fixed = ("email", "name", "status", "created_at")
    keys = sorted({key for s in every for key in s.attributes if key not in fixed})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "status", *map(_guard, keys), "created_at"])
    count = 0
    for s in every:
        attributes = s.attributes
        values = map(_guard, (attributes.get(key, "") for key in keys))
        writer.writerow([_guard(s.email), _guard(s.name), s.status, *values, s.created_at.isoformat()])
        count += 1
    return count


def _guard(value: str) -> str:
    """A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) starts
    with `'` instead, which spreadsheets show as text (OWASP's advice against CSV injection);
    `read_subscriber_file` takes it off again."""
    return "'" + value if value[:1] in FORMULA_STARTS and value else value


def _unguard(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_STARTS and len(value) > 1 else value


def _rows(path: Path) -> Iterator[tuple[int, SubscriberRow | str]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise DeliveryError(f"{path}: no such subscribers file") from None
    except OSError as exc:
        raise DeliveryError(f"{path}: cannot read ({exc.strerror or os.strerror(exc.errno or 0)})") from None
    with handle:
        try:
            # Blank lines before the header are skipped, and counted: line numbers stay the file's.
            skipped = 0
            while True:
                position = handle.tell()
                first = handle.readline()
                if not first:
                    return
                if first.strip():
                    handle.seek(position)
                    break
                skipped += 1
            delimiter = _delimiter(first)
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader)
            columns = [attribute_key(cell) for cell in header]
            if _is_address(header[0] if header else ""):
                yield from _bare(path, reader, header, skipped)
                return
            if not any(name in columns for name in EMAIL_COLUMNS):
                raise DeliveryError(
                    f"{path}:{skipped + 1}: has no email column (expected a header row like "
                    "email,name, an export's `Email Address`, or one address per line)"
                )
            yield from _with_header(path, reader, columns, skipped)
        except UnicodeDecodeError:
            raise DeliveryError(f"{path}: is not UTF-8 text (expected a CSV saved as UTF-8)") from None


def _delimiter(line: str) -> str:
    """`,`, `;` or tab: whichever the first line has most of (outside quotes); `,` for none."""
    unquoted = re.sub(r'"[^"]*"', "", line)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _is_address(cell: str) -> bool:
    try:
        check_address(cell)
    except ValueError:
        return False
    return True


def _bare(
    path: Path, reader: Iterator[list[str]], first: list[str], skipped: int
) -> Iterator[tuple[int, SubscriberRow | str]]:
    """A file without a header: an address a line, optionally a name after it."""
    yield skipped + 1, _bare_row(skipped + 1, first)
    for line, cells in _cells(path, reader, skipped):
        if isinstance(cells, str):
            yield line, cells
        elif any(cell.strip() for cell in cells):
            yield line, _bare_row(line, cells)


def _bare_row(line: int, cells: list[str]) -> SubscriberRow | str:
    try:
        email = check_address(cells[0])
    except ValueError as exc:
        return str(exc)
    name = " ".join(cells[1].split()) if len(cells) > 1 else ""
    return SubscriberRow(line, email, name, MappingProxyType({}), None, checked=True)


def _cells(path: Path, reader: Any, skipped: int) -> Iterator[tuple[int, list[str] | str]]:
    """(line the row starts on, its cells) for each row of `reader`; (line, problem) for one the
    csv module cannot read (a NUL, a cell over its size limit), which is left out."""
    while True:
        before = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num == before:  # no progress: not a row-sized problem
                raise DeliveryError(f"{path}:{skipped + before + 1}: cannot be read as CSV ({exc})") from None
            yield skipped + before + 1, f"cannot be read as CSV ({exc}); left out"
            continue
        yield skipped + before + 1, cells


def _with_header(
    path: Path, reader: Iterator[list[str]], columns: list[str], skipped: int
) -> Iterator[tuple[int, SubscriberRow | str]]:
    email_at = next(columns.index(name) for name in EMAIL_COLUMNS if name in columns)
    layout = _Layout(columns, email_at)
    for line, cells in _cells(path, reader, skipped):
        if isinstance(cells, str):
            yield line, cells
            continue
        if not "".join(cells).strip():
            continue
        if len(cells) > len(columns):
            yield (
                line,
                f"has {len(cells)} cells but the header has {len(columns)} (expected one cell per column)",
            )
            continue
        yield line, layout.row(line, cells)


class _Layout:
    """What each column of a header is for, worked out once for the whole file."""

    def __init__(self, columns: list[str], email_at: int) -> None:
        self.email_at = email_at
        self.email_column = columns[email_at]
        self.has_name = any(name in columns for name in NAME_COLUMNS)
        self.roles: list[tuple[int, str, str]] = []  # (cell index, role, column or attribute name)
        for at, column in enumerate(columns):
            if at == email_at or column in EMAIL_COLUMNS or not column:
                continue
            if column in NAME_COLUMNS:
                role = "name"
            elif column in FIRST_NAME_COLUMNS:
                role = "first"
            elif column in LAST_NAME_COLUMNS:
                role = "last"
            elif column in STATUS_COLUMNS:
                role = "status"
            elif column in JSON_COLUMNS:
                role = "json"
            else:
                role = "attribute"
            self.roles.append((at, role, RENAMED.get(column, column) if role == "attribute" else column))
        # Columns that say a row has ended when no status column does (Substack, Mailchimp).
        # (cell index, status, whether the cell must be true rather than just not empty)
        self.flags: list[tuple[int, Status, bool]] = [
            (columns.index(column), status, column == "email_disabled")
            for column, status in ENDING_COLUMNS
            if column in columns
        ]

    def row(self, line: int, cells: list[str]) -> SubscriberRow | str:
        count = len(cells)
        raw = _unguard(cells[self.email_at].strip()) if self.email_at < count else ""
        if not raw:
            return f"has no email address (expected one in the {self.email_column} column)"
        try:
            email = check_address(raw)
        except ValueError as exc:
            return str(exc)
        attributes: dict[str, str] = {}
        name = first = last = ""
        status: Status | None = None
        for at, role, column in self.roles:
            if at >= count:
                break
            value = cells[at].strip()
            if not value:
                continue
            if value[0] == "'":
                value = _unguard(value)
            if role == "attribute":
                attributes[column] = value
            elif role == "name":
                name = name or value
            elif role == "first":
                first = first or value
            elif role == "last":
                last = last or value
            elif role == "status":
                found = STATUS_WORDS.get(value.lower())
                if found is None:
                    return (
                        f"{column}: {value!r} is not a status syndicate knows (expected subscribed, "
                        "unconfirmed, unsubscribed, bounced or complained, or an export's word for one: "
                        "enabled, blocklisted, cleaned, pending, ...)"
                    )
                status = status or found
            else:
                parsed = _json_object(value)
                if parsed is None:
                    expected = '(expected one like {"city": "Leeds"})'
                    return f"{column}: {value[:60]!r} is not a JSON object {expected}"
                for key, item in parsed.items():
                    if attribute_key(key) and item not in (None, ""):
                        attributes.setdefault(
                            attribute_key(key), item if isinstance(item, str) else json.dumps(item)
                        )
        if status is None:
            for at, ended, boolean in self.flags:
                value = cells[at].strip().lower() if at < count else ""
                if (value in _TRUE) if boolean else bool(value):
                    status = ended
                    break
        if first:
            attributes["first_name"] = first
        if last:
            attributes["last_name"] = last
        if not self.has_name:
            name = " ".join(
                part for part in (attributes.get("first_name"), attributes.get("last_name")) if part
            )
        return SubscriberRow(
            line, email, " ".join(name.split()), MappingProxyType(attributes), status, checked=True
        )


def _json_object(text: str) -> Mapping[str, object] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
