"""Delivery targets behind one small protocol, chosen by the `type` of a config target.

A `Message` is lazy: it carries its ledger key, a content hash and a way to build its payload,
so a send to 50,000 recipients holds one built message per connection, never 50,000.
A `Target` opens a `Connection` per batch (one SMTP session, one HTTP session) whose
`send(message)` reports a `Result`: sent, retry (try again later), failed (do not), or unknown
(the server may have it: the connection was lost before its answer). `open(stop)` hands the
connection the run's stop event, so a wait of its own (an HTTP retry's backoff) ends when the
run is asked to stop, the message then `retry`: it was not sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, get_args

from ..errors import ConfigError, DeliveryError
from ..keys import MessageKey
from ..naming import named_folder
from ..plugins import load_all
from ..recipients import SubscriberList
from ..validation import Strict

if TYPE_CHECKING:
    from ..config import Config

Payload = EmailMessage | dict[str, Any]
Verdict = Literal["sent", "retry", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery to one recipient; `build()` makes the payload only when it is about to go out."""

    key: MessageKey
    content_hash: str
    build: Callable[[], Payload]
    # The SMTP envelope sender (MAIL FROM) when it is not the target's own: a reader's VERP
    # bounce address (compose/mime.py `envelope_sender`).
    envelope_sender: str | None = None
    # A deliberate `--resend` of a message the ledger has settled: that run's nonce, which gives
    # it a new Message-ID (else a mailbox provider drops it as a duplicate of the first copy),
    # the same for every attempt of the run. "": a first send, a retry, or an `unknown` message
    # sent again, which keep their Message-ID (the server may hold it: a duplicate is dropped).
    fresh_id: str = ""


@dataclass(frozen=True)
class Result:
    key: MessageKey
    outcome: Verdict
    detail: str = ""


@dataclass(frozen=True)
class Pacing:
    """How the dispatch loop drives a target: parallel connections, rate, retries, pause."""

    connections: int = 1
    rate: float | None = None
    error_threshold: int = 10
    max_attempts: int = 5
    retry_delay: float = 30.0
    retry_delay_max: float = 900.0


class Connection(Protocol):
    def send(self, message: Message) -> Result: ...


class Target(Protocol):
    """A configured destination; `open()` is a context manager yielding one connection."""

    name: str
    pacing: Pacing

    def open(self, stop: threading.Event | None = None) -> AbstractContextManager[Connection]: ...


class HandOverFailed(Exception):
    """The ledger could not record that a message's data is with the server. The target stops
    handing it over (SMTP sends no final "."), and the dispatch stops as for any ledger failure."""


class ClaimedAtHandOver(HandOverFailed):
    """A claim made at the hand-over (`Ledger.claim_handed`) found the message claimed or sent by
    another process: the target stops handing it over, as for `HandOverFailed`, and the dispatch
    counts it as another process's to send."""


# The dispatch's "data handed over" callback for the message this thread is sending.
_handing = threading.local()


@contextmanager
def handing_over(callback: Callable[[], None] | None) -> Iterator[None]:
    """While a message is sent: `handed()` calls `callback` (the ledger's `mark_handed`)."""
    _handing.callback = callback
    try:
        yield
    finally:
        _handing.callback = None


def handed() -> None:
    """A target calls this the moment a message's data is all with the server, and before it can
    take it (SMTP: just before the final "."; HTTP: the body written, before the answer). A
    crash before this point cannot have delivered the message, so it stays pending; after it,
    the message is in doubt (`unknown`). A second transaction of the same attempt calls it again."""
    callback = getattr(_handing, "callback", None)
    if callback is None:
        return
    try:
        callback()
    except DeliveryError as exc:
        raise HandOverFailed(str(exc)) from None  # ClaimedAtHandOver goes through as it is


