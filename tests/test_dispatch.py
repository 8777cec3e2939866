"""The delivery loop against misbehaving loopback SMTP servers, with a real SQLite ledger.

Each failure-mode test ends with every deliverable recipient holding exactly one copy.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from syndicate.deliver import MessageKey, make_target
from syndicate.dispatch import dispatch
from syndicate.ledger import Ledger, sqlite_url

from .conftest import loopback_smtp
from .sample_mail import addresses, messages_for

TESTS = Path(__file__).resolve().parent


class FakeTime:
    """A clock that `sleep` advances, so backoffs are real decisions but take no time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def ledger(tmp_path):
    with Ledger(sqlite_url(tmp_path / "state" / "ledger.sqlite")) as ledger:
        yield ledger


def smtp_target(site, port: int, **options):
    site.data["targets"]["newsletter"] = loopback_smtp(
        port, ["unused@example.org"], **{"timeout": 5, "retry_delay": 10, **options}
    )
    return make_target("newsletter", site.config())


def send(target, ledger, recipients, fake: FakeTime | None = None, **options):
    fake = fake or FakeTime()
    return dispatch(messages_for(recipients), target, ledger, sleep=fake.sleep, clock=fake.clock, **options)


def test_server_closing_every_500_messages(site, smtp_sink, ledger):
    sink, port = smtp_sink
    sink.close_after = 500
    everyone = addresses(1200)
    report = send(smtp_target(site, port, per_connection=10_000), ledger, everyone)
    assert report.sent == 1200 and report.ok
    assert sink.copies() == {a: 1 for a in everyone}
    assert sink.connections == 3


def test_too_much_mail_part_way_pauses_within_seconds_and_the_next_run_sends_the_rest(
    site, smtp_sink, ledger
):
    sink, port = smtp_sink
    fake = FakeTime()
    window = {"until": None}

    def throttle(address, attempt):
        if window["until"] is None and len(sink.received) >= 300:
            window["until"] = fake.now + 100  # the relay's limit resets in 100 s
        if window["until"] is not None and fake.now < window["until"]:
            return "450 4.7.1 too much mail"
        return None

    sink.rcpt_reply = throttle
    everyone = addresses(600)
    waits: list[tuple[float, str]] = []
    target = smtp_target(site, port)
    report = dispatch(
        messages_for(everyone),
        target,
        ledger,
        sleep=fake.sleep,
        clock=fake.clock,
        on_wait=lambda seconds, why: waits.append((seconds, why)),
    )
    # A storm of temporary refusals pauses the run within seconds, not after an hour of backoff.
    assert report.paused and report.sent == 300 and report.pending == 300
    assert (
        report.why_pending == "relay is rate-limiting (last: 450 4.7.1 too much mail); run send again later"
    )
    assert fake.slept < 10 and waits == []  # no wait long enough to announce
    assert sum(sink.attempts.values()) - 300 == 3  # three refusals, then it stopped asking
    fake.now = window["until"]  # the relay's window resets; the user runs send again
    again = dispatch(messages_for(everyone), target, ledger, sleep=fake.sleep, clock=fake.clock)
    assert again.sent == 300 and again.skipped == 300 and again.ok
    assert sink.copies() == {a: 1 for a in everyone}


def test_rejected_transactions_are_reset_before_the_next_on_the_same_connection(site, smtp_sink, ledger):
    sink, port = smtp_sink
    rejected = {"reader00003@example.org", "reader00004@example.org", "reader00010@example.org"}
    sink.rcpt_reply = lambda address, attempt: (
        "554 5.7.1 transaction rejected" if address in rejected else None
    )
    everyone = addresses(20)
    report = send(smtp_target(site, port), ledger, everyone)
    assert report.failed == 3 and report.sent == 17
    assert sink.connections == 1 and sink.rsets == 3
    assert sink.copies() == {a: 1 for a in everyone if a not in rejected}


def test_451_on_a_first_attempt_is_retried_later(site, smtp_sink, ledger):
    sink, port = smtp_sink
    greylisted = set(addresses(30)[::3])
    sink.rcpt_reply = lambda address, attempt: (
        "451 4.7.1 greylisted" if address in greylisted and attempt == 1 else None
    )
    everyone = addresses(30)
    report = send(smtp_target(site, port), ledger, everyone)
    assert report.sent == 30 and report.ok
    assert sink.copies() == {a: 1 for a in everyone}
    assert all(sink.attempts[a] == 2 for a in greylisted)
    assert {d.key.recipient for d in ledger.recent(100) if d.attempts == 2} == greylisted


def test_550_for_one_recipient_is_reported_while_the_rest_go_out(site, smtp_sink, ledger):
    sink, port = smtp_sink
    gone = "reader00007@example.org"
    sink.rcpt_reply = lambda address, attempt: "550 5.1.1 mailbox unavailable" if address == gone else None
    everyone = addresses(15)
    target = smtp_target(site, port)
    report = send(target, ledger, everyone)
    assert (report.sent, report.failed) == (14, 1) and not report.ok
    assert [r.key.recipient for r in report.problems] == [gone]
    assert sink.copies() == {a: 1 for a in everyone if a != gone}
    [failure] = ledger.failures()
    assert failure.key.recipient == gone and failure.status == "failed"
    assert failure.last_error.startswith("550 5.1.1")
    again = send(target, ledger, everyone)
    assert (again.sent, again.skipped) == (0, 15) and sink.attempts[gone] == 1


