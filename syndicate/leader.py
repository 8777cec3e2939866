"""One leader among several daemons: the one holding a PostgreSQL advisory lock.

With `workers:`, several daemons (on several machines) may run over one database for
availability, but only one may schedule: APScheduler 3's job store must not be shared by two
running schedulers (both would run every job). The leader holds a session-level advisory lock on
a connection of its own; the others wait as standbys, asking every `standby_poll_seconds`. When
the leader's process dies, PostgreSQL ends its session and frees the lock, and a standby takes
over: no lease to expire, no clock to trust. A leader that loses its connection (the lock may
be someone else's by now) stops leading at once (`holds()`).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["Leadership", "lock_key"]


def lock_key(queue: str) -> int:
    """The advisory lock's key: one per queue (one publication's daemons), as a signed bigint."""
    digest = hashlib.sha256(f"syndicate daemon leader {queue}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """The advisory lock of `queue` on the database at `url`."""

    def __init__(self, url: str, queue: str) -> None:
        self.key = lock_key(queue)
        self.engine = create_engine(url, poolclass=pool.NullPool)
        self._conn: Connection | None = None

    def try_lead(self) -> bool:
        """Take the lock if it is free; True when this process leads (now or already)."""
        if self._conn is not None:
            return True
        try:
            conn = self.engine.connect()
        except SQLAlchemyError:
            return False  # the database is away: not the leader, try again later
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
            conn.commit()
        except SQLAlchemyError:
            conn.close()
            return False
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def wait_to_lead(self, every: float, stop: threading.Event) -> bool:
        """Wait until this process leads (True) or `stop` is set (False)."""
        while not stop.is_set():
            if self.try_lead():
                return True
            stop.wait(every)
        return False

    def holds(self) -> bool:
        """Whether the lock is still held: its connection still answers."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except SQLAlchemyError:
            self._conn = None
            return False
        return True

    def close(self) -> None:
        """Give the lock up (closing the session frees it)."""
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None
        self.engine.dispose()
