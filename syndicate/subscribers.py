"""The subscriber store: who is on which list, in what state, and what happened to them.

It lives in the ledger's database (`ledger.sqlite` in the state folder, or `database_url`, where
PostgreSQL works too) in two tables of its own, made on first open:

- `subscribers`: one row per (list, address) as `address_key` names it, with a random opaque
  `id` (16 characters of lowercase base32; older rows may have `secrets.token_urlsafe(12)`:
  letters, digits, `-` and `_`; never `.`) that unsubscribe links and VERP addresses carry
  instead of the address (`tokens.py`). A row whose status is
  `ENDED` (unsubscribed, bounced, complained) is kept, so the address is never mailed again:
  neither `add` nor an import revives it; only the reader asking again (`request`, then
  `confirm`) or an explicit `set_status` does.
- `subscriber_events`: what happened to a subscriber and when (subscribe, confirm, unsubscribe,
  bounce, soft_bounce, complaint, import), with the message it concerned when known.

Every instant comes from `clock.now()` (aware, UTC).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import clock
from .config import Config
from .errors import SyndicateError
from .ledger import LEDGER_FILE, create_tables, make_engine, sqlite_url
from .recipients import Recipient, RecipientProblem, address_key, check_address
from .state import state_path
from .subscriber_status import ENDED, STATUSES, Status

__all__ = [
    "ENDED",
    "STATUSES",
    "ImportResult",
    "Status",
    "Span",
    "Subscriber",
    "SubscriberError",
    "SubscriberEvent",
    "SubscriberRow",
    "SubscriberStore",
]

EVENT_KINDS = ("subscribe", "confirm", "unsubscribe", "bounce", "soft_bounce", "complaint", "import")
_EVENT_FOR: dict[str, str] = {
    "unconfirmed": "subscribe",
    "subscribed": "confirm",
    "unsubscribed": "unsubscribe",
    "bounced": "bounce",
    "complained": "complaint",
}
T = TypeVar("T")
CHUNK = 1000  # rows per executemany in a bulk write
_IN_LIMIT = 500  # values per IN (...): under SQLite's oldest limit of 999 variables

_metadata = MetaData()

subscribers_table = Table(
    "subscribers",
    _metadata,
    # Insertion order: the ids are random, so listing in the order rows came needs its own column.
    Column("seq", Integer, primary_key=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("list", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("address_key", String(320), nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("attributes", Text, nullable=False, default="{}"),  # a JSON object, str -> str
    Column("status", String(16), nullable=False, index=True),
    Column("source", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("soft_bounces", Integer, nullable=False, default=0),
    UniqueConstraint("list", "address_key", name="one_subscriber_per_list"),
    Index("subscribers_in_order", "list", "seq"),  # a list read in pages, in insertion order
)

events_table = Table(
    "subscriber_events",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("message_id", String(998)),
    Column("at", DateTime(timezone=True), nullable=False),
)

_s = subscribers_table.c
_UPDATE = (
    update(subscribers_table)
    .where(_s.seq == bindparam("b_seq"))
    .values(
        name=bindparam("b_name"),
        attributes=bindparam("b_attributes"),
        status=bindparam("b_status"),
        updated_at=bindparam("b_now", type_=_s.updated_at.type),
        confirmed_at=bindparam("b_confirmed_at", type_=_s.confirmed_at.type),
        ended_at=bindparam("b_ended_at", type_=_s.ended_at.type),
        reason=bindparam("b_reason"),
    )
)


class SubscriberError(SyndicateError):
    """A subscriber cannot be stored: an invalid address, an unknown status, a database that
    cannot be opened."""


@dataclass(frozen=True, slots=True)
class SubscriberRow:
    """One subscriber as a file (or a caller) gives it, before it is stored. `status` None: the
    file does not say (a new row is then `subscribed`, an existing one keeps its own)."""

    line: int
    email: str
    name: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    status: Status | None = None
    # The address is `check_address`'s output, the name trimmed and the status valid (as
    # `read_subscriber_file` makes them): `import_rows` does not check them again.
    checked: bool = field(default=False, repr=False, compare=False)


@dataclass(frozen=True)
class Span:
    """One shard of a list: the rows with `after < seq <= upto` (`upto` None: to the end)."""

    after: int
    upto: int | None = None


@dataclass(frozen=True)
class Subscriber:
    id: str
    list: str
    email: str
    name: str
    attributes: Mapping[str, str]
    status: Status
    source: str
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    reason: str | None
    soft_bounces: int

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def recipient(self) -> Recipient:
        """The reader as the composer and senders take one: address, name, attributes (with
        `first_name`/`last_name` when the store has them) and this row's id."""
        return Recipient(self.email, self.name, dict(self.attributes), id=self.id)