def test_error_threshold_pauses_and_the_next_run_resumes(site, smtp_sink, ledger):
    sink, port = smtp_sink
    sink.rcpt_reply = lambda address, attempt: (
        "421 4.3.2 service shutting down" if len(sink.received) >= 40 else None
    )
    everyone = addresses(100)
    target = smtp_target(site, port, error_threshold=5)
    report = send(target, ledger, everyone)
    assert report.paused and report.sent == 40 and report.pending == 60
    assert sink.attempts.total() < 50  # it stopped instead of burning through the list
    sink.rcpt_reply = None
    resumed = send(target, ledger, everyone)
    assert resumed.sent == 60 and resumed.skipped == 40 and resumed.ok
    assert sink.copies() == {a: 1 for a in everyone}


def test_a_second_send_sends_nothing_unless_resend(site, smtp_sink, ledger):
    sink, port = smtp_sink
    target = smtp_target(site, port)
    everyone = addresses(10)
    assert send(target, ledger, everyone).sent == 10
    assert send(target, ledger, everyone).skipped == 10
    assert sink.copies() == {a: 1 for a in everyone} and sink.connections == 1  # nothing to do: no connection
    assert send(target, ledger, everyone, resend=True).sent == 10
    assert sink.copies() == {a: 2 for a in everyone}


def test_in_flight_rows_handed_over_become_unknown_and_are_skipped_by_default(site, smtp_sink, ledger):
    sink, port = smtp_sink
    target = smtp_target(site, port)
    everyone = addresses(5)
    crashed = MessageKey("weekly", "newsletter", "digest-1", everyone[0])
    ledger.mark_in_flight(crashed, "hash-of-digest-1")
    ledger.mark_handed(crashed)  # its data was with the server when the run stopped
    report = send(target, ledger, everyone)
    assert (report.recovered, report.skipped, report.sent) == (1, 1, 4)
    assert [d.key for d in ledger.unknowns()] == [crashed]
    report = send(target, ledger, everyone, unknown="resend")
    assert report.sent == 1 and sink.copies() == {a: 1 for a in everyone}
    assert ledger.unknowns() == []


def test_in_flight_rows_never_handed_over_are_sent_again_under_either_policy(site, smtp_sink, ledger):
    """A run that stopped before the data all went out cannot have delivered it: no doubt."""
    sink, port = smtp_sink
    target = smtp_target(site, port)
    everyone = addresses(5)
    crashed = MessageKey("weekly", "newsletter", "digest-1", everyone[0])
    ledger.mark_in_flight(crashed, "hash-of-digest-1")
    report = send(target, ledger, everyone)  # schedule.unknown: skip
    assert (report.recovered, report.skipped, report.sent) == (0, 0, 5)
    assert ledger.unknowns() == [] and sink.copies() == {a: 1 for a in everyone}


def test_every_message_is_marked_handed_over_before_the_server_can_take_it(site, smtp_sink, ledger, tmp_path):
    """The mark is committed after the data and before the final ".": at RCPT the row is in
    flight and not handed; when the relay has the whole message (its DATA handler runs after the
    ".") the row is already handed. So a crash before the mark cannot have delivered it."""
    sink, port = smtp_sink
    seen: dict[str, list[tuple[str, bool]]] = {}
    database = tmp_path / "state" / "ledger.sqlite"

    def row(address: str) -> tuple[str, bool]:
        with sqlite3.connect(database) as db:
            status, handed = db.execute(
                "SELECT status, handed_at FROM deliveries WHERE recipient = ?", (address,)
            ).fetchone()
        return status, handed is not None

    def at(stage: str):
        def look(address, attempt):
            seen.setdefault(address, []).append((stage, *row(address)))

        return look

    sink.rcpt_reply, sink.data_reply = at("RCPT"), at("DATA")
    everyone = addresses(3)
    report = send(smtp_target(site, port), ledger, everyone)
    assert report.sent == 3
    assert seen == {a: [("RCPT", "in_flight", False), ("DATA", "in_flight", True)] for a in everyone}
    assert {row(a) for a in everyone} == {("sent", False)}  # the outcome clears it


def test_parallel_connections_with_a_rate_limit(site, smtp_sink, ledger):
    sink, port = smtp_sink
    target = smtp_target(site, port, connections=3, rate=2000)
    everyone = addresses(200)
    report = dispatch(messages_for(everyone), target, ledger)
    assert report.sent == 200 and sink.copies() == {a: 1 for a in everyone}
    assert sink.connections == 3


def test_rate_limit_spaces_messages(site, smtp_sink):
    _, port = smtp_sink
    fake = FakeTime()
    report = send(smtp_target(site, port, rate=5), None, addresses(11), fake)
    assert report.sent == 11 and fake.slept == pytest.approx(2.0, abs=0.01)


def test_dry_run_writes_the_outbox_and_touches_no_server_or_ledger(site, tmp_path, smtp_sink):
    sink, port = smtp_sink
    smtp_target(site, port)
    target = make_target("newsletter", site.config(), dry_run_dir=tmp_path / "dry-run")
    report = dispatch(messages_for(addresses(3)), target, None)
    assert report.sent == 3 and sink.connections == 0
    files = sorted((tmp_path / "dry-run" / "newsletter").glob("*.eml"))
    assert len(files) == 3 and b"\r\n" in files[0].read_bytes()
    assert not (site.root / ".syndicate").exists()
