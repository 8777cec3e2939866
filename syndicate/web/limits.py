"""In-memory rate limits for the subscribe form: so many requests per key (a client IP, an
address) in any hour. One process holds them (`syndicate serve` is one process); a restart
forgets them, which only ever lets a few more through. The clock is `syndicate.clock.now()`."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

WINDOW = timedelta(hours=1)
# Every this many hits, keys whose requests have all left the window are forgotten.
SWEEP_EVERY = 1000


class RateLimit:
    """`allow(key, now)`: whether one more request fits `per_hour`, counting it if it does."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._hits: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def allow(self, key: str, now: datetime) -> bool:
        with self._lock:
            self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - WINDOW:
                hits.popleft()
            if len(hits) >= self.per_hour:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str, now: datetime) -> int:
        """Seconds until `key` may try again (at least 1)."""
        with self._lock:
            hits = self._hits.get(key)
            if not hits:
                return 1
            return max(1, int((hits[0] + WINDOW - now).total_seconds()) + 1)

    def _sweep(self, now: datetime) -> None:
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - WINDOW]:
            del self._hits[key]
