"""The ledger: one row per message, written before and after it goes out, so nothing is sent twice.

A row is keyed by (channel, target, draft key, recipient). It is committed `in_flight` before
the message is handed to a server and `sent` right after the server accepts it; a crash in
between leaves `in_flight`, which the next run reports as `unknown` and handles by policy.
Going `in_flight` is a claim that two processes cannot both win (`mark_in_flight`): an update
that matches the row only in a status the run may send, or the insert of a new row, which the
unique key refuses to a second process; the loser is told (False) and does not send.
SQLite (the default, a file in the state folder) runs in WAL mode with synchronous=NORMAL:
two commits per message stay well under the time an SMTP transaction takes.

A message costs two writes: the claim and the hand-over mark (`mark_handed`, before the final
"."). Its outcome, when `sent` or `failed`, is held in memory and goes with the next write: the
next message's claim (on PostgreSQL in the same statement, each write one statement in
autocommit: one round trip, no BEGIN or COMMIT; on SQLite in the same transaction), or the
dispatch's `flush` at its end, however it ends. Meanwhile another process reads that row as in
flight and handed over (a lag of one message per connection), and a crash leaves it so, which
`recover` makes `unknown`: doubt about a message the server may have, never a second copy. The
hand-over mark cannot go with anything: it must be durable between the claim (before the data)
and the final ".", and nothing else is written then. `retry` and `unknown` are written at once.

Old drafts' rows can be pruned (`prune`): a finished draft whose every message is settled keeps
its counts on its `drafts` row (`pruned_sent`, `pruned_failed`), which the planner and `status`
add to what the rows say, and its readers are not sent it again.

Beside the messages, one row per draft and target says how far its run got: `started` (a run
began and has not finished its list), `finished` (every message has its outcome) or `skipped`
(the daemon's catch-up policy passed it over, with the reason). The daemon reads it to resume
an interrupted run and not to re-examine what was settled; `send --due` ignores skips, which is
how a user backfills. A run also records how many messages it planned and which articles the
draft holds, and, when it stops with messages left, why: messages not reached have no row of
their own, so `status` counts them as planned minus rows.

`Ledger.reader()` opens an existing ledger read-only (a dry run, `status`, `queue`): it never
creates the file or writes a row, and reads a ledger made by an older version as it is.

A third table, `articles`, remembers each article the ledger has seen: the stem of its
per-article draft keys (`channel:stem`, the slug it was first seen under), its identity (its
`id`, explicit URL or slug), its file and content hash, so a renamed file keeps its keys
(`identity.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    cast,
    column,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    make_url,
    null,
    or_,
    pool,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

from . import clock
from .config import Config
from .errors import DeliveryError
from .keys import DraftId, MessageKey
from .recipients import address_key
from .state import folder_id, private_dir, private_file, state_path

Status = Literal["pending", "in_flight", "sent", "failed", "retry", "unknown"]
DraftState = Literal["started", "finished", "skipped"]
UNSETTLED = ("retry", "unknown", "in_flight")  # statuses of a message that may still go out
EVERY_STATUS: tuple[Status, ...] = ("pending", "in_flight", "sent", "failed", "retry", "unknown")
CLAIMABLE: tuple[Status, ...] = (
    "pending",
    "retry",
)  # what a run claims (the policy may add unknown)  # statuses of a message that may still go out
LEDGER_FILE = "ledger.sqlite"
_STOPPED_BEFORE = "a run stopped before handing it over"
NO_FOLDER = "-"  # the claimant's folder of a ledger opened without a state folder (tests, tools)
_HOST = socket.gethostname().replace(" ", "_") or "localhost"

_metadata = MetaData()


def _draft_columns() -> list[Column]:
    """A row id and the name of one draft on one target: how both tables begin."""
    return [
        Column("id", Integer, primary_key=True),
        Column("channel", String(200), nullable=False),
        Column("target", String(200), nullable=False),
        Column("draft_key", String(500), nullable=False),
    ]


deliveries = Table(
    "deliveries",
    _metadata,
    *_draft_columns(),
    Column("recipient", String(320), nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
    Column("sent_at", DateTime(timezone=True)),
    # When this attempt's data was all with the server (SMTP: before the final "."; HTTP: the
    # body written); cleared with the outcome. A crash before it leaves nothing in doubt.
    Column("handed_at", DateTime(timezone=True)),
    # Who claimed the row's current attempt: "<state folder id> <host> <pid>" (`Ledger.claimant`),
    # so that `recover()` leaves alone a row another live process is sending right now.
    Column("claimed_by", String(300)),
    # What came back after the server took it: "bounced: 550 5.1.1 ..." or "complained: abuse"
    # (feedback/). The status stays `sent`: the message did go out, once.
    Column("feedback", String(300)),
    UniqueConstraint("channel", "target", "draft_key", "recipient", name="one_row_per_message"),
    # What the planner and `status` ask of a target: which drafts have a message sent
    # (`sent_draft_keys`) and how many rows are in each status (`counts`, `message_counts`),
    # answered from this index alone (a range, not a pass over every row of the ledger).
    Index("deliveries_by_status", "channel", "target", "status", "draft_key"),
)
# Nullable columns a ledger made before them gets on its next read-write open (ALTER TABLE).
ADDED_DELIVERY_COLUMNS = ("handed_at", "claimed_by", "feedback")
FEEDBACK_CHARS = 300

# One row per fact about the ledger itself: its `ledger_id`, which the state folder's marker
# remembers so that a deleted, emptied or swapped ledger is noticed (see continuity.py).
meta = Table(
    "meta",
    _metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

drafts = Table(
    "drafts",
    _metadata,
    *_draft_columns(),
    Column("state", String(16), nullable=False),
    Column("detail", Text),  # a skip's reason, or why a started run stopped with messages left
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added after the table first shipped (see ADDED_DRAFT_COLUMNS): the messages the last run
    # planned, and the draft's article slugs as a JSON list.
    Column("planned", Integer),
    Column("articles", Text),
    # The summary of a pruned draft (`Ledger.prune`): its messages sent and failed when its rows
    # were deleted. NULL: never pruned. A pruned draft still counts as sent (planner, status,
    # continuity) and, its rows gone, none of its readers is sent it again (`statuses_of`).
    Column("pruned_sent", Integer),
    Column("pruned_failed", Integer),
    UniqueConstraint("channel", "target", "draft_key", name="one_row_per_draft"),
)
# Nullable columns a ledger made before them gets on its next read-write open (ALTER TABLE).
ADDED_DRAFT_COLUMNS = ("planned", "articles", "pruned_sent", "pruned_failed")
# The statuses a pruned draft's summary counts: only a draft whose every message is one of them
# is pruned (nothing of it may still go out).
PRUNED_STATUSES: tuple[Status, ...] = ("sent", "failed")
PRUNED: Status = "sent"  # what `statuses_of` answers for a pruned draft's reader without a row

# What a draft was made of when its first run started (`send.draft_for`): the payload as first
# composed (JSON), so a run resumed later sends exactly that, whatever was edited since.
draft_bodies = Table(
    "draft_bodies",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(200), nullable=False),
    Column("draft_key", String(500), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "draft_key", name="one_body_per_draft"),
)

articles = Table(
    "articles",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("stem", String(500), nullable=False),
    Column("identity", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("stem", name="one_row_per_stem"),
)

_c = deliveries.c
# What a Delivery shows: every column a ledger of any version has (a read-only open reads an
# older ledger as it is, without the columns added since).
_SHOWN = [column for column in deliveries.c if column.name not in ADDED_DELIVERY_COLUMNS]
_INSERT = deliveries.insert().values(status="in_flight", attempts=1, claimed_by=bindparam("claimant"))
# A claim is a compare-and-set: the row goes `in_flight` only from a status this run may send
# (`claimable`); another process that claimed it first leaves the statement matching no row.
_START = (
    update(deliveries)
    .where(_c.id == bindparam("row_id"), _c.status.in_(bindparam("claimable", expanding=True)))
    .values(
        status="in_flight",
        content_hash=bindparam("new_hash"),
        claimed_by=bindparam("claimant"),
        attempts=_c.attempts + 1,
        updated_at=bindparam("now", type_=_c.updated_at.type),
    )
)
_FINISH = (
    update(deliveries)
    .where(_c.id == bindparam("row_id"))
    .values(
        status=bindparam("new_status"),
        updated_at=bindparam("now", type_=_c.updated_at.type),
        last_error=bindparam("error"),
        sent_at=func.coalesce(bindparam("sent", type_=_c.sent_at.type), _c.sent_at),
        handed_at=null(),
    )
)
# A settled outcome (`HELD`) waits in memory for the ledger's next write and goes with it: on
# PostgreSQL in the same statement as the next claim (`_claim_at_once`), elsewhere in the same
# transaction. Held, the row is `in_flight` with `handed_at` set, which a crash turns `unknown`
# (`recover`): doubt only about a message whose data reached the server, never a second copy.
HELD: tuple[Status, ...] = ("sent", "failed")


def _array(name: str, kind) -> Any:
    return cast(bindparam(name), ARRAY(kind))  # typed, so an empty list is an empty array


# The held outcomes as a table (PostgreSQL), one array per column: one statement shape, however
# many are held, so SQLAlchemy compiles it once.
_held_rows = (
    func.unnest(
        _array("held_ids", Integer),
        _array("held_statuses", String(16)),
        _array("held_errors", Text),
        _array("held_ats", DateTime(timezone=True)),
    )
    .table_valued(
        column("row_id", Integer),
        column("new_status", String(16)),
        column("error", Text),
        column("at", DateTime(timezone=True)),
    )
    .render_derived(name="held")
)
_SETTLE = (
    update(deliveries)
    .where(_c.id == _held_rows.c.row_id)
    .values(
        status=_held_rows.c.new_status,
        updated_at=_held_rows.c.at,
        last_error=_held_rows.c.error,
        sent_at=case(
            (_held_rows.c.new_status == literal_column("'sent'"), _held_rows.c.at), else_=_c.sent_at
        ),
        handed_at=null(),
    )
    .returning(_c.id)
    .cte("settled")
)
# A claim (PostgreSQL) carrying the held outcomes: a new row's insert (a row another process made
# first: nothing done, no id returned) or the compare-and-set of `_START`. No parameter is named
# as a column: SQLAlchemy would take it for a value of the CTE's UPDATE too.
_CLAIM_NEW = (
    pg_insert(deliveries)
    .values(
        channel=bindparam("key_channel"),
        target=bindparam("key_target"),
        draft_key=bindparam("key_draft_key"),
        recipient=bindparam("key_recipient"),
        content_hash=bindparam("new_hash"),
        created_at=bindparam("now", type_=_c.created_at.type),
        updated_at=bindparam("now", type_=_c.updated_at.type),
        # Literals, not parameters: SQLAlchemy reuses the statement compiled once (a CTE's
        # anonymous parameters are not given their values again from its cache).
        status=literal_column("'in_flight'"),
        attempts=literal_column("1"),
        claimed_by=bindparam("claimant"),
        handed_at=bindparam("handed", type_=_c.handed_at.type),
    )
    .on_conflict_do_nothing(constraint="one_row_per_message")
    .returning(_c.id)
    .add_cte(_SETTLE)
)
_CLAIM_AGAIN = (
    _START.values(handed_at=bindparam("handed", type_=_c.handed_at.type)).returning(_c.id).add_cte(_SETTLE)
)


_HANDED = (
    update(deliveries)
    .where(_c.id == bindparam("row_id"), _c.status == "in_flight")
    .values(handed_at=bindparam("now", type_=_c.handed_at.type))
)

_REMEMBER = (
    update(articles)
    .where(articles.c.stem == bindparam("row_stem"))
    .values(
        identity=bindparam("identity"),
        path=bindparam("path"),
        content_hash=bindparam("content_hash"),
        updated_at=bindparam("updated_at", type_=articles.c.updated_at.type),
    )
)


class _ClaimedElsewhere(Exception):
    """Another process claimed (or settled) the message first: raised inside a claim's
    transaction, which rolls it back."""


@dataclass(frozen=True)
class Delivery:
    """One ledger row, as `syndicate status` shows it."""

    key: MessageKey
    content_hash: str
    status: Status
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class KnownArticle:
    """One row of `articles`: an article as the ledger last saw it."""

    stem: str  # its per-article drafts are `channel:stem`; never changes once recorded
    identity: str  # `content.identity()`: id:..., url:... or slug:...
    path: str  # its file, relative to content.dir (absolute when outside it)
    content_hash: str  # SHA-256 of the file's bytes


@dataclass(frozen=True)
class DraftRow:
    """How far the runs of one draft on one target got."""

    draft: DraftId
    state: DraftState
    detail: str | None  # a skip's reason, or why a started run stopped
    planned: int | None  # messages its last run planned (None: recorded before they were counted)
    articles: tuple[str, ...] | None  # its articles' slugs (None: recorded before they were kept)
    updated_at: datetime


@dataclass(frozen=True)
class PruneResult:
    """What `Ledger.prune` removed (or, a dry run, would remove)."""

    drafts: int  # drafts whose rows went, their counts kept in their summary
    rows: int  # message rows deleted
    kept: int  # drafts finished before the date that keep their rows: a message may still go out
    bytes_freed: int | None  # SQLite: pages no longer used (a dry run: None); another database: None
    dry_run: bool = False

    def summary(self) -> str:
        """One line, as `syndicate ledger prune` prints it."""
        verb = "would remove" if self.dry_run else "removed"
        line = f"{verb} {self.rows} message row(s) of {self.drafts} finished draft(s)"
        if self.bytes_freed is not None and not self.dry_run:
            line += f", {self.bytes_freed} bytes freed"
        if self.kept:
            line += f"; kept {self.kept} draft(s) with messages that may still go out"
        return line


class Ledger:
    """Thread-safe: parallel SMTP connections share one ledger (writes are serialised).

    A `read_only` ledger (see `reader()`) answers every query and refuses every write."""

    def __init__(self, url: str, *, read_only: bool = False, folder: str = NO_FOLDER) -> None:
        self.url = url
        self.read_only = read_only
        self.folder = folder
        # How long another machine's claim stays its own (None: for ever). Set by queue workers.
        self.lease: timedelta | None = None
        # Other runs may be sending from this process right now (a worker's concurrent shards,
        # each with a ledger of its own): a claim of this pid is then not an ended run's.
        self.runs_beside = False
        self._lock = threading.Lock()
        try:
            if read_only:
                self.engine = _read_only_engine(url)
            else:
                self.engine = make_engine(url)
                create_tables(_metadata, self.engine)
                _add_missing_columns(self.engine)
                _add_missing_indexes(self.engine)
            tables = inspect(self.engine)
            self.tables = set(tables.get_table_names())
            self._draft_names = (
                {c["name"] for c in tables.get_columns("drafts")} if "drafts" in self.tables else set()
            )
            self._conn = self.engine.connect()
            # PostgreSQL: one statement in autocommit is its own transaction in one round trip (no
            # BEGIN, no COMMIT): the claim and the hand-over mark go that way (`_claim_at_once`).
            self._auto: Connection | None = None
            if self.engine.dialect.name == "postgresql" and not read_only:
                self._auto = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.ledger_id, self.is_new = self._identity()
        except SQLAlchemyError as exc:
            raise DeliveryError(f"database_url: cannot open the ledger ({_reason(exc)})") from None
        except ImportError as exc:  # the URL names a driver that is not installed
            raise DeliveryError(
                f"database_url: cannot open the ledger (its driver is not installed: {exc}; "
                "expected sqlite or a database whose driver is installed)"
            ) from None
        self._ids: dict[MessageKey, int] = {}
        self._loaded: set[tuple[str, str, str]] = set()
        self._absent: set[MessageKey] = set()  # the last `statuses_of` chunk's keys without a row
        self._legacy: dict[DraftId, dict[str, tuple[int, Status, str]]] = {}
        self._held: list[dict] = []  # settled outcomes not written yet (`HELD`)

    @classmethod
    def from_config(cls, config: Config) -> Ledger:
        """The ledger at `database_url`, else a SQLite file in the state folder."""
        folder = folder_id(config)
        if config.database_url:
            return cls(config.database_url, folder=folder)
        return cls(sqlite_url(state_path(config, LEDGER_FILE)), folder=folder)

    @classmethod
    def reader(cls, config: Config) -> Ledger | None:
        """The ledger opened read-only, or None when there is none yet (nothing was ever sent).
        Creates nothing: no state folder, no file, no table."""
        url = config.database_url or f"sqlite:///{config.state_dir / LEDGER_FILE}"
        sqlite_file = _sqlite_file(url)
        if sqlite_file is not None and not sqlite_file.is_file():
            return None
        ledger = cls(url, read_only=True)
        if "deliveries" not in ledger.tables:
            ledger.close()
            return None
        return ledger

    def close(self) -> None:
        """Write the held outcomes, then close. A database that refuses them now leaves those
        rows in flight and handed over: the next run's `recover` makes them `unknown`."""
        with contextlib.suppress(DeliveryError):
            self.flush()
        with self._lock:
            if self._auto is not None:
                self._auto.close()
            self._conn.close()
            self.engine.dispose()

    def flush(self) -> None:
        """Write the held outcomes (`HELD`) now: a dispatch does at its end, however it ends."""
        if self._held:
            with self._lock, self._transaction():
                pass  # the transaction writes them first

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _identity(self) -> tuple[str, bool]:
        """This ledger's id, made on first open; `is_new` says it was made just now."""
        if "meta" not in self.tables:  # a ledger read as it is, from before it had an id
            return "", False
        found = self._conn.execute(select(meta.c.value).where(meta.c.name == "ledger_id")).scalar()
        self._conn.commit()
        if found is not None or self.read_only:
            return found or "", False
        made = uuid.uuid4().hex
        with self._conn.begin():
            self._conn.execute(meta.insert().values(name="ledger_id", value=made))
        return made, True

    def sent_total(self) -> int:
        """Messages this ledger records as sent, across every draft."""
        query = select(func.count()).select_from(deliveries).where(deliveries.c.status == "sent")
        return int(self._rows(query)[0][0]) + sum(row.pruned_sent for row in self._pruned())

    # -- the dispatch loop's writes ------------------------------------------------------

    @property
    def claimant(self) -> str:
        """How the rows this process claims are marked: its state folder, host and pid."""
        return f"{self.folder} {_HOST} {os.getpid()}"

    def recover(self) -> int:
        """Rows a stopped run left in flight: `unknown` if their data had been handed to the
        server (it may have them), else `pending` again (it cannot: the data never all went
        out). Returns how many are in doubt.

        Only rows whose run has ended: claimed by this state folder (one process sends from a
        folder at a time, `lock.py`, so an earlier claim of its own is an ended run's), by this
        process (a run starts with nothing of its own in flight), by a process of this machine
        that is gone, or before claims were marked. A row another live process claimed (another
        state folder on a shared ledger) is being sent right now: making it pending would let
        this run send it too."""
        c = deliveries.c
        now = _now()
        with self._lock, self._transaction():
            rows = self._conn.execute(
                select(c.id, c.claimed_by, c.handed_at, c.updated_at).where(c.status == "in_flight")
            ).all()
            ended = [row for row in rows if self._ended(row.claimed_by, row.updated_at, now)]
            handed = [row.id for row in ended if row.handed_at is not None]
            unhanded = [row.id for row in ended if row.handed_at is None]
            for ids in _chunks(handed):
                self._conn.execute(
                    update(deliveries)
                    .where(c.id.in_(ids), c.status == "in_flight")
                    .values(
                        status="unknown",
                        updated_at=now,
                        handed_at=null(),
                        last_error="handed to the server when a run stopped: it may have it",
                    )
                )
            for ids in _chunks(unhanded):
                self._conn.execute(
                    update(deliveries)
                    .where(c.id.in_(ids), c.status == "in_flight")
                    .values(
                        status="pending", updated_at=now, last_error="a run stopped before handing it over"
                    )
                )
            return len(handed)

    def _ended(self, claimed_by: str | None, claimed_at: datetime | None, now: datetime) -> bool:
        """Whether the run that claimed a row has ended (see `recover`)."""
        parts = (claimed_by or "").split(" ")
        if len(parts) != 3 or not parts[2].isdigit():
            return True  # claimed before claims were marked: by a run that has ended since
        folder, host, pid = parts[0], parts[1], int(parts[2])
        if folder == self.folder != NO_FOLDER:
            return True
        if host != _HOST:
            # Another machine's process: nothing here can tell whether it still runs. Workers
            # (`lease`) take a claim older than any one message's exchange to have ended.
            return self.lease is not None and claimed_at is not None and now - _aware(claimed_at) > self.lease
        if pid == os.getpid():  # this process's claim: an ended run's, unless runs share it
            return not self.runs_beside
        return not _process_alive(pid)

    def mark_handed(self, key: MessageKey) -> None:
        """The attempt `mark_in_flight` began has handed all its data to the server: from now
        on a crash leaves it in doubt (`unknown`), before now it leaves it pending."""
        with self._lock:
            row_id = self._row_id(key)
            if row_id is None:
                raise KeyError(key)
            if self._auto is not None:  # one statement, one round trip, committed on its own
                with self._writing():
                    self._auto.execute(_HANDED, {"row_id": row_id, "now": _now()})
                return
            with self._transaction():
                self._conn.execute(_HANDED, {"row_id": row_id, "now": _now()})

    def statuses(self, channel: str, target: str, draft_key: str) -> dict[str, tuple[Status, str]]:
        """recipient -> (status, content hash) for one draft on one target, in one query."""
        c = deliveries.c
        query = select(c.id, c.recipient, c.status, c.content_hash).where(
            c.channel == channel, c.target == target, c.draft_key == draft_key
        )
        found: dict[str, tuple[Status, str]] = {}
        with self._lock:
            for row in self._conn.execute(query):
                # Rows written before keys were normalised answer for their normalised address;
                # of two that meet there (`R1@` and `r1@`), a `sent` one wins.
                who = address_key(row.recipient) if row.recipient else row.recipient
                if who in found and found[who][0] == "sent":
                    continue
                self._ids[MessageKey(channel, target, draft_key, who)] = row.id
                found[who] = (row.status, row.content_hash)
            self._conn.commit()
            self._loaded.add((channel, target, draft_key))
        return found

    def statuses_of(
        self, channel: str, target: str, draft_key: str, recipients: Collection[str]
    ) -> dict[str, tuple[Status, str]]:
        """`statuses` for some recipients of a draft only (a chunk of a long list, as
        `address_key` names them): their rows looked up by the unique key, at most 500 an
        IN (...), so a draft of any length is checked a chunk at a time.

        The row ids of the rows not yet sent are remembered for the claim that may follow, and
        which of these recipients have no row yet (replacing the last chunk's), so neither
        costs a query of its own; a sent row sent again (`--resend`) is looked up when claimed.
        Rows written before keys were normalised (`R1@Example.org`) answer for their normalised
        address as in `statuses`: the draft's first chunk finds them in one pass over its
        recipients, holding only those. Of a pruned draft (`prune`), a recipient without a row
        answers `sent`: its row may be among those deleted, and a pruned draft is never sent
        again but on purpose (`--resend`), not even to a reader who joined after it went out."""
        c, d = deliveries.c, drafts.c
        wanted = sorted(set(recipients))
        found: dict[str, tuple[Status, str]] = {}
        pruned = self._pruned(d.channel == channel, d.target == target, d.draft_key == draft_key)
        with self._lock:
            legacy = self._legacy_rows(channel, target, draft_key)
            for start in range(0, len(wanted), 500):
                query = select(c.id, c.recipient, c.status, c.content_hash).where(
                    c.channel == channel,
                    c.target == target,
                    c.draft_key == draft_key,
                    c.recipient.in_(wanted[start : start + 500]),
                )
                rows = [(r.recipient, r.id, r.status, r.content_hash) for r in self._conn.execute(query)]
                rows += [(who, *legacy[who]) for who in wanted[start : start + 500] if who in legacy]
                for who, row_id, status, content_hash in rows:
                    if who in found and found[who][0] == "sent":
                        continue
                    found[who] = (status, content_hash)
                    if status != "sent":
                        self._ids[MessageKey(channel, target, draft_key, who)] = row_id
            self._conn.commit()
            self._absent = {MessageKey(channel, target, draft_key, who) for who in wanted if who not in found}
        if pruned:  # its rows are gone: a reader without one had it settled (or joined since)
            found = {who: found.get(who, (PRUNED, "")) for who in wanted}
        return found

    def _legacy_rows(self, channel: str, target: str, draft_key: str) -> dict[str, tuple[int, Status, str]]:
        """normalised address -> (row id, status, content hash) of a draft's rows whose recipient
        is not written as `address_key` names it (rows from before keys were normalised; a sent
        one wins), found once per draft. The database picks the candidates (`_maybe_unnormalised`:
        not lower-case, or not ASCII), so a draft written since keys were normalised costs one
        pass over its index entries and not one row handed to Python."""
        draft = (channel, target, draft_key)
        if draft in self._legacy:
            return self._legacy[draft]
        c = deliveries.c
        query = select(c.id, c.recipient, c.status, c.content_hash).where(
            *_is_draft(draft), self._maybe_unnormalised(c.recipient)
        )
        rows: dict[str, tuple[int, Status, str]] = {}
        for row in self._conn.execute(query.execution_options(yield_per=1000)):
            who = row.recipient
            if not who or (who.isascii() and who == who.lower()) or address_key(who) == who:
                continue
            key = address_key(who)
            if key not in rows or rows[key][1] != "sent":
                rows[key] = (row.id, row.status, row.content_hash)
        self._conn.commit()
        self._legacy = {draft: rows}  # one draft at a time: a run sends its drafts one by one
        return rows

    def _maybe_unnormalised(self, recipient):
        """Where a recipient may not be written as `address_key` names it: the rows the Python
        test in `_legacy_rows` could keep (a letter not in lower case, or a character not ASCII:
        more bytes than characters)."""
        if self.engine.dialect.name == "sqlite":
            size = func.length(cast(recipient, LargeBinary))
        else:
            size = func.octet_length(recipient)
        return or_(recipient != func.lower(recipient), size != func.length(recipient))

    @property
    def claims_at_hand_over(self) -> bool:
        """Whether a claim can also be the hand-over mark, in one statement (PostgreSQL, where
        each costs a round trip): `claim_handed`."""
        return self._auto is not None

    def claim_handed(
        self, key: MessageKey, content_hash: str, claimable: Collection[str] = CLAIMABLE
    ) -> bool:
        """Claim a message at the moment its data is all with the server, before the final "."
        (`claims_at_hand_over`): `mark_in_flight` and `mark_handed` as one statement, carrying the
        held outcomes too, so a message costs one round trip. False when another process
        claimed or settled it first: the caller must then never finish the transaction (an SMTP
        session is dropped mid-DATA, and the server keeps nothing)."""
        now = _now()
        with self._lock:
            try:
                row_id = self._claim_at_once(key, content_hash, claimable, now, handed=True)
            except _ClaimedElsewhere:
                return False
            finally:
                self._absent.discard(key)
            self._ids[key] = row_id
            return True

    def mark_in_flight(
        self, key: MessageKey, content_hash: str, claimable: Collection[str] = CLAIMABLE
    ) -> bool:
        """Claim a message: its row made, or moved from one of the `claimable` statuses, to
        `in_flight`, committed. False when another process (another ledger object) claimed or
        settled it first: the row was not in a claimable status any more, or a new row's insert
        met the row another process had just made (a unique violation). The caller must then
        not send it."""
        now = _now()
        with self._lock:
            try:
                if self._auto is not None:
                    row_id = self._claim_at_once(key, content_hash, claimable, now)
                else:
                    row_id = self._claim(key, content_hash, claimable, now)
            except _ClaimedElsewhere:
                return False
            finally:
                self._absent.discard(key)
            self._ids[key] = row_id  # only once committed: a refused insert leaves no row to update
            return True

    def _claim(self, key: MessageKey, content_hash: str, claimable: Collection[str], now: datetime) -> int:
        with self._transaction():
            row_id = self._row_id(key)
            if row_id is None:
                row = {
                    "channel": key.channel,
                    "target": key.target,
                    "draft_key": key.draft_key,
                    "recipient": key.recipient,
                    "content_hash": content_hash,
                    "created_at": now,
                    "updated_at": now,
                    "claimant": self.claimant,
                }
                try:
                    inserted = self._conn.execute(_INSERT, row).inserted_primary_key
                    assert inserted is not None
                    return int(inserted[0])
                except IntegrityError:  # the transaction is rolled back on the way out
                    raise _ClaimedElsewhere() from None
            values = {
                "row_id": row_id,
                "new_hash": content_hash,
                "now": now,
                "claimable": list(claimable),
                "claimant": self.claimant,
            }
            if self._conn.execute(_START, values).rowcount != 1:
                raise _ClaimedElsewhere()
            return row_id

    def _claim_at_once(
        self,
        key: MessageKey,
        content_hash: str,
        claimable: Collection[str],
        now: datetime,
        *,
        handed: bool = False,
    ) -> int:
        """`_claim` as one statement in autocommit (PostgreSQL): the held outcomes written by a
        CTE of the claim's own INSERT or UPDATE, so a message costs one round trip here and one
        for `mark_handed`."""
        row_id = self._row_id(key)
        if row_id is not None and any(h["row_id"] == row_id for h in self._held):
            with self._transaction():  # one statement may not change a row twice: its outcome first
                pass
        held = list(self._held)
        params: dict[str, object] = {
            "new_hash": content_hash,
            "now": now,
            "handed": now if handed else None,
            "claimant": self.claimant,
            "held_ids": [h["row_id"] for h in held],
            "held_statuses": [h["new_status"] for h in held],
            "held_errors": [h["error"] for h in held],
            "held_ats": [h["now"] for h in held],
        }
        statement: Any = _CLAIM_NEW
        if row_id is None:
            params.update(key_channel=key.channel, key_target=key.target, key_draft_key=key.draft_key)
            params["key_recipient"] = key.recipient
        else:
            statement = _CLAIM_AGAIN
            params.update(row_id=row_id, claimable=list(claimable))
        assert self._auto is not None
        with self._writing():
            claimed = self._auto.execute(statement, params).scalar()
        del self._held[: len(held)]
        if claimed is None:
            raise _ClaimedElsewhere()
        return int(claimed)

    def mark(self, key: MessageKey, status: Status, error: str | None = None) -> None:
        """Record the outcome of the attempt `mark_in_flight` began: `sent` and `failed` are held
        and written with the ledger's next write (`HELD`), `retry` and `unknown` at once."""
        now = _now()
        values = {"new_status": status, "now": now, "error": error, "sent": now if status == "sent" else None}
        with self._lock:
            row_id = self._row_id(key)
            if row_id is None:
                raise KeyError(key)
            if status in HELD and not self.read_only:
                self._held.append({"row_id": row_id, **values})
            else:
                with self._transaction():
                    self._conn.execute(_FINISH, {"row_id": row_id, **values})
            if status != "retry":
                # Settled for this dispatch (it takes each message once, and a later one reads the
                # draft's rows again): forgetting it keeps memory flat over a long list.
                self._ids.pop(key, None)

    # -- how far each draft's run got -----------------------------------------------------

    def set_draft_state(
        self,
        draft: DraftId,
        state: DraftState,
        detail: str | None = None,
        *,
        planned: int | None = None,
        articles: Sequence[str] | None = None,
    ) -> None:
        """Record a draft's state and `detail`; `planned` and `articles`, when given, too (a run
        gives them as it starts; later updates leave them as they were)."""
        channel, target, draft_key = draft
        d = drafts.c
        values: dict[str, object] = {"state": state, "detail": detail, "updated_at": _now()}
        if planned is not None:
            values["planned"] = planned
        if articles is not None:
            values["articles"] = json.dumps(list(articles), ensure_ascii=False)
        with self._lock, self._transaction():
            changed = self._conn.execute(
                update(drafts)
                .where(d.channel == channel, d.target == target, d.draft_key == draft_key)
                .values(**values)
            ).rowcount
            if not changed:
                self._conn.execute(
                    drafts.insert().values(channel=channel, target=target, draft_key=draft_key, **values)
                )

    def draft_states(self) -> dict[DraftId, DraftState]:
        """Every draft's state, in one query: the daemon reads it once at start."""
        d = drafts.c
        return {
            (r.channel, r.target, r.draft_key): r.state
            for r in self._draft_rows(select(d.channel, d.target, d.draft_key, d.state))
        }

    def draft_state(self, draft: DraftId) -> DraftState | None:
        d = drafts.c
        rows = self._draft_rows(
            select(d.state).where(d.channel == draft[0], d.target == draft[1], d.draft_key == draft[2])
        )
        return rows[0].state if rows else None

    def settled_draft_keys(self, channel: str, target: str) -> set[str]:
        """Drafts the daemon need not reach back past: sent, finished, or skipped by catch-up."""
        d = drafts.c
        query = select(d.draft_key).where(
            d.channel == channel, d.target == target, d.state.in_(("finished", "skipped"))
        )
        return self.sent_draft_keys(channel, target) | {row.draft_key for row in self._draft_rows(query)}

    def skipped_drafts(self) -> list[tuple[DraftId, str]]:
        d = drafts.c
        query = select(d.channel, d.target, d.draft_key, d.detail).where(d.state == "skipped")
        return [
            ((r.channel, r.target, r.draft_key), r.detail or "")
            for r in self._draft_rows(query.order_by(d.id))
        ]

    def drafts(self, state: DraftState | None = None) -> list[DraftRow]:
        """Every draft's row (or those in `state`), oldest first."""
        d = drafts.c
        added = [self._column(name) for name in ADDED_DRAFT_COLUMNS]
        query = select(d.channel, d.target, d.draft_key, d.state, d.detail, d.updated_at, *added)
        query = query.order_by(d.id)
        if state is not None:
            query = query.where(d.state == state)
        return [
            DraftRow(
                draft=(r.channel, r.target, r.draft_key),
                state=r.state,
                detail=r.detail,
                planned=r.planned,
                articles=tuple(json.loads(r.articles)) if r.articles else None,
                updated_at=_aware(r.updated_at),
            )
            for r in self._draft_rows(query)
        ]

    def prune(self, before: datetime, *, dry_run: bool = False, vacuum: bool = False) -> PruneResult:
        """Delete the message rows of the drafts `finished` before `before` (their last update),
        their counts first folded into the draft's summary (`pruned_sent`, `pruned_failed`), so
        the planner, `status` and the state folder's sent count (continuity.py) see them as
        before, and `statuses_of` answers `sent` for their readers: none is sent again.

        A draft with a message that may still go out (`pending`, `in_flight`, `retry`,
        `unknown`), or not finished (its run may resume and reads its rows), keeps every row.
        Each draft goes in a transaction of its own that first re-reads its state through an
        update of its `drafts` row: a run starting it again at that moment waits for the prune
        or makes it leave the draft alone. `dry_run` counts and changes nothing; `vacuum` (SQLite)
        returns the freed pages to the file system."""
        d = drafts.c
        before = before.astimezone(UTC)  # as stored: SQLite keeps the UTC wall time, no offset
        candidates = self._draft_rows(
            select(d.id, d.channel, d.target, d.draft_key).where(d.state == "finished", d.updated_at < before)
        )
        used_before = self._sqlite_used_bytes()
        pruned = rows = kept = 0
        for candidate in candidates:
            counts = self._prune_one(candidate, before, dry_run)
            if counts is None:
                continue
            if set(counts) - set(PRUNED_STATUSES):
                kept += 1
            else:
                pruned, rows = pruned + 1, rows + sum(counts.values())
        if vacuum and not dry_run and used_before is not None:
            with self._lock, self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM")
        used_after = self._sqlite_used_bytes()
        freed = (
            None if dry_run or used_before is None or used_after is None else max(0, used_before - used_after)
        )
        return PruneResult(drafts=pruned, rows=rows, kept=kept, bytes_freed=freed, dry_run=dry_run)

    def _prune_one(self, candidate, before: datetime, dry_run: bool) -> dict[str, int] | None:
        """One draft's status -> rows, its rows deleted and counts folded when all are settled
        (not in a dry run); None when it has no rows or was started again since it was listed."""
        d, c = drafts.c, deliveries.c
        draft = (candidate.channel, candidate.target, candidate.draft_key)
        counting = select(c.status, func.count()).where(*_is_draft(draft)).group_by(c.status)
        if dry_run:
            return {status: count for status, count in self._rows(counting)} or None
        with self._lock, self._transaction():
            still = update(drafts).where(d.id == candidate.id, d.state == "finished", d.updated_at < before)
            if self._conn.execute(still.values(state="finished")).rowcount != 1:
                return None  # its row now locked: a run starting it again waits for this transaction
            counts: dict[str, int] = {status: count for status, count in self._conn.execute(counting)}
            if not counts or set(counts) - set(PRUNED_STATUSES):
                return counts or None
            self._conn.execute(deliveries.delete().where(*_is_draft(draft)))
            self._conn.execute(
                update(drafts)
                .where(d.id == candidate.id)
                .values(
                    pruned_sent=func.coalesce(d.pruned_sent, 0) + counts.get("sent", 0),
                    pruned_failed=func.coalesce(d.pruned_failed, 0) + counts.get("failed", 0),
                )
            )
            return counts

    def _sqlite_used_bytes(self) -> int | None:
        """Bytes of a SQLite ledger's pages in use (not on its free list); None for another database."""
        if self.engine.dialect.name != "sqlite":
            return None
        with self._lock:
            size = self._conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            pages = self._conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = self._conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            self._conn.commit()
        return int(size) * (int(pages) - int(free))

    # -- what each draft was made of --------------------------------------------------------

    def draft_body(self, channel: str, draft_key: str) -> str | None:
        """The draft as its first run stored it (JSON), or None (never started, or started by
        a version that did not store drafts)."""
        if "draft_bodies" not in self.tables:
            return None
        b = draft_bodies.c
        rows = self._rows(select(b.body).where(b.channel == channel, b.draft_key == draft_key))
        return rows[0].body if rows else None

    def draft_went_out(self, channel: str, draft_key: str) -> bool:
        """Whether a message of this draft, on any target, may have reached someone (a row
        `sent`, `unknown` or `in_flight`)."""
        c, d = deliveries.c, drafts.c
        query = select(c.id).where(
            c.channel == channel, c.draft_key == draft_key, c.status.in_(("sent", "unknown", "in_flight"))
        )
        return bool(
            self._rows(query.limit(1))
            or self._pruned(d.channel == channel, d.draft_key == draft_key, d.pruned_sent > 0)
        )

    def keep_draft_body(self, channel: str, draft_key: str, body: str, *, replace: bool = False) -> str:
        """Store a draft's body unless one is stored already (`replace`: store it anyway);
        returns the stored one (another process storing the same draft at the same instant
        wins the race, and is used)."""
        try:
            with self._lock, self._transaction():
                b = draft_bodies.c
                where = (b.channel == channel, b.draft_key == draft_key)
                found = self._conn.execute(select(b.body).where(*where)).scalar()
                if found is not None and replace:
                    self._conn.execute(update(draft_bodies).where(*where).values(body=body))
                    return body
                if found is not None:
                    return found
                self._conn.execute(
                    draft_bodies.insert().values(
                        channel=channel, draft_key=draft_key, body=body, created_at=_now()
                    )
                )
            return body
        except DeliveryError:
            found = self.draft_body(channel, draft_key)
            if found is None:
                raise
            return found

    # -- which article is which ------------------------------------------------------------

    def known_articles(
        self, near: tuple[Collection[str], Collection[str], Collection[str]] | None = None
    ) -> list[KnownArticle]:
        """Every article the ledger has seen, oldest first; with `near` = (identities, content
        hashes, stems), only those with one of them, or a stem made from one (`stem~2`)."""
        a = articles.c
        query = select(a.stem, a.identity, a.path, a.content_hash).order_by(a.id)
        if near is not None:
            identities, hashes, stems = near
            query = query.where(
                or_(
                    a.identity.in_(identities),
                    a.content_hash.in_(hashes),
                    a.stem.in_(stems),
                    *(a.stem.startswith(f"{stem}~", autoescape=True) for stem in stems),
                )
            )
        return [KnownArticle(r.stem, r.identity, r.path, r.content_hash) for r in self._rows(query)]

    def remember_articles(self, known: list[KnownArticle]) -> None:
        """Record these articles, a row per stem made or updated, in one transaction. Another
        process recording the same new stem at the same moment makes the insert fail: then the
        batch is written once more, finding that row made."""
        if not known:
            return
        a = articles.c
        for attempt in range(2):
            try:
                with self._lock, self._transaction():
                    now = _now()
                    existing = {row.stem for row in self._conn.execute(select(a.stem))}
                    rows = [
                        {
                            "row_stem": k.stem,
                            "identity": k.identity,
                            "path": k.path,
                            "content_hash": k.content_hash,
                            "updated_at": now,
                        }
                        for k in known
                    ]
                    updates = [row for row in rows if row["row_stem"] in existing]
                    inserts = [
                        {**row, "stem": row.pop("row_stem"), "created_at": now}
                        for row in rows
                        if row["row_stem"] not in existing
                    ]
                    if updates:
                        self._conn.execute(_REMEMBER, updates)
                    if inserts:
                        self._conn.execute(articles.insert(), inserts)
                return
            except DeliveryError:
                if attempt:
                    raise

    # -- what `syndicate status` shows ---------------------------------------------------

    def recent(self, limit: int = 20) -> list[Delivery]:
        return self._query(select(*_SHOWN).order_by(deliveries.c.updated_at.desc()).limit(limit))

    def failures(self, limit: int = 100) -> list[Delivery]:
        c = deliveries.c
        return self._query(
            select(*_SHOWN)
            .where(c.status.in_(("failed", "retry")))
            .order_by(c.updated_at.desc())
            .limit(limit)
        )

    def unknowns(self) -> list[Delivery]:
        return self._query(
            select(*_SHOWN).where(deliveries.c.status == "unknown").order_by(deliveries.c.updated_at)
        )

    def sent_draft_keys(self, channel: str, target: str) -> set[str]:
        """Drafts of a channel that went out on a target (at least one message sent): the
        planner reads it to know where the next digest's window starts."""
        c, d = deliveries.c, drafts.c
        query = (
            select(c.draft_key).where(c.channel == channel, c.target == target, c.status == "sent").distinct()
        )
        pruned = self._pruned(d.channel == channel, d.target == target, d.pruned_sent > 0)
        return {row.draft_key for row in self._rows(query)} | {row.draft_key for row in pruned}

    def unsettled_drafts(self) -> set[DraftId]:
        """Drafts with a message left `retry`, `unknown` or `in_flight`."""
        c = deliveries.c
        query = select(c.channel, c.target, c.draft_key).where(c.status.in_(UNSETTLED)).distinct()
        return {(r.channel, r.target, r.draft_key) for r in self._rows(query)}

    def known_drafts(self) -> set[DraftId]:
        """Every draft with at least one message row."""
        c = deliveries.c
        return {
            (r.channel, r.target, r.draft_key)
            for r in self._rows(select(c.channel, c.target, c.draft_key).distinct())
        }

    def message_counts(self, draft: DraftId) -> dict[str, int]:
        """status -> messages, for one draft on one target (its rows, and its summary if pruned)."""
        c = deliveries.c
        query = select(c.status, func.count()).where(*_is_draft(draft)).group_by(c.status).order_by(c.status)
        counts = {status: count for status, count in self._rows(query)}
        d = drafts.c
        for row in self._pruned(d.channel == draft[0], d.target == draft[1], d.draft_key == draft[2]):
            _add_pruned(counts, row)
        return dict(sorted(counts.items()))

    def last_error(self, draft: DraftId) -> str | None:
        """The latest error of a draft's messages that did not go out (retry, unknown, failed)."""
        c = deliveries.c
        query = (
            select(c.last_error)
            .where(*_is_draft(draft), c.status != "sent", c.last_error.is_not(None))
            .order_by(c.updated_at.desc(), c.id.desc())
            .limit(1)
        )
        rows = self._rows(query)
        return rows[0].last_error if rows else None

    def deliveries_of(self, draft: DraftId) -> list[Delivery]:
        """One draft's rows on one target, by recipient."""
        c = deliveries.c
        return self._query(select(*_SHOWN).where(*_is_draft(draft)).order_by(c.recipient))

    def deliveries_to(self, recipient: str) -> list[Delivery]:
        """Every row for one address (its case ignored), oldest first: what this reader got."""
        c = deliveries.c
        query = (
            select(*_SHOWN)
            .where(func.lower(c.recipient) == recipient.strip().lower())
            .order_by(c.updated_at, c.id)
        )
        return self._query(query)

    def sent_to(self, recipient: str) -> list[tuple[MessageKey, str]]:
        """(key, content hash) of every message sent to one reader (as `address_key` names
        them), newest first: the candidates a bounce report is matched against."""
        c = deliveries.c
        query = (
            select(c.channel, c.target, c.draft_key, c.recipient, c.content_hash)
            .where(c.recipient == recipient, c.status == "sent")
            .order_by(c.sent_at.desc(), c.id.desc())
        )
        return [(MessageKey(*row[:4]), row.content_hash) for row in self._rows(query)]

    def set_feedback(self, key: MessageKey, feedback: str) -> None:
        """Note what came back for a sent message (a bounce, a complaint)."""
        c = deliveries.c
        with self._lock, self._transaction():
            self._conn.execute(
                update(deliveries)
                .where(
                    c.channel == key.channel,
                    c.target == key.target,
                    c.draft_key == key.draft_key,
                    c.recipient == key.recipient,
                )
                .values(feedback=feedback[:FEEDBACK_CHARS])
            )

    def feedback_counts(self) -> dict[DraftId, dict[str, int]]:
        """Per draft on a target: messages sent, and how many came back bounced or complained."""
        if "feedback" not in {col["name"] for col in inspect(self.engine).get_columns("deliveries")}:
            return {}
        c = deliveries.c
        query = (  # grouped by the whole note: few messages come back, so few groups
            select(c.channel, c.target, c.draft_key, c.feedback, func.count())
            .where(c.status == "sent", c.recipient != "")
            .group_by(c.channel, c.target, c.draft_key, c.feedback)
        )
        totals: dict[DraftId, dict[str, int]] = {}
        for channel, target, draft_key, note, count in self._rows(query):
            counts = totals.setdefault((channel, target, draft_key), {"sent": 0})
            counts["sent"] += count
            if note:
                kind = note.partition(":")[0]
                counts[kind] = counts.get(kind, 0) + count
        return totals

    def counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """(channel, target) -> {status: messages}: the rows, and the pruned drafts' summaries."""
        c = deliveries.c
        query = select(c.channel, c.target, c.status, func.count()).group_by(c.channel, c.target, c.status)
        totals: dict[tuple[str, str], dict[str, int]] = {}
        for channel, target, status, count in self._rows(query):
            totals.setdefault((channel, target), {})[status] = count
        for row in self._pruned():
            _add_pruned(totals.setdefault((row.channel, row.target), {}), row)
        return totals

    # -- plumbing ------------------------------------------------------------------------

    def _row_id(self, key: MessageKey) -> int | None:
        """From memory when the draft's rows were read (`statuses`) or the chunk's
        (`statuses_of`, which a dispatch calls for each chunk: it knows which have no row) or the
        row was made in this run, else from the database."""
        row_id = self._ids.get(key)
        draft = (key.channel, key.target, key.draft_key)
        if row_id is None and key not in self._absent and draft not in self._loaded:
            row_id = self._find(key)
        return row_id

    def _find(self, key: MessageKey) -> int | None:
        """A row's id by its key: on PostgreSQL on the autocommit connection (one round trip, and
        no transaction left open between two claims)."""
        c = deliveries.c
        row_id = (
            (self._auto or self._conn)
            .execute(
                select(c.id).where(
                    c.channel == key.channel,
                    c.target == key.target,
                    c.draft_key == key.draft_key,
                    c.recipient == key.recipient,
                )
            )
            .scalar()
        )
        if row_id is not None:
            self._ids[key] = row_id
        return row_id

    def _column(self, name: str):
        """A drafts column, or NULL in its place where a read-only ledger predates it."""
        return drafts.c[name] if name in self._draft_names else null().label(name)

    def _pruned(self, *where) -> list:
        """The summaries of the pruned drafts that match `where` (channel, target, draft_key,
        pruned_sent, pruned_failed): few rows, one per draft pruned; none where the ledger
        predates summaries."""
        if "pruned_sent" not in self._draft_names:
            return []
        d = drafts.c
        query = select(d.channel, d.target, d.draft_key, d.pruned_sent, d.pruned_failed)
        return self._rows(query.where(d.pruned_sent.is_not(None), *where))

    def _draft_rows(self, query) -> list:
        """Rows of a query on `drafts`; none where a read-only ledger predates the table."""
        return self._rows(query) if self._draft_names else []

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit on success; a database that refuses a write stops the send (it could double-send)."""
        if self.read_only:
            raise RuntimeError(f"ledger {self._where()} was opened read-only")
        with self._writing():
            if self._conn.in_transaction():
                self._conn.commit()
            held = list(self._held)
            with self._conn.begin():
                if held:  # what a write carries first: the outcomes held since the last one
                    self._conn.execute(_FINISH, held)
                yield
            del self._held[: len(held)]

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A database that refuses a write stops the send (it could double-send): DeliveryError."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise DeliveryError(
                f"ledger {self._where()}: cannot record a delivery ({_reason(exc)})"
            ) from None

    def _where(self) -> str:
        return str(self.engine.url.render_as_string(hide_password=True))

    def _rows(self, query) -> list:
        self.flush()  # this process reads what it recorded
        with self._lock:
            rows = list(self._conn.execute(query))
            self._conn.commit()
        return rows

    def _query(self, query) -> list[Delivery]:
        return [
            Delivery(
                key=MessageKey(row.channel, row.target, row.draft_key, row.recipient),
                content_hash=row.content_hash,
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=_aware(row.created_at),
                updated_at=_aware(row.updated_at),
                sent_at=_aware(row.sent_at) if row.sent_at else None,
            )
            for row in self._rows(query)
        ]


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite database at `path` (ledger, job store), the file (and a missing folder)
    created owner-only."""
    private_file(private_dir(path.parent) / path.name)
    return f"sqlite:///{path}"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database (or an in-memory one)."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise DeliveryError(f"database_url: cannot open the ledger ({_reason(exc)})") from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite opened with `mode=ro` (no pragma set, nothing
    created but SQLite's own -wal/-shm files beside a WAL database); another database as it is
    (the Ledger refuses writes itself)."""
    path = _sqlite_file(url)
    if path is None:
        return create_engine(url)
    location = f"file:{quote(str(path.resolve()))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(location, uri=True, check_same_thread=False, timeout=30)

    return create_engine("sqlite://", creator=connect, poolclass=pool.NullPool)


def _add_missing_columns(engine: Engine) -> None:
    """Give a ledger made before them the columns added since (nullable: the rows it has keep
    NULL). Another process may add one at the same instant: then its ALTER wins."""
    for table, names in ((drafts, ADDED_DRAFT_COLUMNS), (deliveries, ADDED_DELIVERY_COLUMNS)):
        present = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for name in names:
            if name in present:
                continue
            kind = table.c[name].type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
                    if name == "handed_at":
                        # Rows an older version left in flight may have gone out: keep them in doubt.
                        conn.execute(
                            text("UPDATE deliveries SET handed_at = updated_at WHERE status = 'in_flight'")
                        )
            except SQLAlchemyError:
                if name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


def _add_missing_indexes(engine: Engine) -> None:
    """Give a ledger made before them the indexes added since (`deliveries_by_status`). On a
    large PostgreSQL ledger the first open after the upgrade builds it (writes to `deliveries`
    wait meanwhile). Another process may build it at the same instant: then its CREATE wins."""
    for table in (deliveries,):
        present = {index["name"] for index in inspect(engine).get_indexes(table.name)}
        for index in table.indexes:
            if index.name in present:
                continue
            try:
                index.create(engine, checkfirst=True)
            except SQLAlchemyError:
                if index.name not in {i["name"] for i in inspect(engine).get_indexes(table.name)}:
                    raise


def _process_alive(pid: int) -> bool:
    """Whether a process of this machine runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal said it exists
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _add_pruned(counts: dict[str, int], summary) -> None:
    """Add a pruned draft's summary to status -> messages (statuses with none stay absent)."""
    for status, count in (("sent", summary.pruned_sent), ("failed", summary.pruned_failed or 0)):
        if count:
            counts[status] = counts.get(status, 0) + count


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _is_draft(draft: DraftId) -> tuple:
    c = deliveries.c
    return (c.channel == draft[0], c.target == draft[1], c.draft_key == draft[2])


def create_tables(metadata: MetaData, engine: Engine) -> None:
    """`metadata`'s missing tables made. Two processes opening a new PostgreSQL database at once
    both find a table missing and both create it: the loser's CREATE fails on the catalog's
    unique names (IntegrityError) or on the table now there (ProgrammingError). Looked at again,
    the tables are there, so a second pass creates nothing."""
    try:
        metadata.create_all(engine)
    except (IntegrityError, ProgrammingError):
        metadata.create_all(engine)


def make_engine(url: str) -> Engine:
    """An engine; a SQLite file runs in WAL mode with synchronous=NORMAL (fast, crash-safe commits)."""
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    database = make_url(url).database

    @event.listens_for(engine, "do_connect")
    def _owner_only(_dialect, _record, _args, _params) -> None:
        # A file deleted while the process runs is made again by the next connection: owner-only.
        if database and database != ":memory:" and not database.startswith("file:"):
            # A missing folder: SQLite's own error ("unable to open database file") says so.
            with contextlib.suppress(FileNotFoundError):
                private_file(Path(database))

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def _now() -> datetime:
    return clock.now()


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
