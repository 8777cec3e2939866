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

__all__ = ["attribute_key", "read_subscriber_file", "write_subscribers"]

EMAIL_COLUMNS = ("email", "email_address", "e_mail", "e_mail_address", "emailaddress", "mail")
NAME_COLUMNS = ("name", "full_name", "fullname", "display_name")
FIRST_NAME_COLUMNS = ("first_name", "firstname", "fname", "given_name")
LAST_NAME_COLUMNS = ("last_name", "lastname", "lname", "surname", "family_name")
STATUS_COLUMNS = ("status", "subscriber_type")  # ours, listmonk's, Mailchimp's; Buttondown's
JSON_COLUMNS = ("attributes", "metadata")  # listmonk's; Buttondown's
RENAMED = {"created_at": "signed_up_at", "creation_date": "signed_up_at"}  # a source's own date
_TRUE = {"true", "yes", "1", "t", "y"}

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
    source = str(path)
    rows: list[SubscriberRow] = []
    problems: list[RecipientProblem] = []
    first_seen: dict[str, int] = {}
    for line, row in _rows(path):
        if isinstance(row, str):
            problems.append(RecipientProblem(source, line, row))
            continue
        key = address_key(row.email)
        if key in first_seen:
            message = f"{row.email} is listed twice (first on line {first_seen[key]}); imported once"
            problems.append(RecipientProblem(source, line, message))
            continue
        first_seen[key] = line
        rows.append(row)
    return rows, problems


def write_subscribers(subscribers: Iterable[Subscriber], out: TextIO) -> int:
    """Write a CSV: `email,name,status`, a column per attribute any row has (sorted), then
    `created_at` (ISO 8601, UTC). Returns the rows written. `read_subscriber_file` reads it back."""
    every = list(subscribers)
    fixed = ("email", "name", "status", "created_at")
    keys = sorted({key for s in every for key in s.attributes if key not in fixed})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "status", *keys, "created_at"])
    for s in every:
        attributes = s.attributes
        writer.writerow(
            [s.email, s.name, s.status, *(attributes.get(key, "") for key in keys), s.created_at.isoformat()]
        )
    return len(every)


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
    return SubscriberRow(line, email, name, MappingProxyType({}), None)


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
    has_name = any(name in columns for name in NAME_COLUMNS)
    for line, cells in _cells(path, reader, skipped):
        if isinstance(cells, str):
            yield line, cells
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            yield (
                line,
                f"has {len(cells)} cells but the header has {len(columns)} (expected one cell per column)",
            )
            continue
        yield line, _row(line, dict(zip(columns, cells, strict=False)), columns[email_at], has_name)


def _row(line: int, values: dict[str, str], email_column: str, has_name: bool) -> SubscriberRow | str:
    raw = values.get(email_column, "").strip()
    if not raw:
        return f"has no email address (expected one in the {email_column} column)"
    try:
        email = check_address(raw)
    except ValueError as exc:
        return str(exc)
    attributes: dict[str, str] = {}
    name = ""
    status: Status | None = None
    first = last = ""
    for column, value in values.items():
        value = value.strip()
        if not value or column == email_column or column in EMAIL_COLUMNS:
            continue
        if column in NAME_COLUMNS:
            name = name or value
        elif column in FIRST_NAME_COLUMNS:
            first = first or value
        elif column in LAST_NAME_COLUMNS:
            last = last or value
        elif column in STATUS_COLUMNS:
            found = STATUS_WORDS.get(value.lower())
            if found is None:
                return (
                    f"{column}: {value!r} is not a status syndicate knows (expected subscribed, unconfirmed, "
                    "unsubscribed, bounced or complained, or an export's word for one: enabled, "
                    "blocklisted, cleaned, pending, ...)"
                )
            status = status or found
        elif column in JSON_COLUMNS:
            parsed = _json_object(value)
            if parsed is None:
                return (
                    f'{column}: {value[:60]!r} is not a JSON object (expected one like {{"city": "Leeds"}})'
                )
            for key, item in parsed.items():
                if attribute_key(key) and item not in (None, ""):
                    attributes.setdefault(
                        attribute_key(key), item if isinstance(item, str) else json.dumps(item)
                    )
        else:
            attributes[RENAMED.get(column, column)] = value
    if status is None:
        if values.get("email_disabled", "").strip().lower() in _TRUE:
            status = "unsubscribed"
        elif values.get("clean_time", "").strip():
            status = "bounced"
        elif values.get("unsub_time", "").strip():
            status = "unsubscribed"
    if first:
        attributes["first_name"] = first
    if last:
        attributes["last_name"] = last
    if not has_name:
        name = " ".join(part for part in (attributes.get("first_name"), attributes.get("last_name")) if part)
    return SubscriberRow(line, email, " ".join(name.split()), MappingProxyType(attributes), status)


def _json_object(text: str) -> Mapping[str, object] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
