"""The catch-up decisions: what the daemon does with a send, from its time and the ledger alone.

A send's time is either ahead (it waits for it), just passed (at most `plan.ON_TIME` late: on
time, it goes now), or passed longer ago, while the daemon was down or before it first saw the
send: then `schedule.catch_up` decides (`skip` records it as skipped, `send` sends it now, a
window like `2d` sends it if at most that late; a late digest then holds only the articles that
young). What the ledger says comes first: a settled draft is left alone, a `started` one is
finished now.

These functions are pure (no scheduler, no thread, no clock: `now` is an argument), so every
rule is unit-tested in tests/test_daemon_catchup.py; the daemon turns each decision into a job
queued, a job dropped, or a draft recorded as skipped. The lateness rules themselves
(`may_catch_up`, `catch_up_since`, `missed_reason`) are the planner's, which `send --due` uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import Config
from ..ledger import DraftState
from ..plan import catch_up_since, may_catch_up, missed_reason

__all__ = ["Decision", "Leave", "Run", "Skip", "article_decision", "digest_decision"]


@dataclass(frozen=True)
class Run:
    """Queue the send at `at`: its due time while that is ahead (it waits), else now. A late
    digest holds only articles published since `since` (None: no limit)."""

    at: datetime
    since: datetime | None = None


@dataclass(frozen=True)
class Skip:
    """Missed for good under the catch-up policy: recorded as skipped, `reason` saying by how much."""

    reason: str


@dataclass(frozen=True)
class Leave:
    """Nothing to queue: the ledger has it settled, or another job finishes it. `reason` is what
    the log says when a queued job is dropped for it (None: nothing worth a line)."""

    reason: str | None = None


Decision = Run | Skip | Leave


def article_decision(
    config: Config, due: datetime, now: datetime, state: DraftState | None, queued: datetime | None
) -> Decision:
    """One article's send on one route, due at its publish date. `state` is its draft's in the
    ledger, `queued` when its job is queued now (None: not queued)."""
    if state in ("finished", "skipped"):
        return Leave(f"already {state}")
    if state == "started":  # a run was interrupted (stopped, target down): finish it
        return Run(now)
    if due > now:
        return Run(due)
    if queued is not None and queued <= now:  # already waiting for its turn
        return Run(queued)
    if may_catch_up(config, now - due):
        return Run(now)
    return Skip(missed_reason(config, now - due))


def digest_decision(
    config: Config, end: datetime, now: datetime, state: DraftState | None, went_out: bool
) -> Decision:
    """The latest digest of a route, due at `end` (its window's end), when the daemon starts.
    `went_out`: the ledger has messages of it sent (a draft from before draft states)."""
    if state in ("started", "finished", "skipped") or went_out:  # a started one is resumed
        return Leave()
    late = now - end
    if may_catch_up(config, late):  # on time (`ON_TIME`), or as late as the policy allows
        return Run(now, since=catch_up_since(config, now, late))
    return Skip(missed_reason(config, late))
