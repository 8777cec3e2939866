"""How a run is asked to stop: gently by a first signal, at once by a second.

`syndicate send` turns SIGINT and SIGTERM into a `Stop`. The first signal sets it, an ordinary
`threading.Event` to everything below (the dispatch loop, the targets' retry waits): the message
in flight finishes, waits before a retry end at once (a message waiting to be retried was not
sent: it is left `retry`), nothing new starts, and the rest stays pending for the next run. The
second signal stops at once: inside `cuttable()` (a target's network I/O: an HTTP POST, an SMTP
transaction) it raises `StoppedAtOnce`, which the target turns into the message's outcome
(`unknown` when it may have reached the server, `retry` when it cannot have), so no row is left
`in_flight`. Anywhere else (a wait, a ledger write, composing) the run is about to notice the
first signal anyway, so the second does nothing there and nothing half-written is left behind.
Later signals are ignored: stopping takes no longer than the bookkeeping of one message.

Only the main thread runs signal handlers, so only a send in the main thread can be cut short;
parallel connections (`connections: 2`) finish their messages in flight.

The first signal sets the event from a helper thread: `Event.set()` takes a lock that
`Event.wait()` holds for a moment, and a handler runs in the very thread that may hold it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StoppedAtOnce(KeyboardInterrupt):
    """Raised inside `cuttable()` by a second signal: give up the message going out."""

    def __init__(self) -> None:
        super().__init__("stopped at once")


class Stop(threading.Event):
    """A stop request that signals escalate; an `Event` to the code that only waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None  # the first signal, which the exit code reports
        self.at_once = False
        self._requested = False
        self._cuttable = False  # the main thread is in a send a second signal may cut short

    def is_set(self) -> bool:
        return self._requested or super().is_set()

    def request(self, signum: int) -> None:
        """What a signal handler calls (in the main thread)."""
        if not self._requested:
            self._requested, self.signum = True, signum
            threading.Thread(target=self.set, name="syndicate-stop", daemon=True).start()
            return
        if self.at_once:
            return
        self.at_once = True
        if self._cuttable:
            raise StoppedAtOnce()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command a signal ended: 130 for SIGINT."""
        return 128 + (self.signum or 0)


@contextmanager
def cuttable(stop: threading.Event | None) -> Iterator[None]:
    """Run the block so that a second signal may cut it short with `StoppedAtOnce`: only in the
    main thread, and only for a `Stop` (the daemon's plain event never escalates)."""
    if not isinstance(stop, Stop) or threading.current_thread() is not threading.main_thread():
        yield
        return
    stop._cuttable = True
    try:
        yield
    finally:
        stop._cuttable = False


NOTICE = b"syndicate: stopping after the message in flight (Ctrl-C again to stop at once)\n"


@contextmanager
def stop_on_signals(*signums: signal.Signals) -> Iterator[Stop]:
    """A `Stop` that `signums` request while the block runs; the previous handlers after it."""
    stop = Stop()

    def handle(signum: int, _frame: object) -> None:
        first = not stop.is_set()
        stop.request(signum)  # a second one may raise StoppedAtOnce here
        if first:  # said once the request is recorded, so a signal after it counts as the second
            os.write(2, NOTICE)  # not print(): the handler may interrupt a write to stderr

    previous = {signum: signal.signal(signum, handle) for signum in signums}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
