"""Who a mail target's readers are, each with the subscriber id their links carry.

A target's `recipients` is a subscriber list in the store (`{list: newsletter}`, optionally
with `where:` on attributes: a segment) or, as before, a CSV file or an inline list. A CSV or
inline list is kept in step with the store under a list named for the target: a real send adds
the readers it has not seen (as subscribed) and leaves out those who unsubscribed, bounced or
complained since, so one-click unsubscribe works the same for a hand-kept CSV. The suppression
file still applies to both.

A dry run or `status` reads the store without writing: a reader not yet in it has no id, and
its links name no one (compose/mime.py).

The list is never held in memory: `Readers` reads it from its source in chunks of `CHUNK`
each time it is iterated (the store in keyset pages, a CSV file as it is read). A first pass
when it is made counts the readers, collects the problems and the suppressed, and, for a CSV
on a real send, records the new readers in the store chunk by chunk. An address a CSV lists
twice is mailed once: the store's list is unique by address (one row per `address_key`), and a
CSV's addresses are remembered across chunks as 8-byte hashes (`recipients.SeenAddresses`).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from .config import Config
from .deliver import MailTargetSettings
from .recipients import (
    Recipient,
    RecipientList,
    RecipientProblem,
    SeenAddresses,
    SubscriberList,
    address_key,
    load_suppression,
    unique_rows,
)
from .subscribers import ENDED, Span, Status, SubscriberStore

__all__ = ["CHUNK", "Readers", "target_readers"]

_MAILED: tuple[Status, ...] = ("subscribed",)
CHUNK = 1000  # readers read (and their ledger rows looked up) at a time


class Readers:
    """The readers a send to target `name` mails: valid, unique, subscribed, not suppressed,
    each with its subscriber id. `write`: a real send, which records new CSV readers.

    `len()` is how many there are (counted by the first pass), `problems` and `suppressed` what
    that pass found; iterating reads them again from their source, `chunk` at a time, so a
    list of any length costs the memory of one chunk."""

    def __init__(
        self,
        name: str,
        settings: MailTargetSettings,
        config: Config,
        *,
        write: bool,
        chunk: int | None = None,
        span: Span | None = None,
    ) -> None:
        self.name = name
        self.source = settings.recipients
        self.config = config
        self.write = write
        self.chunk = chunk or CHUNK
        # One shard of a store list (queue.py); a CSV or inline list is never split.
        self.span = span if isinstance(self.source, SubscriberList) else None
        self.blocked = load_suppression(settings.suppression) if settings.suppression else set()
        self.problems: list[RecipientProblem] = []
        self.suppressed = 0
        self._seen = SeenAddresses(_rows_in(self.source))
        self._count = self._survey()

    def _survey(self) -> int:
        """The first pass: how many readers. A whole list of the store (no segment, no
        suppression file) is counted by the database; anything else is read through."""
        source = self.source
        if isinstance(source, SubscriberList) and not source.where and not self.blocked:
            store = _store(self.config, self.write)
            if store is None:
                return 0
            with store:
                return store.count(source.name, statuses=_MAILED, span=self.span)
        return sum(len(chunk) for chunk in self._chunks(survey=True))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Recipient]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[Recipient]]:
        """The readers, a list of at most `chunk` at a time."""
        return self._chunks(survey=False)

    def _chunks(self, survey: bool) -> Iterator[list[Recipient]]:
        if isinstance(self.source, SubscriberList):
            return self._from_list(self.source, survey)
        return self._from_file(survey)

    def _from_list(self, source: SubscriberList, survey: bool) -> Iterator[list[Recipient]]:
        """A list of the store (unique by address: no address comes twice), page by page."""
        store = _store(self.config, self.write)
        if store is None:
            return
        with store:
            for page in store.pages(source.name, statuses=_MAILED, size=self.chunk, span=self.span):
                kept = []
                for subscriber in page:
                    if not source.matches(subscriber.attributes):
                        continue
                    if address_key(subscriber.email) in self.blocked:
                        self.suppressed += survey
                    else:
                        kept.append(subscriber.recipient())
                if kept:
                    yield kept

    def _from_file(self, survey: bool) -> Iterator[list[Recipient]]:
        """A CSV file or an inline list, `chunk` rows at a time: each address on the line it
        came first on, given its store id; those the store has ended are left out. The survey
        reports the problems and, on a real send, adds the new readers to the store."""
        where = f"targets.{self.name}.recipients"
        assert not isinstance(self.source, SubscriberList)
        rows = unique_rows(self.source or [], where, self._seen, surveyed=not survey)
        store = _store(self.config, self.write)
        try:
            while batch := list(islice(rows, self.chunk)):
                fresh = []
                for row in batch:
                    if isinstance(row, RecipientProblem):
                        self.problems.append(row)
                    elif address_key(row.email) in self.blocked:
                        self.suppressed += survey
                    else:
                        fresh.append(row)
                if store is None:
                    kept = fresh
                else:
                    if survey and self.write:
                        store.add_missing(self.name, fresh, source="csv")
                    kept = _known_ids(store, self.name, fresh, self, survey)
                if kept:
                    yield kept
        finally:
            if store is not None:
                store.close()


def _known_ids(
    store: SubscriberStore, list_name: str, fresh: list[Recipient], readers: Readers, survey: bool
) -> list[Recipient]:
    """The chunk's readers with the ids the store gives them; those it has ended left out."""
    states = store.states(list_name, (address_key(r.email) for r in fresh))
    kept = []
    for recipient in fresh:
        found = states.get(address_key(recipient.email))
        if found is None:
            kept.append(recipient)
        elif found[1] in ENDED:
            readers.suppressed += survey
        else:
            kept.append(Recipient(recipient.email, recipient.name, recipient.fields, id=found[0]))
    return kept


def _rows_in(source: object) -> int:
    """About how many rows a CSV file (its lines, counted in a fast pass over its bytes) or an
    inline list has: what `SeenAddresses` is sized for."""
    if isinstance(source, list):
        return len(source)
    if not isinstance(source, Path):
        return 0
    lines = 0
    try:
        with source.open("rb") as data:
            while block := data.read(1 << 20):
                lines += block.count(b"\n")
    except OSError:  # the survey's read says what is wrong with it
        return 0
    return lines


def target_readers(name: str, settings: MailTargetSettings, config: Config, *, write: bool) -> RecipientList:
    """Every reader of `Readers` in one list (for callers that want them all at once)."""
    readers = Readers(name, settings, config, write=write)
    return RecipientList(list(readers), readers.problems, readers.suppressed)


def _store(config: Config, write: bool) -> SubscriberStore | None:
    """The store; read-only callers get None when there is no database yet (nothing to read)."""
    if not write and not config.database_url:
        from .ledger import LEDGER_FILE  # the store lives in the ledger's database

        if not (config.state_dir / LEDGER_FILE).is_file():
            return None
    return SubscriberStore.from_config(config)