@dataclass(frozen=True)
class SubscriberEvent:
    id: int
    subscriber_id: str
    kind: str
    detail: str
    message_id: str | None
    at: datetime


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    problems: list[RecipientProblem]


@dataclass(slots=True)
class _Known:
    """What an import compares a row with: the stored row's changeable columns (its attributes
    as the JSON text stored, parsed only when a row brings different ones)."""

    seq: int
    id: str
    name: str
    attributes_json: str
    status: str
    confirmed_at: datetime | None
    ended_at: datetime | None
    reason: str | None


class SubscriberStore:
    """Subscribers in the ledger's database. Thread-safe (each call takes its own connection)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = make_engine(url)
            create_tables(_metadata, self.engine)
        except SQLAlchemyError as exc:
            raise SubscriberError(
                f"database_url: cannot open the subscriber store ({_reason(exc)})"
            ) from None
        except ImportError as exc:
            raise SubscriberError(
                f"database_url: cannot open the subscriber store (its driver is not installed: {exc})"
            ) from None

    @classmethod
    def from_config(cls, config: Config) -> SubscriberStore:
        """The store at `database_url`, else in the state folder's `ledger.sqlite`."""
        if config.database_url:
            return cls(config.database_url)
        return cls(sqlite_url(state_path(config, LEDGER_FILE)))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SubscriberStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def get(self, subscriber_id: str, *, any_case: bool = False) -> Subscriber | None:
        """The row of this id; with `any_case`, an id whose case a mail system changed (a VERP
        local part folded to lowercase) finds the mixed-case id of a row made before ids were
        lowercase (a scan: only for the rare bounce that misses)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(subscribers_table).where(_s.id == subscriber_id)).first()
            if row is None and any_case:
                folded = select(subscribers_table).where(func.lower(_s.id) == subscriber_id.lower())
                row = conn.execute(folded.limit(1)).first()
        return _subscriber(row) if row is not None else None

    def find(self, list_name: str, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            return self._find(conn, list_name, address_key(email))

    def subscribers(self, list_name: str, statuses: Collection[Status] | None = None) -> Iterator[Subscriber]:
        """The list's rows in the order they were added (read in pages: a long list is not held
        in memory at once)."""
        for page in self.pages(list_name, statuses):
            yield from page

    def count(
        self, list_name: str, statuses: Collection[Status] | None = None, span: Span | None = None
    ) -> int:
        """How many rows the list has (in these statuses, within `span`)."""
        query = select(func.count()).select_from(subscribers_table).where(_s.list == list_name)
        query = _within(query, statuses, span)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def boundaries(self, list_name: str, statuses: Collection[Status] | None, size: int) -> list[int]:
        """The `seq` of every `size`-th row of the list (in these statuses), in order: where a
        send's shards end, so that shard k is the keyset range (bounds[k-1], bounds[k]] and the
        last one runs on to the end. One query; only the boundaries come back (a thousand ints
        for a million readers)."""
        rows = select(_s.seq, func.row_number().over(order_by=_s.seq).label("n"))
        numbered = _within(rows.where(_s.list == list_name), statuses, None).subquery()
        query = select(numbered.c.seq).where(numbered.c.n % size == 0).order_by(numbered.c.seq)
        with self.engine.connect() as conn:
            return [int(seq) for seq in conn.execute(query).scalars()]

    def pages(
        self,
        list_name: str,
        statuses: Collection[Status] | None = None,
        size: int | None = None,
        span: Span | None = None,
    ) -> Iterator[list[Subscriber]]:
        """The list's rows in pages of `size` (default `CHUNK`), in the order they were added: a
        keyset read (`seq > last ORDER BY seq LIMIT size`, on the `subscribers_in_order` index),
        each page a query of its own, so neither the database nor this process holds more than
        a page, and a page costs the same at the end of a long list as at its start. `span`
        limits it to one shard's keyset range."""
        size = size or CHUNK
        last = span.after if span is not None else 0
        while True:
            query = select(subscribers_table).where(_s.list == list_name, _s.seq > last)
            query = _within(query, statuses, span)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(_s.seq).limit(size)).all()
            if rows:
                yield [_subscriber(row) for row in rows]
            if len(rows) < size:
                return
            last = rows[-1].seq

    def events(
        self, subscriber_id: str | None = None, kinds: Collection[str] | None = None
    ) -> list[SubscriberEvent]:
        query = select(events_table).order_by(events_table.c.id)
        if subscriber_id is not None:
            query = query.where(events_table.c.subscriber_id == subscriber_id)
        if kinds is not None:
            query = query.where(events_table.c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            SubscriberEvent(row.id, row.subscriber_id, row.kind, row.detail, row.message_id, _aware(row.at))
            for row in rows
        ]

    def lists(self) -> dict[str, dict[str, int]]:
        """list -> status -> how many rows."""
        query = select(_s.list, _s.status, func.count()).group_by(_s.list, _s.status).order_by(_s.list)
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for list_name, status, count in conn.execute(query):
                found.setdefault(list_name, {})[status] = int(count)
        return found

    # -- writing one ------------------------------------------------------------------------

    def add(
        self,
        list_name: str,
        email: str,
        *,
        name: str = "",
        attributes: Mapping[str, str] | None = None,
        status: Status = "subscribed",
        source: str = "cli",
    ) -> tuple[Subscriber, bool]:
        """(the row, whether it was created). An existing row takes a given name and attributes
        and may move on (unconfirmed to subscribed, or to an ended status); an ended row is never
        revived and comes back unchanged."""
        address = _checked(email)
        _check_status(status)
        row = SubscriberRow(0, address, " ".join(name.split()), dict(attributes or {}), status)
        for _ in range(3):  # another process may insert the same address between our read and write
            try:
                with self.engine.begin() as conn:
                    found = self._find(conn, list_name, address_key(address))
                    now = clock.now()
                    if found is None:
                        values = _new_values(list_name, row, status, source, now)
                        conn.execute(subscribers_table.insert(), values)
                        kind = "subscribe" if status not in ENDED else _EVENT_FOR[status]
                        self._event(conn, values["id"], kind, f"added ({source})", None, now)
                        made = self._find(conn, list_name, address_key(address))
                        assert made is not None
                        return made, True
                    change = _merge(self._stored(conn, found.id), row, now, source)
                    if change is not None:
                        conn.execute(_UPDATE, [change[0]])
                        if change[1]:
                            self._event(conn, found.id, change[1], f"{source}", None, now)
                        found = self._find(conn, list_name, address_key(address))
                        assert found is not None
                    return found, False
            except IntegrityError:
                continue
        raise SubscriberError(f"{address}: could not be added to {list_name} (the database kept refusing it)")

    def remove(self, list_name: str, email: str, *, reason: str = "removed") -> Subscriber | None:
        """Unsubscribe the address (the row stays, so it is never mailed again); None when the
        list does not have it. An already ended row comes back as it is."""
        found = self.find(list_name, email)
        if found is None or found.status in ENDED:
            return found
        return self.set_status(found.id, "unsubscribed", reason=reason)

    def set_status(
        self, subscriber_id: str, status: Status, *, reason: str, message_id: str | None = None
    ) -> Subscriber | None:
        """Set the status whatever it was (an explicit act: it may revive an ended row), and
        record the event. None for an unknown id."""
        _check_status(status)
        with self.engine.begin() as conn:
            found = self._get(conn, subscriber_id)
            if found is None:
                return None
            now = clock.now()
            self._set(conn, found, status, reason, now)
            self._event(conn, subscriber_id, _EVENT_FOR[status], reason, message_id, now)
            return self._get(conn, subscriber_id)

    def request(
        self,
        list_name: str,
        email: str,
        *,
        name: str = "",
        attributes: Mapping[str, str] | None = None,
        source: str = "web",
    ) -> Subscriber:
        """A subscribe form was sent: a new address becomes `unconfirmed`, and so does an
        unsubscribed one (it asked again; only `confirm` makes it subscribed). A subscribed row
        stays subscribed; a bounced or complained one stays as it is."""
        address = _checked(email)
        found = self.find(list_name, address)
        if found is None:
            made, _ = self.add(
                list_name, address, name=name, attributes=attributes, status="unconfirmed", source=source
            )
            return made
        if found.status != "unsubscribed":
            return found
        with self.engine.begin() as conn:
            now = clock.now()
            values = _update_values(self._stored(conn, found.id), now)
            values.update(b_status="unconfirmed", b_ended_at=None, b_reason="asked again")
            if name.strip():
                values["b_name"] = " ".join(name.split())
            if attributes:
                merged = {**found.attributes, **attributes}
                values["b_attributes"] = _json(merged)
            conn.execute(_UPDATE, [values])
            self._event(conn, found.id, "subscribe", f"asked again ({source})", None, now)
            again = self._get(conn, found.id)
        assert again is not None
        return again

    def confirm(self, subscriber_id: str) -> Subscriber | None:
        """`unconfirmed` -> `subscribed` (with `confirmed_at`); any other row is left as it is."""
        with self.engine.begin() as conn:
            found = self._get(conn, subscriber_id)
            if found is None or found.status != "unconfirmed":
                return found
            now = clock.now()
            self._set(conn, found, "subscribed", "confirmed", now)
            self._event(conn, subscriber_id, "confirm", "confirmed", None, now)
            return self._get(conn, subscriber_id)

    def record_bounce(
        self,
        subscriber_id: str,
        kind: Literal["hard", "soft", "complaint"],
        detail: str,
        *,
        message_id: str | None = None,
        soft_limit: int = 3,
        window_days: int = 14,
    ) -> Subscriber | None:
        """A hard bounce ends the subscription (`bounced`), a complaint too (`complained`); soft
        bounces are counted, and `soft_limit` of them within `window_days` end it as `bounced`.
        Every one is recorded as an event. None for an unknown id."""
        if kind not in ("hard", "soft", "complaint"):
            raise SubscriberError(f"bounce kind {kind!r} is not one of hard, soft, complaint")
        with self.engine.begin() as conn:
            found = self._get(conn, subscriber_id)
            if found is None:
                return None
            now = clock.now()
            if kind == "complaint":
                self._event(conn, subscriber_id, "complaint", detail, message_id, now)
                if found.status != "complained":
                    self._set(conn, found, "complained", detail, now)
            elif kind == "hard":
                self._event(conn, subscriber_id, "bounce", detail, message_id, now)
                if found.status not in ("bounced", "complained"):
                    self._set(conn, found, "bounced", detail, now)
            else:
                self._event(conn, subscriber_id, "soft_bounce", detail, message_id, now)
                since = now - timedelta(days=window_days)
                counted = conn.execute(
                    select(func.count())
                    .select_from(events_table)
                    .where(
                        events_table.c.subscriber_id == subscriber_id,
                        events_table.c.kind == "soft_bounce",
                        events_table.c.at >= since,
                    )
                ).scalar_one()
                conn.execute(
                    update(subscribers_table).where(_s.id == subscriber_id).values(soft_bounces=int(counted))
                )
                if counted >= soft_limit and found.status not in ENDED:
                    reason = f"{counted} soft bounces within {window_days} days; the last: {detail}"
                    self._set(conn, found, "bounced", reason, now)
            return self._get(conn, subscriber_id)

    # -- writing many -----------------------------------------------------------------------

    def import_rows(
        self, list_name: str, rows: Iterable[SubscriberRow], *, source: str = "import"
    ) -> ImportResult:
        """Add and update many rows in one transaction (bulk statements, `CHUNK` rows each).
        Idempotent: importing the same rows again changes nothing. A row whose address is
        already on the list updates it (a non-empty name replaces the stored one, attributes
        are merged, a status moves it on) unless it has ended: then it is left as it is."""
        try:
            return self._import_rows(list_name, rows, source)
        except IntegrityError:  # another process added one of the addresses meanwhile
            raise SubscriberError(
                f"{list_name}: another process added some of these addresses during the import, "
                "so nothing was imported; run it again (an import is safe to repeat)"
            ) from None
        except SQLAlchemyError as exc:
            raise SubscriberError(
                f"{list_name}: the import could not be written ({_reason(exc)}); nothing was imported"
            ) from None

    def _import_rows(self, list_name: str, rows: Iterable[SubscriberRow], source: str) -> ImportResult:
        """The rows are taken `CHUNK` at a time: the stored rows of a chunk's addresses are read
        with one query, its changes written before the next chunk is read, so memory holds a
        chunk and the keys and seqs met, not the whole list."""
        problems: list[RecipientProblem] = []
        added = updated = unchanged = 0
        with self.engine.begin() as conn:
            now = clock.now()
            inserts: dict[str, dict[str, Any]] = {}  # new rows not yet written
            written: set[str] = set()  # the address keys of new rows written already
            counted: dict[int, bool] = {}  # stored rows met: seq -> whether counted as updated
            for chunk in _chunks(rows, CHUNK):
                checked: list[tuple[str, SubscriberRow]] = []
                for row in chunk:
                    if not row.checked:
                        try:
                            address = check_address(row.email)
                            if row.status is not None:
                                _check_status(row.status)
                        except (ValueError, SubscriberError) as exc:
                            problems.append(RecipientProblem(list_name, row.line, str(exc)))
                            continue
                        name = " ".join(row.name.split())
                        row = SubscriberRow(row.line, address, name, row.attributes, row.status, checked=True)
                    checked.append((address_key(row.email), row))
                known = self._known_keys(conn, list_name, {key for key, _ in checked} - inserts.keys())
                updates: list[dict[str, Any]] = []
                events: list[dict[str, Any]] = []
                for key, row in checked:
                    pending = inserts.get(key)
                    if pending is not None:  # listed twice in one import: the later row merges in
                        _merge_into_insert(pending, row)
                        continue
                    stored = known.get(key)
                    if stored is None and key in written:  # a new row written already: update it
                        stored = known[key] = self._known_key(conn, list_name, key)
                    if stored is None:
                        inserts[key] = {
                            "id": new_id(),
                            "email": row.email,
                            "address_key": key,
                            "name": row.name,
                            "attributes": _json(row.attributes),
                            "status": row.status or "subscribed",
                        }
                        if len(inserts) >= CHUNK:  # written as the rows come: memory stays flat
                            _insert_new(conn, list_name, list(inserts.values()), source, now)
                            added += len(inserts)
                            written.update(inserts)
                            inserts.clear()
                        continue
                    change = _merge(stored, row, now, source)
                    new = key in written
                    if change is None:
                        if not new and stored.seq not in counted:
                            counted[stored.seq] = False
                            unchanged += 1
                        continue
                    values, kind = change
                    if not new and not counted.get(stored.seq, False):
                        unchanged -= stored.seq in counted
                        counted[stored.seq] = True
                        updated += 1
                    updates.append(values)
                    stored.name, stored.status = values["b_name"], values["b_status"]
                    stored.attributes_json = values["b_attributes"]
                    stored.confirmed_at, stored.ended_at = values["b_confirmed_at"], values["b_ended_at"]
                    stored.reason = values["b_reason"]
                    events.append(
                        _event_values(stored.id, kind or "import", f"updated ({source})", None, now)
                    )
                if updates:  # before the next chunk reads the rows again
                    conn.execute(_UPDATE, updates)
                    conn.execute(events_table.insert(), events)
            added += len(inserts)
            _insert_new(conn, list_name, list(inserts.values()), source, now)
        return ImportResult(added, updated, unchanged, problems)

    def sync(
        self, list_name: str, recipients: Iterable[Recipient], source: str = "csv"
    ) -> dict[str, Subscriber]:
        """For a recipients file or inline list: insert the addresses the list lacks as
        `subscribed` (in bulk; rows it has are left as they are) and return every row of the
        list keyed by `address_key`. Callers skip the `ENDED` ones and use `.id`."""
        every = list(recipients)
        self._insisting(list_name, lambda: self._sync(list_name, every, source))
        return {address_key(subscriber.email): subscriber for subscriber in self.subscribers(list_name)}

    def _sync(self, list_name: str, recipients: list[Recipient], source: str) -> None:
        with self.engine.begin() as conn:
            self._insert_missing(conn, list_name, recipients, self._known(conn, list_name), source)

    def _insert_missing(
        self,
        conn: Connection,
        list_name: str,
        recipients: list[Recipient],
        known: Mapping[str, object],
        source: str,
    ) -> None:
        now = clock.now()
        inserts: dict[str, dict[str, Any]] = {}
        for recipient in recipients:
            key = address_key(recipient.email)
            if key in known or key in inserts:
                continue
            try:
                address = check_address(recipient.email)
            except ValueError:
                continue
            inserts[key] = {
                "id": new_id(),
                "email": address,
                "address_key": key,
                "name": " ".join(recipient.name.split()),
                "attributes": _json(recipient.fields),
                "status": "subscribed",
            }
        _insert_new(conn, list_name, list(inserts.values()), source, now)

    def add_missing(self, list_name: str, recipients: Iterable[Recipient], source: str = "csv") -> None:
        """`sync` for one chunk of a long list: insert the addresses the list lacks as
        `subscribed`, looking up only this chunk's addresses (never the whole list)."""
        chunk = list(recipients)

        def add() -> None:
            with self.engine.begin() as conn:
                keys = {address_key(recipient.email) for recipient in chunk}
                known = self._known_keys(conn, list_name, keys)
                self._insert_missing(conn, list_name, chunk, known, source)

        self._insisting(list_name, add)

    def _insisting(self, list_name: str, write: Callable[[], None]) -> None:
        """`write`, made again when another process added one of the same addresses meanwhile
        (the unique key refused it): up to three times, then one line."""
        for attempt in range(3):
            try:
                write()
                return
            except IntegrityError:  # another process added one of them meanwhile: look again
                if attempt == 2:
                    raise SubscriberError(
                        f"{list_name}: could not add the recipients (the database kept refusing them)"
                    ) from None

    def states(self, list_name: str, keys: Iterable[str]) -> dict[str, tuple[str, Status]]:
        """address_key -> (subscriber id, status) for the given addresses of a list (those it
        has), in queries of at most 500 addresses."""
        ordered = sorted(set(keys))
        found: dict[str, tuple[str, Status]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ordered), _IN_LIMIT):
                query = select(_s.address_key, _s.id, _s.status).where(
                    _s.list == list_name, _s.address_key.in_(ordered[start : start + _IN_LIMIT])
                )
                found.update((row.address_key, (row.id, row.status)) for row in conn.execute(query))
        return found

    # -- internals --------------------------------------------------------------------------

    def _known(self, conn: Connection, list_name: str) -> dict[str, _Known]:
        query = select(*_KNOWN_COLUMNS).where(_s.list == list_name)
        return {row.address_key: _known_row(row) for row in conn.execute(query)}

    def _known_keys(self, conn: Connection, list_name: str, keys: set[str]) -> dict[str, _Known]:
        found: dict[str, _Known] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), _IN_LIMIT):
            query = select(*_KNOWN_COLUMNS).where(
                _s.list == list_name, _s.address_key.in_(ordered[start : start + _IN_LIMIT])
            )
            found.update((row.address_key, _known_row(row)) for row in conn.execute(query))
        return found

    def _known_key(self, conn: Connection, list_name: str, key: str) -> _Known:
        query = select(*_KNOWN_COLUMNS).where(_s.list == list_name, _s.address_key == key)
        return _known_row(conn.execute(query).one())

    def _stored(self, conn: Connection, subscriber_id: str) -> _Known:
        row = conn.execute(select(*_KNOWN_COLUMNS).where(_s.id == subscriber_id)).one()
        return _known_row(row)

    def _find(self, conn: Connection, list_name: str, key: str) -> Subscriber | None:
        row = conn.execute(
            select(subscribers_table).where(_s.list == list_name, _s.address_key == key)
        ).first()
        return _subscriber(row) if row is not None else None

    def _get(self, conn: Connection, subscriber_id: str) -> Subscriber | None:
        row = conn.execute(select(subscribers_table).where(_s.id == subscriber_id)).first()
        return _subscriber(row) if row is not None else None

    def _set(self, conn: Connection, found: Subscriber, status: Status, reason: str, now: datetime) -> None:
        values = _update_values(self._stored(conn, found.id), now)
        values["b_status"] = status
        values["b_reason"] = reason
        if status == "subscribed" and found.confirmed_at is None:
            values["b_confirmed_at"] = now
        if status not in ENDED:
            values["b_ended_at"] = None
        elif found.status not in ENDED or found.ended_at is None:
            values["b_ended_at"] = now
        conn.execute(_UPDATE, [values])

    def _event(
        self,
        conn: Connection,
        subscriber_id: str,
        kind: str,
        detail: str,
        message_id: str | None,
        now: datetime,
    ) -> None:
        conn.execute(events_table.insert(), [_event_values(subscriber_id, kind, detail, message_id, now)])


