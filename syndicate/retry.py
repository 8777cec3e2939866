"""How long to wait before trying again: the one backoff rule every layer uses.

Three layers retry, each with its own numbers but the same rule: the dispatch loop (a message
an SMTP relay refused for now, `Pacing.retry_delay` doubling up to `retry_delay_max`), the HTTP
targets (a 5xx, a 429 or a failed connection, a second doubling up to a minute, a server's
`Retry-After` honoured) and the daemon (a job whose send left messages pending, a minute doubling
up to an hour). Each holds one `Backoff`; only the numbers differ, never the formula.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]

# Past this many doublings any float delay is already infinite; capping the exponent keeps a
# long-failing job (the daemon retries without end) from raising OverflowError.
_MOST_DOUBLINGS = 1023


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff: `first` seconds after the first failure, doubling after each
    further one, never more than `cap`, then spread by `jitter`.

    - `first`: the wait after one failure. Short enough that a blip costs little, long enough
      that the other side has a moment to recover.
    - `cap`: the longest wait from doubling alone. Without it a long outage would push the next
      try out by days, long after the other side is back.
    - `jitter`: the (low, high) factors the capped wait is multiplied by, drawn uniformly. Many
      senders (parallel connections, several sites on one relay) refused at the same moment
      would otherwise all come back at the same moment and be refused together again. (1, 1),
      the default, is no spread: a wait a person reads in a log stays a round number.
    - `asked_cap`: the longest wait a server may ask for (HTTP `Retry-After`), which replaces
      the computed one: the server knows when it will take more, but one asking for a day must
      not hold a whole send. None: `cap`.
    - `uniform`: the random source for `jitter` (`random.uniform`'s signature), so a test can
      make the waits deterministic.
    """

    first: float
    cap: float
    jitter: tuple[float, float] = (1.0, 1.0)
    asked_cap: float | None = None
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False, repr=False)

    def __post_init__(self) -> None:
        low, high = self.jitter
        if self.first < 0 or self.cap < 0 or not 0 <= low <= high:
            raise ValueError(f"not a backoff: first={self.first}, cap={self.cap}, jitter={self.jitter}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first failure).

        `retry_after`, when the server said how long to wait, is honoured as asked (never
        negative, at most `asked_cap`), without jitter: it already names a moment.
        """
        if attempt < 1:
            raise ValueError(f"attempt {attempt}: attempts count from 1")
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap if self.asked_cap is None else self.asked_cap)
        grown = min(self.first * 2.0 ** min(attempt - 1, _MOST_DOUBLINGS), self.cap)
        low, high = self.jitter
        return grown if low == high == 1.0 else grown * self.uniform(low, high)