def social_payload(message: Message, target: str, what: str, needs: tuple[str, ...] = ("text",)) -> Any:
    """The post a social-network target was given (`SocialPost.as_dict()`), or the failed
    `Result` it answers with: an email, or a post without the fields `needs`."""
    payload = message.build()
    if isinstance(payload, EmailMessage) or payload.get("kind") == "email":
        return Result(
            message.key, "failed", f"targets.{target}: {what} posts social posts only (got an email)"
        )
    if not all(payload.get(name) for name in needs):
        expected = " and ".join(needs)
        return Result(message.key, "failed", f"targets.{target}: not a social post (expected {expected})")
    return payload


@contextmanager
def not_handed() -> Iterator[None]:
    """Requests that publish nothing (an image's upload before the post, polling it, a login)
    do not tell the ledger the message is with the server: a crash then leaves it pending, to
    be sent in full next time, never `unknown`."""
    callback = getattr(_handing, "callback", None)
    _handing.callback = None
    try:
        yield
    finally:
        _handing.callback = callback


TARGETS_GROUP = "syndicate.targets"


class TargetSettings(Strict):
    """A target type: its settings model (the keys of `targets.<name>` in config.yaml), what it
    carries, and how it connects. One subclass per type, one module per subclass under
    `deliver/`, registered under the `syndicate.targets` entry-point group by its `type` name;
    `config.py` builds the `targets:` schema from that registry and knows no type itself.

    A subclass declares `type: Literal["name"]`, and sets the class variables below."""

    type: str
    # How an error names it: "an smtp target, which sends email".
    what: ClassVar[str] = "a target"
    # Whether an email channel may send through it, and the social networks whose posts it takes
    # (None: any network's, as a file or a JSON body).
    takes_email: ClassVar[bool] = True
    # Mails readers for real (smtp): its emails must carry a working unsubscribe (config.py).
    mails_readers: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = None

    @classmethod
    def accepts(cls, network: str | None) -> bool:
        """Whether it carries an email channel's drafts (`network` None) or a network's posts."""
        if network is None:
            return cls.takes_email
        return cls.networks is None or network in cls.networks

    def missing(self, name: str, network: str | None) -> str | None:
        """What this target lacks to carry such drafts (a mail target with no readers), or None."""
        return None

    def connect(self, name: str, config: Config) -> Target:
        """The runtime target that delivers for the config target called `name`."""
        raise NotImplementedError(f"{type(self).__name__}.connect")


class MailTargetSettings(TargetSettings):
    """A target that takes an email as one MIME message per reader (smtp, outbox): it has the
    readers (`recipients`, less `suppression`), and a send makes one message for each."""

    recipients: list[str] | Path | SubscriberList | None = None
    suppression: Path | None = None

    def missing(self, name: str, network: str | None) -> str | None:
        if network is None and not self.recipients:
            return f"is {self.what.split(',')[0]} without recipients (expected targets.{name}.recipients)"
        return None


def target_types() -> dict[str, type[TargetSettings]]:
    """Every installed target type by name: syndicate's own and third-party ones alike."""
    types = load_all(TARGETS_GROUP, TargetSettings, "target type")
    if "outbox" not in types:
        raise ConfigError(
            f"no target types found (entry point group {TARGETS_GROUP} is empty: "
            "expected syndicate installed, e.g. pip install -e .)"
        )
    for name, model in types.items():
        tag = model.model_fields["type"].annotation
        if get_args(tag) != (name,):
            raise ConfigError(
                f"target type {name!r}: {model.__name__}.type is {tag} "
                f'(expected Literal["{name}"], the entry point\'s name)'
            )
    return types


def make_target(name: str, config: Config, dry_run_dir: Path | None = None) -> Target:
    """The target called `name` in config; with `dry_run_dir`, an outbox writing there instead."""
    settings = config.targets.get(name)
    if settings is None:
        known = ", ".join(sorted(config.targets)) or "none defined"
        raise DeliveryError(f"targets.{name}: no such target (expected one of: {known})")
    if dry_run_dir is not None:
        from .outbox import OutboxTarget

        return OutboxTarget(name, named_folder(dry_run_dir, name))
    return settings.connect(name, config)