def _new_values(
    list_name: str, row: SubscriberRow, status: Status, source: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "list": list_name,
        "email": row.email,
        "address_key": address_key(row.email),
        "name": row.name,
        "attributes": _json(row.attributes),
        "status": status,
        "source": source,
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now if status == "subscribed" else None,
        "ended_at": now if status in ENDED else None,
        "reason": f"{status} by {source}" if status in ENDED else None,
        "soft_bounces": 0,
    }


def _merge_into_insert(pending: dict[str, Any], row: SubscriberRow) -> None:
    """A second row for an address an import is about to add: its name and attributes win, a
    status it gives replaces the first one's."""
    if row.name:
        pending["name"] = row.name
    if row.attributes:
        pending["attributes"] = _json({**json.loads(pending["attributes"]), **row.attributes})
    if row.status is not None:
        pending["status"] = row.status


def _insert_new(
    conn: Connection, list_name: str, rows: list[dict[str, Any]], source: str, now: datetime
) -> None:
    """Insert new rows (id, email, address_key, name, attributes, status) and an `import` event
    each: one statement per status, whose constant columns are in the statement, so each row
    binds only what differs (what makes 100,000 rows a matter of seconds)."""
    for status in STATUSES:
        ids = [{"subscriber_id": row["id"]} for row in rows if row["status"] == status]
        if not ids:
            continue
        insert = subscribers_table.insert().values(
            list=list_name,
            status=status,
            source=source,
            created_at=now,
            updated_at=now,
            confirmed_at=now if status == "subscribed" else None,
            ended_at=now if status in ENDED else None,
            reason=f"{status} by {source}" if status in ENDED else None,
            soft_bounces=0,
        )
        chosen = [{key: row[key] for key in _NEW_KEYS} for row in rows if row["status"] == status]
        for chunk in _chunks(chosen):
            conn.execute(insert, chunk)
        event = events_table.insert().values(
            kind="import", detail=f"added as {status} ({source})", message_id=None, at=now
        )
        for chunk in _chunks(ids):
            conn.execute(event, chunk)


