"""The delivery loop: consult the ledger, mark in flight, send, record the outcome.

Per message: already sent (or failed, or unknown under the `skip` policy) is skipped unless
`resend`; otherwise the row is claimed (committed `in_flight` by a compare-and-set on its status,
see `Ledger.mark_in_flight`), the target sends, and the outcome is committed. A message another
process claimed since the draft's rows were read is skipped (`Report.elsewhere`): not sent, not
failed. A `retry` outcome (SMTP 4xx, a dropped connection) goes back in the queue with an
exponential backoff, and after two retries in a row every connection also slows down, the way
a rate-limited relay asks. A message still refused after `max_attempts` stays `retry` in the
ledger for the next run. An `unknown` outcome (the connection lost before the server's answer
to a message it may hold) is recorded as such and never retried here: `schedule.unknown`
decides on the next run, as for a crash. `error_threshold` failures in a row pause the send:
nothing more is taken, what was not sent stays pending, and the next run resumes where this
one stopped. A `stop` event (the daemon's SIGTERM, the first Ctrl-C of `syndicate send`) ends
the run the same way once the messages in flight finish: every wait (a retry's backoff, the rate
limit, the target's own retry waits) ends at once, a message waiting to be retried stays `retry`,
and nothing new goes out. The targets get the event too (`open(stop)`): a `Stop` lets a
second Ctrl-C cut their send in progress short, which they report as `unknown` (it may have
gone out) or `retry` (it did not), so no row is left `in_flight` by a stop. A read-only
ledger (a dry run's) is consulted but never written.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Literal

from .deliver import (
    ClaimedAtHandOver,
    HandOverFailed,
    Message,
    MessageKey,
    Pacing,
    Result,
    Target,
    handing_over,
)
from .errors import DeliveryError, SyndicateError
from .ledger import CLAIMABLE, EVERY_STATUS, Ledger
from .retry import Backoff

UnknownPolicy = Literal["skip", "resend"]
# Temporary refusals in a row (450 "too much mail", 421, 451...) that mean the relay is
# rate-limiting the whole batch, not one reader: pause within seconds and leave the rest pending,
# rather than backing off silently for an hour.
STORM = 3
WAIT_NOTICE = 5.0  # a wait longer than this (seconds) is announced through `on_wait`
CHUNK = 1000  # messages whose ledger rows are read at once (`_due`)
OnWait = Callable[[float, str], None]
Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass
class Report:
    """What one dispatch did on one target."""

    target: str
    sent: int = 0
    failed: int = 0
    pending: int = 0
    skipped: int = 0
    unknown: int = 0
    recovered: int = 0
    elsewhere: int = 0  # of `skipped`: claimed by another process between the read and the claim
    paused: bool = False
    stopped: bool = False  # a `stop` event ended the run before its list did
    problems: list[Result] = field(default_factory=list)
    error: str = ""  # why the target could not be used at all, if it could not
    pause_reason: str = ""  # why the run paused with messages left, when it did

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0 and self.unknown == 0 and not self.paused

    @property
    def why_pending(self) -> str:
        """Why messages were left for the next run, in a few words ("" when none were)."""
        if not self.pending:
            return ""
        if self.error:
            return self.error
        if self.stopped:
            return "stopped before the end of the list"
        last = f" (last: {self.problems[-1].detail})" if self.problems else ""
        if self.pause_reason:
            return self.pause_reason
        if self.paused:
            return f"paused after too many refusals in a row{last}"
        return f"still refused after every attempt{last}"


def dispatch(
    messages: Iterable[Message],
    target: Target,
    ledger: Ledger | None,
    *,
    resend: bool = False,
    unknown: UnknownPolicy = "skip",
    on_result: Callable[[Result], None] | None = None,
    on_wait: OnWait | None = None,
    stop: threading.Event | None = None,
    sleep: Sleep | None = None,
    clock: Clock = time.monotonic,
) -> Report:
    """Deliver `messages` through `target`; without a ledger (dry run) nothing is recorded.

    A target that cannot be reached, or a ledger that refuses a write, stops this dispatch only:
    the report says why (`error`) and counts what is left pending for the next run. Waits are
    on `stop` (so it ends them), unless `sleep` is given (tests pass a fake clock's); one longer
    than `WAIT_NOTICE` is told to `on_wait(seconds, why)` first, so nothing waits silently.
    """
    report = Report(target.name)
    due = _due(messages, ledger, resend, unknown, report)
    recorder = None if ledger is None or ledger.read_only else ledger
    run = _Run(target.pacing, due, recorder, report, on_result, sleep, clock)
    run.stop = stop or threading.Event()
    run.on_wait = on_wait
    run.claimable = claimable(resend, unknown)
    try:
        if recorder is not None:
            report.recovered = recorder.recover()
        run.drive(target)
    except DeliveryError as exc:
        report.error, report.paused = str(exc), True
    finally:
        if recorder is not None:  # the outcomes the ledger holds (`Ledger.mark`), however the run ended
            try:
                recorder.flush()
            except DeliveryError as exc:  # left in flight, handed over: the next run's `unknown`
                report.error, report.paused = report.error or str(exc), True
    report.pending += run.left_over()
    report.stopped = run.stop.is_set()
    return report


def _due(
    messages: Iterable[Message],
    ledger: Ledger | None,
    resend: bool,
    unknown: UnknownPolicy,
    report: Report,
) -> Iterator[Message]:
    """The messages to send now, with the ledger read a chunk at a time (`CHUNK` messages of one
    draft: `Ledger.statuses_of` asks for those recipients only), so a draft of any length holds
    one chunk of rows in memory, not the whole draft's. A recipient listed twice in a chunk gets
    it once; across chunks the readers come unique (readers.py), and a message that came again
    anyway finds the row its first copy left (sent, or claimed: the claim refuses it)."""
    nonce = secrets.token_hex(8)  # this run's resent copies' Message-IDs
    for group, chunk in _chunks(messages):
        seen: set[str] = set()
        wanted = {message.key.recipient for message in chunk}
        known = ledger.statuses_of(*group, wanted) if ledger is not None else {}
        for message in chunk:
            key = message.key
            if key.recipient in seen:
                continue
            seen.add(key.recipient)
            status = known.get(key.recipient, ("pending", ""))[0]
            if status == "in_flight":  # what `recover()` makes of it (a read-only ledger is not recovered)
                status = "unknown"
            if goes_out(status, False, unknown):
                yield message
            elif resend:  # settled, sent again on purpose: a new copy
                yield replace(message, fresh_id=nonce)
            else:
                report.skipped += 1


def _chunks(messages: Iterable[Message]) -> Iterator[tuple[tuple[str, str, str], list[Message]]]:
    """Consecutive messages of one draft on one target, at most `CHUNK` at a time."""
    chunk: list[Message] = []
    group: tuple[str, str, str] | None = None
    for message in messages:
        key = message.key
        draft = (key.channel, key.target, key.draft_key)
        if chunk and (draft != group or len(chunk) >= CHUNK):
            assert group is not None
            yield group, chunk
            chunk = []
        group = draft
        chunk.append(message)
    if chunk:
        assert group is not None
        yield group, chunk


def goes_out(status: str, resend: bool, unknown: UnknownPolicy) -> bool:
    """Whether a message whose ledger row says `status` (`pending`: no row) is sent in this run."""
    return resend or status in ("pending", "retry") or (status == "unknown" and unknown == "resend")


def claimable(resend: bool, unknown: UnknownPolicy) -> tuple[str, ...]:
    """The ledger statuses a message may be claimed from (`goes_out`, as a compare-and-set)."""
    if resend:
        return EVERY_STATUS
    return CLAIMABLE + (("unknown",) if unknown == "resend" else ())


# `_Run._send`'s answer for a message another process claimed first (a unique result object).
ELSEWHERE = Result(MessageKey("", "", "", ""), "failed", "claimed by another process")


class _Run:
    """State shared by the connections of one dispatch: queue, retries, pacing, counters."""

    def __init__(
        self,
        pacing: Pacing,
        due: Iterator[Message],
        ledger: Ledger | None,
        report: Report,
        on_result: Callable[[Result], None] | None,
        sleep: Sleep | None,
        clock: Clock,
    ) -> None:
        self.pacing = pacing
        # Jittered up to 20% later: parallel connections refused together do not all come back together.
        self.backoff = Backoff(pacing.retry_delay, pacing.retry_delay_max, jitter=(1.0, 1.2))
        self.due = due
        self.ledger = ledger
        self.report = report
        self.on_result = on_result
        self.sleep = sleep
        self.clock = clock
        self.lock = threading.Lock()
        self.retries: list[tuple[float, int, Message, int]] = []
        self.order = itertools.count()
        self.busy = 0
        self.exhausted = False
        self.in_a_row = 0
        self.refused_in_a_row = 0  # temporary refusals only: a relay rate-limiting the batch
        self.last_refusal = ""
        self.on_wait: OnWait | None = None
        self.next_slot = 0.0
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.claimable: tuple[str, ...] = CLAIMABLE

    def drive(self, target: Target) -> None:
        """Work the queue on `pacing.connections` connections, opened only if something is due."""
        first = next(self.due, None)
        if first is None:
            return
        self.due = itertools.chain([first], self.due)
        workers = max(1, self.pacing.connections)
        if workers == 1:
            self.work(target)
            return
        threads = [threading.Thread(target=self.work_guarded, args=(target,)) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.error is not None:
            raise self.error

    def work_guarded(self, target: Target) -> None:
        try:
            self.work(target)
        except BaseException as exc:
            with self.lock:
                self.error = self.error or exc
                self.report.paused = True

    def work(self, target: Target) -> None:
        with target.open(self.stop) as connection:
            while True:
                item = self._take()
                if item is None:
                    return
                if isinstance(item, float):
                    self._wait(item, f"before retrying ({self.last_refusal})")
                    continue
                message, attempt = item
                try:
                    self._pace()
                    result = None if self.stop.is_set() else self._send(connection, message)
                finally:
                    with self.lock:
                        self.busy -= 1
                if result is None:  # stopped while it waited for its turn: not sent, still due
                    with self.lock:
                        self.report.pending += 1
                    return
                if result is ELSEWHERE:  # another process claimed it first: its to send, not ours
                    with self.lock:
                        self.report.skipped += 1
                        self.report.elsewhere += 1
                    continue
                self._record(message, attempt, result)

    def _wait(self, seconds: float, why: str = "") -> None:
        """A wait that the run's stop ends (or the injected `sleep`); a long one is told first."""
        if seconds > WAIT_NOTICE and self.on_wait is not None:
            self.on_wait(seconds, why)
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.stop.wait(seconds)

    def _take(self) -> tuple[Message, int] | float | None:
        """Next (message, attempt); a float is a wait before asking again; None is the end."""
        with self.lock:
            if self.report.paused or self.error is not None or self.stop.is_set():
                return None
            now = self.clock()
            if self.retries and self.retries[0][0] <= now:
                _, _, message, attempt = heapq.heappop(self.retries)
                self.busy += 1
                return message, attempt
            if not self.exhausted:
                fresh = next(self.due, None)
                if fresh is not None:
                    self.busy += 1
                    return fresh, 1
                self.exhausted = True
            if self.retries:
                return max(0.0, self.retries[0][0] - now)
            if self.busy:
                return 0.01
            return None

    def _pace(self) -> None:
        if not self.pacing.rate:
            return
        with self.lock:
            now = self.clock()
            slot = max(self.next_slot, now)
            self.next_slot = slot + 1.0 / self.pacing.rate
        if slot > now:
            self._wait(slot - now)

    def _send(self, connection, message: Message) -> Result:
        ledger = self.ledger
        if (
            ledger is not None
            and ledger.claims_at_hand_over
            and getattr(connection, "claims_at_hand_over", False)
        ):
            return self._send_claiming_late(connection, message, ledger)
        if ledger is not None:
            try:
                claimed = ledger.mark_in_flight(message.key, message.content_hash, self.claimable)
            except DeliveryError:  # not recorded, so not sent: still due
                with self.lock:
                    self.report.pending += 1
                raise
            if not claimed:
                return ELSEWHERE
        mark = None if ledger is None else partial(ledger.mark_handed, message.key)
        return self._hand_over(connection, message, mark)

    def _send_claiming_late(self, connection, message: Message, ledger: Ledger) -> Result:
        """The claim made at the hand-over, with its mark (`Ledger.claim_handed`): one round trip
        a message on PostgreSQL instead of two. Until then nothing the server could keep has gone
        (SMTP: all but the final "."), so a claim lost there drops the session and the server
        keeps nothing; a message refused before its data is claimed afterwards, to record it."""
        claimed = False

        def claim() -> None:
            nonlocal claimed
            if claimed:  # a second transaction of the same attempt (a session dropped before ".")
                ledger.mark_handed(message.key)
            elif ledger.claim_handed(message.key, message.content_hash, self.claimable):
                claimed = True
            else:
                raise ClaimedAtHandOver("claimed by another process")

        try:
            result = self._hand_over(connection, message, claim, owned=lambda: claimed)
        except ClaimedAtHandOver:
            return ELSEWHERE
        if claimed:
            return result
        try:  # refused or failed before its data went: recorded as the claim-first path does
            won = ledger.mark_in_flight(message.key, message.content_hash, self.claimable)
        except DeliveryError:
            with self.lock:
                self.report.pending += 1
            raise
        return result if won else ELSEWHERE

    def _hand_over(
        self,
        connection,
        message: Message,
        mark: Callable[[], None] | None,
        owned: Callable[[], bool] = lambda: True,
    ) -> Result:
        """`connection.send(message)` with `mark` called at the hand-over; `owned()` says whether
        this run holds the message's claim (a late claim may not have been made yet)."""
        try:
            with handing_over(mark):
                return connection.send(message)
        except ClaimedAtHandOver:
            raise
        except HandOverFailed as exc:  # the ledger refused the write: never finished handing over
            with self.lock:
                self.report.pending += 1
            raise DeliveryError(str(exc)) from None
        except SyndicateError as exc:  # the payload could not be built (template, config)
            return Result(message.key, "failed", str(exc))
        except Exception as exc:
            if self.ledger is not None and owned():
                self.ledger.mark(message.key, "retry", f"{type(exc).__name__}: {exc}")
            raise

    def _record(self, message: Message, attempt: int, result: Result) -> None:
        again = result.outcome == "retry" and attempt < self.pacing.max_attempts
        slow_down = 0.0
        with self.lock:
            report = self.report
            if result.outcome == "sent":
                report.sent += 1
                self.in_a_row = self.refused_in_a_row = 0
            else:
                self.in_a_row += 1
                if result.outcome == "retry":
                    self.refused_in_a_row += 1
                    self.last_refusal = result.detail
                if again:
                    ready = self.clock() + self.backoff.delay(attempt)
                    heapq.heappush(self.retries, (ready, next(self.order), message, attempt + 1))
                else:
                    report.problems.append(result)
                    if result.outcome == "failed":
                        report.failed += 1
                    elif result.outcome == "unknown":
                        report.unknown += 1
                    else:
                        report.pending += 1
                if result.outcome == "unknown":
                    # The relay took a message and did not answer: feeding it more could only
                    # leave more in doubt. The rest of the batch stays pending for the next run.
                    report.paused = True
                    report.pause_reason = (
                        f"the relay stopped answering after taking a message ({result.detail})"
                    )
                elif result.outcome == "retry" and self.refused_in_a_row >= min(
                    STORM, self.pacing.error_threshold
                ):
                    report.paused = True
                    report.pause_reason = (
                        f"relay is rate-limiting (last: {result.detail}); run send again later"
                    )
                elif self.in_a_row >= self.pacing.error_threshold:
                    report.paused = True
                elif result.outcome == "retry" and self.in_a_row >= 2:
                    # Short: a relay that keeps refusing is a storm, and pauses the run instead.
                    slow_down = min(self.backoff.delay(self.in_a_row - 1), WAIT_NOTICE)
        if self.ledger is not None:  # counted first: if this write fails, the report still tells
            self.ledger.mark(message.key, result.outcome, result.detail or None)
        if self.on_result is not None:
            self.on_result(result)
        if slow_down:
            self._wait(slow_down, f"slowing down after {self.in_a_row} refusals in a row ({result.detail})")

    def left_over(self) -> int:
        """Messages a paused run did not get to (queued retries and the rest of the list)."""
        return len(self.retries) + sum(1 for _ in self.due)
