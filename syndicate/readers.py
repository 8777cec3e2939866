"""Who a mail target's readers are, each with the subscriber id their links carry.

A target's `recipients` is a subscriber list in the store (`{list: newsletter}`, optionally
with `where:` on attributes: a segment) or, as before, a CSV file or an inline list. A CSV or
inline list is kept in step with the store under a list named for the target: a real send adds
the readers it has not seen (as subscribed) and leaves out those who unsubscribed, bounced or
complained since, so one-click unsubscribe works the same for a hand-kept CSV. The suppression
file still applies to both.

A dry run or `status` reads the store without writing: a reader not yet in it has no id, and
its links name no one (compose/mime.py).
"""

from __future__ import annotations

from .config import Config
from .deliver import MailTargetSettings
from .recipients import (
    Recipient,
    RecipientList,
    SubscriberList,
    address_key,
    load_recipients,
    load_suppression,
)
from .subscribers import ENDED, Status, Subscriber, SubscriberStore

__all__ = ["target_readers"]

_MAILED: tuple[Status, ...] = ("subscribed",)


def target_readers(name: str, settings: MailTargetSettings, config: Config, *, write: bool) -> RecipientList:
    """The readers a send to target `name` mails: valid, unique, subscribed, not suppressed,
    each with its subscriber id. `write`: a real send, which records new CSV readers."""
    source = settings.recipients
    blocked = load_suppression(settings.suppression) if settings.suppression else set()
    if isinstance(source, SubscriberList):
        found = RecipientList([], [])
        store = _store(config, write)
        if store is None:
            return found
        with store:
            for subscriber in store.subscribers(source.name, statuses=_MAILED):
                if not source.matches(subscriber.attributes):
                    continue
                if address_key(subscriber.email) in blocked:
                    found.suppressed += 1
                else:
                    found.recipients.append(subscriber.recipient())
        return found
    found = load_recipients(source or [], settings.suppression, where=f"targets.{name}.recipients")
    store = _store(config, write)
    if store is None:
        return found
    with store:
        known = store.sync(name, found.recipients, source="csv") if write else _known(store, name)
    kept = []
    for recipient in found.recipients:
        row = known.get(address_key(recipient.email))
        if row is None:
            kept.append(recipient)
        elif row.status in ENDED:
            found.suppressed += 1
        else:
            kept.append(_with_id(recipient, row.id))
    found.recipients = kept
    return found


def _known(store: SubscriberStore, list_name: str) -> dict[str, Subscriber]:
    return {address_key(s.email): s for s in store.subscribers(list_name)}


def _with_id(recipient: Recipient, subscriber_id: str) -> Recipient:
    return Recipient(recipient.email, recipient.name, recipient.fields, id=subscriber_id)


def _store(config: Config, write: bool) -> SubscriberStore | None:
    """The store; read-only callers get None when there is no database yet (nothing to read)."""
    if not write and not config.database_url:
        from .ledger import LEDGER_FILE  # the store lives in the ledger's database

        if not (config.state_dir / LEDGER_FILE).is_file():
            return None
    return SubscriberStore.from_config(config)