_NEW_KEYS = ("id", "email", "address_key", "name", "attributes")


def _update_values(stored: _Known, now: datetime) -> dict[str, Any]:
    """The `_UPDATE` parameters that leave `stored` as it is (but for updated_at)."""
    return {
        "b_seq": stored.seq,
        "b_name": stored.name,
        "b_attributes": stored.attributes_json,
        "b_status": stored.status,
        "b_now": now,
        "b_confirmed_at": stored.confirmed_at,
        "b_ended_at": stored.ended_at,
        "b_reason": stored.reason,
    }


def _merge(
    stored: _Known, row: SubscriberRow, now: datetime, source: str
) -> tuple[dict[str, Any], str | None] | None:
    """The update `row` makes to `stored` and the event kind of its status change (None: no
    change of status), or None when it changes nothing. An ended row is never changed."""
    if stored.status in ENDED:
        return None
    name = row.name or stored.name
    attributes = stored.attributes_json
    if row.attributes:
        given = _json(row.attributes)
        if given != attributes:  # the same attributes again (a file imported twice) need no parse
            attributes = _json({**json.loads(attributes), **row.attributes})
    status = stored.status
    if row.status in ENDED or (row.status == "subscribed" and stored.status == "unconfirmed"):
        status = row.status
    if name == stored.name and attributes == stored.attributes_json and status == stored.status:
        return None
    values = _update_values(stored, now)
    values.update(b_name=name, b_attributes=attributes, b_status=status)
    kind = None
    if status != stored.status:
        kind = _EVENT_FOR[status]
        if status == "subscribed":
            values["b_confirmed_at"] = stored.confirmed_at or now
        if status in ENDED:
            values["b_ended_at"] = now
            values["b_reason"] = f"{status} by {source}"
    return values, kind


