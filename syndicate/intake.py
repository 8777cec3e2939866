"""What comes back, applied: bounces, complaints and mailed unsubscribes change readers' status
in the subscriber store and are noted on the ledger row of the message they answer.

Reports are read elsewhere (feedback/: DSNs, ARF reports, ESP webhooks); this is the one place
that decides what each does, so a bounce read from a Maildir and one posted by an ESP count
the same. A hard bounce or a complaint ends a reader on every list that has the address (the
address is bad, or its owner said "spam"); soft bounces are counted, and enough of them in a
window end it too (subscribers.py). None of them is ever mailed again: sends read only
`subscribed` readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from . import clock
from .compose.mime import message_id
from .config import Config
from .errors import ConfigError
from .feedback import Feedback
from .feedback.mailbox import read_mailbox
from .feedback.reports import read_report
from .ledger import Ledger
from .recipients import address_key
from .subscribers import Subscriber, SubscriberStore
from .tokens import BadToken, read_token, signing_key

__all__ = ["IntakeReport", "apply_feedback", "read_bounce_mailbox", "read_bounces"]

# The ledger's note per kind: `status` counts "bounced" and "complained".
_NOTE = {"hard": "bounced", "soft": "soft-bounced", "complaint": "complained", "unsubscribe": "unsubscribed"}


@dataclass
class IntakeReport:
    """What a batch of feedback did."""

    applied: dict[str, int] = field(default_factory=dict)  # kind -> reports that changed a reader
    unmatched: list[str] = field(default_factory=list)  # reports naming no reader we know

    def count(self, kind: str) -> None:
        self.applied[kind] = self.applied.get(kind, 0) + 1

    def summary(self) -> str:
        done = ", ".join(f"{n} {kind}" for kind, n in sorted(self.applied.items())) or "nothing applied"
        return done + (f"; {len(self.unmatched)} naming no known reader" if self.unmatched else "")


def apply_feedback(config: Config, items: Iterable[Feedback]) -> IntakeReport:
    """Apply each report to the store and the ledger; one that names nobody is listed, not fatal."""
    report = IntakeReport()
    with SubscriberStore.from_config(config) as store, Ledger.from_config(config) as ledger:
        for item in items:
            readers = _readers(config, store, item)
            if not readers:
                who = item.address or "an unknown reader"
                report.unmatched.append(f"{item.source}: {item.kind} for {who}")
                continue
            for reader in readers:
                _apply(store, reader, item)
            _note(config, ledger, readers[0].email, item)
            report.count(item.kind)
    return report


def read_bounces(
    config: Config,
    location: str | Path,
    *,
    state: Path | None = None,
    password_env: str | None = None,
    ca_file: str | None = None,
) -> IntakeReport:
    """Read every unprocessed message of a bounce mailbox (Maildir, mbox, imaps://) and apply
    what it reports. Each message is marked processed only after its reports were applied, so
    a crash reads it again rather than losing it (applying twice changes nothing more)."""
    key = signing_key(config)

    def reports() -> Iterator[Feedback]:
        for _ident, raw in read_mailbox(location, state=state, password_env=password_env, ca_file=ca_file):
            yield from read_report(raw, return_path=config.site.return_path, unsubscribe_key=key)

    return apply_feedback(config, reports())


def read_bounce_mailbox(config: Config) -> IntakeReport:
    """The config's `bounces:` mailbox read once: what `syndicate daemon` does every
    `bounces.every_seconds` and `syndicate bounces read` does without an argument."""
    box = config.bounces
    if box is None:
        raise ConfigError("bounces: is missing (expected a bounces: section with a mailbox, or MAILBOX)")
    return read_bounces(
        config,
        box.mailbox,
        state=box.state,
        password_env=box.password_env,
        ca_file=None if box.ca_file is None else str(box.ca_file),
    )


def _readers(config: Config, store: SubscriberStore, item: Feedback) -> list[Subscriber]:
    """Who the report is about: the reader its VERP address or token names, else every list's
    row for its address (a bad address is bad on every list)."""
    found = [s for s in [store.get(item.subscriber_id, any_case=True)] if s] if item.subscriber_id else []
    if item.token:
        with suppress(BadToken):  # a forged or mangled token names no one
            subscriber = store.get(read_token("unsubscribe", item.token, signing_key(config), clock.now()))
            found += [subscriber] if subscriber else []
    if found and item.kind == "unsubscribe":
        return found[:1]  # an unsubscribe is for the list it came from
    if item.address:
        for list_name in store.lists():
            row = store.find(list_name, item.address)
            if row is not None and all(row.id != s.id for s in found):
                found.append(row)
    return found


def _apply(store: SubscriberStore, reader: Subscriber, item: Feedback) -> None:
    if item.kind == "unsubscribe":
        store.set_status(reader.id, "unsubscribed", reason=f"{item.source}: {item.detail}"[:300])
    else:
        store.record_bounce(reader.id, item.kind, f"{item.source}: {item.detail}", message_id=item.message_id)


def _note(config: Config, ledger: Ledger, address: str, item: Feedback) -> None:
    """Note it on the message it answers: the one whose Message-ID the report quotes, else the
    reader's latest."""
    sent = ledger.sent_to(address_key(address))
    if not sent:
        return
    chosen = sent[0][0]
    if item.message_id:
        wanted = item.message_id.strip().strip("<>")
        for key, content_hash in sent:
            if message_id(key.draft_key, content_hash, key.recipient, config).strip("<>") == wanted:
                chosen = key
                break
    ledger.set_feedback(chosen, f"{_NOTE[item.kind]}: {item.source}: {item.detail}")
