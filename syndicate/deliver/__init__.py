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
from typing import Any, Literal, Protocol

from ..config import Config
from ..errors import DeliveryError
from ..keys import MessageKey

Payload = EmailMessage | dict[str, Any]
Verdict = Literal["sent", "retry", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery to one recipient; `build()` makes the payload only when it is about to go out."""

    key: MessageKey
    content_hash: str
    build: Callable[[], Payload]


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
        raise HandOverFailed(str(exc)) from None


TargetFactory = Callable[[str, Any, Config], Target]
_TYPES: dict[str, TargetFactory] = {}


def register(*type_names: str) -> Callable[[TargetFactory], TargetFactory]:
    """Make a factory the builder for the config targets whose `type` is one of `type_names`."""

    def decorate(factory: TargetFactory) -> TargetFactory:
        for type_name in type_names:
            _TYPES[type_name] = factory
        return factory

    return decorate


def make_target(name: str, config: Config, dry_run_dir: Path | None = None) -> Target:
    """The target called `name` in config; with `dry_run_dir`, an outbox writing there instead."""
    _load_builtin_types()
    settings = config.targets.get(name)
    if settings is None:
        known = ", ".join(sorted(config.targets)) or "none defined"
        raise DeliveryError(f"targets.{name}: no such target (expected one of: {known})")
    if dry_run_dir is not None:
        from .outbox import OutboxTarget

        return OutboxTarget(name, dry_run_dir / name)
    factory = _TYPES.get(settings.type)
    if factory is None:
        known = ", ".join(sorted(_TYPES))
        raise DeliveryError(
            f"targets.{name}.type: {settings.type!r} cannot deliver yet (expected one of: {known})"
        )
    return factory(name, settings, config)


def _load_builtin_types() -> None:
    from . import linkedin, outbox, smtp, webhook  # noqa: F401  (each registers its types on import)