_KNOWN_COLUMNS = (
    _s.seq,
    _s.id,
    _s.address_key,
    _s.name,
    _s.attributes,
    _s.status,
    _s.confirmed_at,
    _s.ended_at,
    _s.reason,
)


def _known_row(row: Any) -> _Known:
    return _Known(
        row.seq,
        row.id,
        row.name,
        row.attributes or "{}",
        row.status,
        row.confirmed_at,
        row.ended_at,
        row.reason,
    )


def _event_values(
    subscriber_id: str, kind: str, detail: str, message_id: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "kind": kind,
        "detail": detail,
        "message_id": message_id,
        "at": now,
    }


def _within(query: Any, statuses: Collection[Status] | None, span: Span | None) -> Any:
    """`query` narrowed to rows in these statuses and within a shard's keyset range."""
    if statuses is not None:
        query = query.where(_s.status.in_(list(statuses)))
    if span is not None:
        query = query.where(_s.seq > span.after)
        if span.upto is not None:
            query = query.where(_s.seq <= span.upto)
    return query


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        list=row.list,
        email=row.email,
        name=row.name or "",
        attributes=MappingProxyType(json.loads(row.attributes or "{}")),
        status=row.status,
        source=row.source,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        confirmed_at=_aware(row.confirmed_at) if row.confirmed_at else None,
        ended_at=_aware(row.ended_at) if row.ended_at else None,
        reason=row.reason,
        soft_bounces=int(row.soft_bounces or 0),
    )


def _chunks(rows: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def new_id() -> str:
    """A random opaque subscriber id: 16 characters of lowercase base32 (80 bits), never a `.`
    (tokens split on it) and one case only, so a VERP address whose local part a mail system
    folded to lowercase still names its reader."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def _checked(email: str) -> str:
    try:
        return check_address(email)
    except ValueError as exc:
        raise SubscriberError(str(exc)) from None


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise SubscriberError(f"status {status!r} is not one of {', '.join(STATUSES)}")


def _json(attributes: Mapping[str, str]) -> str:
    return json.dumps(dict(attributes), sort_keys=True, ensure_ascii=False)


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
