"""One writer per state folder: `syndicate send` and `syndicate daemon` take turns with it.

The lock is `daemon.lock` in the state folder (its name from when only the daemon took it), an
exclusive `flock` held for as long as the run lasts; the kernel lets go of it when the process
ends, however it ends. The file names its holder as one line, `<pid> <what>` (`send` or
`daemon`; a file holding a pid alone was written by an older daemon), and is emptied when the
holder lets go, so that a name read while the lock is held is the holder's.

`syndicate status` peeks with a shared lock for an instant: a run that finds the lock taken and
the file empty or naming a process that is gone is looking at that peek (or at a holder about to
write its name), and tries again at once.

A second `send` waits for the first (it reads the ledger after it, and finds sent what the first
sent); a `send` while the daemon runs is refused, the daemon's jobs do the sending; a daemon
waits for a `send` (so a SIGHUP reload never loses the folder to one), and refuses to start
beside another daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from .errors import StateError
from .state import private_dir, private_file

LOCK_FILE = "daemon.lock"
Kind = Literal["send", "daemon"]
BRIEF = 0.5  # how long a holder that is not worth waiting for is given to let go (a peek, a restart)
POLL = 0.1


@dataclass(frozen=True)
class Holder:
    pid: str
    what: Kind

    def __str__(self) -> str:
        return f"pid {self.pid} (syndicate {self.what})"


class Stopped(Exception):
    """The wait for the lock was ended by a stop request (a signal)."""


class StateLock:
    """The held lock; `release()` (or closing the process) lets go."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(OSError):  # emptied first: the name must not outlive the holder
            handle.seek(0)
            handle.truncate()
            handle.flush()
        handle.close()

    # The daemon kept the lock as a file object: it still closes it.
    close = release

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_state_folder(
    state_dir: Path,
    what: Kind = "daemon",
    *,
    wait: float | None = None,
    stop: threading.Event | None = None,
    on_wait: Callable[[Holder], None] | None = None,
) -> StateLock:
    """Take the state folder for `what`. Another `send` holding it is waited for (`wait`
    seconds at most, None: as long as it takes; `on_wait` is told once); a daemon holding it
    refuses a `send`, and another daemon is refused too (StateError, one line). A `stop` set
    while waiting raises `Stopped`."""
    path = private_file(private_dir(state_dir) / LOCK_FILE)
    handle = path.open("r+", encoding="utf-8")
    started = time.monotonic()
    told = False
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                pass
            found = _read_holder(handle)
            waited = time.monotonic() - started
            if found is not None and (found.what == "send" or what == "send"):
                if what == "send" and found.what == "daemon":
                    raise StateError(_refused(state_dir, what, found))
                if wait is not None and waited >= wait:
                    raise StateError(_busy(state_dir, found, wait))
                if not told and on_wait is not None:
                    on_wait(found)
                told = True
            elif waited >= BRIEF:  # another daemon (or a holder that never says who it is)
                raise StateError(_refused(state_dir, what, found))
            if stop is not None:
                if stop.wait(POLL):
                    raise Stopped()
            else:
                time.sleep(POLL)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {what}\n")
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return StateLock(handle)


def holder(state_dir: Path) -> Holder | None:
    """Who holds this state folder now, or None when nobody does. Takes a shared lock for an
    instant, as `syndicate status` always has."""
    path = state_dir / LOCK_FILE
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        for _ in range(int(BRIEF / POLL)):
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None
            except OSError:
                found = _read_holder(handle)
                if found is not None:
                    return found
            time.sleep(POLL)  # taken, its holder not named yet: it is writing its name
    return Holder("?", "daemon")


def running_daemon(state_dir: Path) -> str | None:
    """The pid of the daemon holding this state folder, or None when none does (a `send`
    holding it is not a daemon)."""
    found = holder(state_dir)
    return found.pid if found is not None and found.what == "daemon" else None


def _read_holder(handle: IO[str]) -> Holder | None:
    """The holder the file names; None when it names nobody alive (emptied, or stale)."""
    handle.seek(0)
    words = handle.read().split()
    if not words or not words[0].isdigit():
        return None
    pid = words[0]
    what: Kind = "send" if words[1:2] == ["send"] else "daemon"  # a pid alone: an older daemon
    if not _alive(int(pid)):
        return None
    return Holder(pid, what)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _busy(state_dir: Path, holder: Holder, wait: float) -> str:
    if not wait:
        return (
            f"{state_dir}: {holder} is running on this state folder; run again once it has finished, "
            "or let this one wait for it (expected one send at a time per state folder)"
        )
    return (
        f"{state_dir}: {holder} still holds this state folder after waiting {wait:g} s; run again "
        "once it has finished, or wait longer (expected one send at a time per state folder)"
    )


def _refused(state_dir: Path, what: Kind, holder: Holder | None) -> str:
    if holder is None:
        return (
            f"{state_dir}: another syndicate process holds this state folder; "
            "stop it first (expected one daemon or send at a time per state folder)"
        )
    if what == "daemon":
        return (
            f"{state_dir}: another syndicate daemon is running on this state folder (pid {holder.pid}); "
            "stop it first (expected one daemon per state folder)"
        )
    return (
        f"{state_dir}: the syndicate daemon (pid {holder.pid}) is running on this state folder and "
        "sends what is due itself; stop it first to send by hand (expected one daemon or send at a "
        "time per state folder)"
    )
