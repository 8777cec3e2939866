"""`Runner`: the daemon as the CLI runs it, with stop and reload for its signal handlers.

The CLI wires SIGTERM and SIGINT to `stop()` and SIGHUP to `reload()` (each on a thread of its
own: a handler may interrupt the very lock `Event.set()` needs). A reload stops the daemon the
same careful way a stop does, then starts a new one on the config read again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..config import Config
from ..errors import StateError, SyndicateError
from .events import Log, emit
from .service import Daemon

__all__ = ["Runner"]


class Runner:
    """The daemon as `syndicate daemon` runs it: `stop()` (SIGTERM, SIGINT) ends it; `reload()`
    (SIGHUP) stops the daemon the same careful way, reads the config again and starts anew. A
    config that no longer loads is logged and the one loaded before is kept, so a typo made
    while the daemon runs never stops it."""

    def __init__(self, load: Callable[[], Config], log: Log, *, new_ledger: bool = False) -> None:
        self.load = load
        self.log = log
        self.new_ledger = new_ledger
        self.config = load()
        self._stopping = False
        self._reloading = threading.Event()
        self._current: Daemon | None = None

    def run(self) -> None:
        previous: Config | None = None  # the config to go back to if a reloaded one cannot start
        while True:
            self._current = Daemon(self.config, self.log, new_ledger=self.new_ledger)
            if self._stopping:  # a SIGTERM during a reload: `stop()` may have reached the old one
                break
            try:
                self._current.run()
            except SyndicateError as exc:
                if previous is None:
                    raise
                self._failed(exc, "back to the config loaded before")
                self.config, previous = previous, None
                continue
            if self._current.lost_leadership:  # exit non-zero: a supervisor restarts it, as a standby
                raise StateError("lost the leader lock (the database connection dropped)")
            if self._stopping or not self._reloading.is_set():
                break
            self._reloading.clear()
            try:
                self.config, previous = self.load(), self.config
                emit(self.log, self.config, "reloaded")
            except SyndicateError as exc:
                self._failed(exc, "the config loaded before stays in use")
        emit(self.log, self.config, "stopped")

    def _failed(self, exc: SyndicateError, then: str) -> None:
        emit(self.log, self.config, "failed", reason=f"{exc}; {then}".replace("\n", "; "))

    def stop(self) -> None:
        self._stopping = True
        if self._current is not None:
            self._current.stop()

    def reload(self) -> None:
        self._reloading.set()
        if self._current is not None:
            self._current.stop()
