"""Outcomes held until the ledger's next write: what another reader sees meanwhile, what a crash
leaves, and the writes a message costs, on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, event, text

from syndicate.deliver import Message, MessageKey, Pacing, Result, handed
from syndicate.dispatch import dispatch
from syndicate.ledger import Ledger

DRAFT = ("weekly", "newsletter", "weekly:2026-11-23")


def _key(n: int) -> MessageKey:
    return MessageKey(*DRAFT, f"r{n}@example.org")


def _seen(url: str) -> dict[str, tuple[str, bool]]:
    """recipient -> (status, handed over) as another process reads the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT recipient, status, handed_at FROM deliveries"))
            return {r.recipient: (r.status, r.handed_at is not None) for r in rows}
    finally:
        engine.dispose()


def _send_one(ledger: Ledger, n: int) -> None:
    ledger.mark_in_flight(_key(n), "h")
    ledger.mark_handed(_key(n))
    ledger.mark(_key(n), "sent")


def test_a_sent_outcome_goes_with_the_next_claim_and_a_crash_leaves_it_unknown(ledger_url):
    ledger = Ledger(ledger_url)
    _send_one(ledger, 0)
    assert _seen(ledger_url) == {"r0@example.org": ("in_flight", True)}  # held: not written yet
    _send_one(ledger, 1)  # its claim carried r0's outcome
    assert _seen(ledger_url) == {"r0@example.org": ("sent", False), "r1@example.org": ("in_flight", True)}
    ledger._held.clear()  # the process dies with r1's outcome held
    ledger.close()
    with Ledger(ledger_url) as after:
        assert after.recover() == 1  # in doubt, never pending: its data was with the server
        assert {d.key.recipient: d.status for d in after.recent()} == {
            "r0@example.org": "sent",
            "r1@example.org": "unknown",
        }


def test_retry_and_unknown_are_written_at_once_with_what_was_held(ledger_url):
    with Ledger(ledger_url) as ledger:
        _send_one(ledger, 0)
        ledger.mark_in_flight(_key(1), "h")
        ledger.mark(_key(1), "retry", "451 later")
        assert _seen(ledger_url) == {"r0@example.org": ("sent", False), "r1@example.org": ("retry", False)}
        assert ledger.mark_in_flight(_key(1), "h")  # claimed again from retry
        ledger.mark(_key(1), "failed", "550 no")
        assert ledger.message_counts(DRAFT) == {"failed": 1, "sent": 1}  # a read writes what is held
    assert _seen(ledger_url)["r1@example.org"] == ("failed", False)


def test_a_held_outcome_of_the_row_claimed_again_is_written_first(ledger_url):
    """`--resend` of a message listed twice: its second claim meets its own held outcome."""
    with Ledger(ledger_url) as ledger:
        _send_one(ledger, 0)
        assert ledger.mark_in_flight(_key(0), "h", ("pending", "retry", "sent"))
        assert _seen(ledger_url) == {"r0@example.org": ("in_flight", False)}
        assert [d.attempts for d in ledger.recent()] == [2]


class _Handing:
    def __init__(self, interrupt_at: int | None) -> None:
        self.sent, self.interrupt_at = 0, interrupt_at

    def send(self, message: Message) -> Result:
        if self.sent == self.interrupt_at:
            raise KeyboardInterrupt
        handed()
        self.sent += 1
        return Result(message.key, "sent", "250 ok")


class _LateHanding(_Handing):
    """A connection that, like SMTP's, never finishes a message whose hand-over was refused."""

    claims_at_hand_over = True


@dataclass
class _Target:
    interrupt_at: int | None = None
    name: str = "newsletter"
    pacing: Pacing = Pacing()
    late: bool = False

    @contextmanager
    def open(self, stop: threading.Event | None = None):
        yield (_LateHanding if self.late else _Handing)(self.interrupt_at)


def _messages(count: int):
    return [Message(_key(n), "h", dict) for n in range(count)]


def test_a_run_writes_what_it_holds_however_it_ends(ledger_url):
    with Ledger(ledger_url) as ledger:
        report = dispatch(_messages(3), _Target(), ledger)
        assert report.sent == 3
        assert set(_seen(ledger_url).values()) == {("sent", False)}  # the ledger still open
        with pytest.raises(KeyboardInterrupt):
            dispatch([Message(_key(n), "h", dict) for n in range(3, 6)], _Target(interrupt_at=1), ledger)
        seen = _seen(ledger_url)
        assert seen["r3@example.org"] == ("sent", False)  # held when the run was cut short
        assert seen["r4@example.org"] == ("in_flight", False)  # claimed, never handed: pending next run


@pytest.mark.parametrize("late", [False, True], ids=["claim first", "claim at hand-over"])
def test_writes_per_message(ledger_url, late):
    """What each message adds to a run (a run of 80 against one of 40, so what a run costs once
    cancels out). PostgreSQL: two statements, each its own transaction in one round trip (the
    claim carrying the last outcome, and the hand-over mark), no BEGIN or COMMIT; one, with a
    target that claims at the hand-over (SMTP). SQLite (no round trips: it runs in this
    process): two commits, the claim's transaction writing the last outcome first."""
    with Ledger(ledger_url) as ledger:
        counted = {"statements": 0, "commits": 0}

        @event.listens_for(ledger.engine, "before_cursor_execute")
        def _statement(*_args) -> None:
            counted["statements"] += 1

        @event.listens_for(ledger.engine, "commit")
        def _commit(conn) -> None:  # an autocommit connection sends no COMMIT
            counted["commits"] += conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"

        def run(count: int, draft: str) -> dict[str, int]:
            counted.update(statements=0, commits=0)
            messages = [
                Message(MessageKey(*DRAFT[:2], draft, f"r{n}@example.org"), "h", dict) for n in range(count)
            ]
            assert dispatch(messages, _Target(late=late), ledger).sent == count
            return dict(counted)

        small, large = run(40, "d1"), run(80, "d2")
    per_message = {name: (large[name] - small[name]) / 40 for name in counted}
    postgres = ledger_url.startswith("postgresql")
    assert per_message == (
        {"statements": 1.0 if late else 2.0, "commits": 0.0}
        if postgres
        else {"statements": 3.0, "commits": 2.0}
    )


def test_a_claim_lost_at_the_hand_over_is_never_finished(pg_database):
    """Another process claims a message between this run's read of the ledger and its hand-over
    (PostgreSQL: where claims are made at the hand-over, a round trip saved): the late claim
    finds it taken, the connection never finishes it (for SMTP: no final "."), and the run
    counts it as the other's. The other message goes out."""
    ledger_url = pg_database
    with Ledger(ledger_url) as ours, Ledger(ledger_url) as theirs:
        assert ours.claims_at_hand_over
        target = _Target(late=True)
        connection = _LateHanding(None)

        @contextmanager
        def opened(stop=None):
            theirs.mark_in_flight(_key(0), "h")  # after `dispatch` read the ledger, before the send
            yield connection

        target.open = opened  # type: ignore[method-assign]
        report = dispatch(_messages(2), target, ours)
    assert (report.sent, report.elsewhere, connection.sent) == (1, 1, 1)
    assert _seen(ledger_url) == {"r0@example.org": ("in_flight", False), "r1@example.org": ("sent", False)}
