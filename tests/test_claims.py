"""Two runs on one state folder, or one ledger, never send a message twice (issue #13).

Real `syndicate send` and `syndicate daemon` processes against a loopback SMTP sink with 500
readers, counted per reader at the sink; and the ledger's claims (a compare-and-set on the
row's status, a unique violation on a new row) raced by two `Ledger` objects on one SQLite file
and on a real PostgreSQL server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import create_engine, make_url, text

from syndicate import clock
from syndicate.deliver import Message, MessageKey
from syndicate.deliver.outbox import OutboxTarget
from syndicate.dispatch import dispatch
from syndicate.ledger import Ledger, sqlite_url

from .conftest import SmtpSink, child_env, loopback_smtp, running_sink

READERS = [f"r{n:03d}@example.org" for n in range(500)]
REFUSED = set(READERS[1::2])  # 250 readers whose mailbox is full on the first run
ARTICLE = """---
title: 'Storm warning'
description: 'Gales expected.'
read_time: '3 mins'
publish_date: '{date}'
cta: 'Reply and tell us.'
---
Body of the storm warning.
"""


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def mailing_site(site, port: int, **settings) -> None:
    """One article, published yesterday, to 500 readers on a loopback SMTP sink; a refused
    message is not retried in the run (it stays `retry` for the next one)."""
    csv = site.root / "readers.csv"
    csv.write_text("email\n" + "".join(f"{r}\n" for r in READERS))
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]}}
    site.data["targets"] = {
        "newsletter": loopback_smtp(port, str(csv), max_attempts=1, error_threshold=1000, retry_delay=0)
    }
    site.data["schedule"] = {"catch_up": "send"}
    site.data.update(settings)
    site.write_config()
    yesterday = (clock.now() - timedelta(days=1)).replace(microsecond=0)
    site.article("storm-warning.md", ARTICLE.format(date=yesterday.isoformat()))


def syndicate(config_path: Path, *args: str, stderr: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "syndicate", "--config", str(config_path), *args]
    return subprocess.Popen(
        command,
        env=child_env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=stderr.open("w") if stderr else subprocess.PIPE,
        text=True,
    )


def leave_half_in_retry(site, sink: SmtpSink) -> None:
    """The first run: the sink answers 452 to the 250 readers of REFUSED and takes the rest."""
    sink.rcpt_reply = lambda address, _attempt: "452 4.2.2 mailbox full" if address in REFUSED else None
    first = syndicate(site.config_path, "send", "--all")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 1, out + err
    assert sink.copies() == {r: 1 for r in READERS if r not in REFUSED}
    with Ledger.from_config(site.config()) as ledger:
        assert ledger.counts() == {("letters", "newsletter"): {"sent": 250, "retry": 250}}


def held(gate: threading.Event) -> Callable[[str, int], None]:
    """A sink reply that holds the first RCPT until `gate` opens, then takes everyone."""

    def reply(_address: str, _attempt: int) -> None:
        gate.wait(60)
        return None

    return reply


def assert_each_reader_once(sink: SmtpSink) -> None:
    copies = sink.copies()
    duplicated = {r: n for r, n in copies.items() if n > 1}
    lost = [r for r in READERS if copies[r] == 0]
    assert (len(duplicated), len(lost)) == (0, 0), (duplicated, lost)
    assert copies == dict.fromkeys(READERS, 1)


def test_two_sends_at_once_over_250_retry_rows_send_each_reader_once(site, smtp_sink, tmp_path):
    sink, port = smtp_sink
    mailing_site(site, port)
    leave_half_in_retry(site, sink)
    gate = threading.Event()
    sink.rcpt_reply = held(gate)  # the first send to reach the sink waits there for the other
    logs = [tmp_path / "first.err", tmp_path / "second.err"]
    runs = [syndicate(site.config_path, "send", "--all", stderr=log) for log in logs]

    def said_waiting() -> bool:
        return any("waiting for pid" in log.read_text() for log in logs)

    wait_for(said_waiting, what="one send to wait for the other")
    gate.set()
    outs = [run.communicate(timeout=300)[0] for run in runs]
    errs = [log.read_text() for log in logs]
    assert [run.returncode for run in runs] == [0, 0], (outs, errs)
    assert "Traceback" not in "".join(errs)
    [(waiter, other)] = [(n, 1 - n) for n in (0, 1) if "waiting for" in errs[n]]
    state_dir = site.root / ".syndicate"
    assert errs[waiter].splitlines()[0] == (
        f"waiting for pid {runs[other].pid} (syndicate send) to finish with {state_dir}"
    )
    assert_each_reader_once(sink)
    # The one that waited found every message sent: 500 skipped, none sent.
    table = {line.split()[0]: line.split()[1:] for line in outs[waiter].splitlines()[1:2]}
    assert table == {"newsletter": ["0", "0", "0", "500"]}, outs[waiter]
    with Ledger.from_config(site.config()) as ledger:
        assert ledger.counts() == {("letters", "newsletter"): {"sent": 500}}


def test_a_send_waits_at_most_its_wait_and_no_wait_refuses_at_once(site, smtp_sink, tmp_path):
    sink, port = smtp_sink
    mailing_site(site, port)
    gate = threading.Event()
    sink.rcpt_reply = held(gate)
    first = syndicate(site.config_path, "send", "--all")
    wait_for(lambda: sink.attempts, what="the first send to reach the sink")
    try:
        for args in (["--no-wait"], ["--wait", "0.5"]):
            second = syndicate(site.config_path, "send", "--all", *args)
            out, err = second.communicate(timeout=60)
            assert second.returncode == 2, out + err
            lines = err.strip().splitlines()
            assert lines[-1].startswith(
                f"error: {site.root / '.syndicate'}: pid {first.pid} (syndicate send)"
            )
            assert "Traceback" not in err and "nothing" not in out
        # Ctrl-C while waiting: nothing sent, exit 130, no traceback.
        log = tmp_path / "third.err"
        third = syndicate(site.config_path, "send", "--all", stderr=log)
        wait_for(lambda: "waiting for pid" in log.read_text(), what="the third send to wait")
        third.send_signal(signal.SIGINT)
        out, _ = third.communicate(timeout=60)
        assert third.returncode == 130, out + log.read_text()
        assert out == "stopped by SIGINT while waiting: nothing sent\n"
        assert "Traceback" not in log.read_text()
    finally:
        gate.set()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    assert_each_reader_once(sink)


def daemon_process(site) -> subprocess.Popen:
    return syndicate(site.config_path, "daemon", "--log-format", "json")


def test_the_daemons_retry_with_a_users_send_due_sends_each_reader_once(site, smtp_sink):
    sink, port = smtp_sink
    mailing_site(site, port)
    leave_half_in_retry(site, sink)
    gate = threading.Event()
    sink.rcpt_reply = held(gate)  # the daemon's retry job is held at its first RCPT
    daemon = daemon_process(site)
    try:
        wait_for(lambda: sink.attempts.total() > 500, what="the daemon's retry job to reach the sink")
        user = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "send", "--due"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        gate.set()
        assert user.returncode == 2, user.stdout + user.stderr
        assert user.stderr.splitlines() == [
            f"error: {site.root / '.syndicate'}: the syndicate daemon (pid {daemon.pid}) is running on "
            "this state folder and sends what is due itself; stop it first to send by hand "
            "(expected one daemon or send at a time per state folder)"
        ]
        wait_for(lambda: sink.copies().total() >= 500, what="the daemon to send the 250")
        status = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "status"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert status.stdout.startswith(f"daemon: running (pid {daemon.pid})\n"), status.stdout
    finally:
        gate.set()
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["event"] == "sent" and e.get("sent") == 250 for e in events), events
    assert_each_reader_once(sink)


def test_a_daemon_waits_for_a_send_and_status_says_no_daemon_meanwhile(site, smtp_sink):
    sink, port = smtp_sink
    mailing_site(site, port)
    gate = threading.Event()
    sink.rcpt_reply = held(gate)
    user = syndicate(site.config_path, "send", "--all")
    wait_for(lambda: sink.attempts, what="the send to reach the sink")
    daemon = daemon_process(site)
    try:
        assert daemon.stdout is not None
        waiting = json.loads(daemon.stdout.readline())
        assert waiting["event"] == "waiting"
        assert waiting["reason"] == (
            f"waiting for pid {user.pid} (syndicate send) to finish with {site.root / '.syndicate'}"
        )
        status = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "status"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert status.stdout.startswith("daemon: not running\n"), status.stdout
        # SIGTERM to a daemon still waiting: it stops at once, exit 0, having started nothing.
        other = daemon_process(site)
        assert other.stdout is not None
        assert json.loads(other.stdout.readline())["event"] == "waiting"
        other.send_signal(signal.SIGTERM)
        out, err = other.communicate(timeout=60)
        assert other.returncode == 0, err
        assert [json.loads(line)["event"] for line in out.splitlines()] == ["stopped"]
        gate.set()
        out, err = user.communicate(timeout=300)
        assert user.returncode == 0, out + err
        ready = json.loads(daemon.stdout.readline())
        assert ready["event"] == "ready"
    finally:
        gate.set()
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
    assert daemon.returncode == 0
    assert_each_reader_once(sink)


# -- the claims themselves: two ledgers, no lock between them ---------------------------------


DRAFT = ("letters", "newsletter", "letters:storm-warning")
KEYS = [MessageKey(*DRAFT, r) for r in READERS[:200]]


def race(url: str, claim_as: Callable[[Ledger, MessageKey], bool]) -> list[set[MessageKey]]:
    """Two ledgers on `url`, each in its own thread, started together, each reading the
    draft's rows and claiming every key: what each claimed."""
    ledgers = [Ledger(url), Ledger(url)]
    start = threading.Barrier(2)
    claimed: list[set[MessageKey]] = [set(), set()]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        ledger = ledgers[n]
        try:
            ledger.statuses(*DRAFT)
            start.wait()
            claimed[n] = {key for key in KEYS if claim_as(ledger, key)}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for ledger in ledgers:
        ledger.close()
    assert errors == []
    return claimed


def test_two_ledgers_claiming_the_same_retry_rows_claim_each_once(ledger_url):
    with Ledger(ledger_url) as ledger:
        for key in KEYS:
            assert ledger.mark_in_flight(key, "h1")
            ledger.mark(key, "retry", "452 4.2.2 mailbox full")
    first, second = race(ledger_url, lambda ledger, key: ledger.mark_in_flight(key, "h2"))
    assert first & second == set()
    assert first | second == set(KEYS)
    with Ledger(ledger_url) as ledger:
        rows = ledger.deliveries_of(DRAFT)
    assert {(row.status, row.attempts) for row in rows} == {("in_flight", 2)}


def test_two_ledgers_making_the_same_new_rows_make_each_once_and_raise_nothing(ledger_url):
    first, second = race(ledger_url, lambda ledger, key: ledger.mark_in_flight(key, "h1"))
    assert first & second == set()
    assert first | second == set(KEYS)
    with Ledger(ledger_url) as ledger:
        assert ledger.counts() == {("letters", "newsletter"): {"in_flight": 200}}


def test_a_row_settled_or_made_by_another_ledger_is_not_claimed(ledger_url):
    """Deterministic: the second ledger read the rows before the first one claimed them."""
    new, retried, sent = KEYS[0], KEYS[1], KEYS[2]
    with Ledger(ledger_url) as first, Ledger(ledger_url) as second:
        for key in (retried, sent):
            first.mark_in_flight(key, "h1")
            first.mark(key, "retry", "452 4.2.2 mailbox full")
        assert second.statuses(*DRAFT) == {r.recipient: ("retry", "h1") for r in (retried, sent)}
        assert first.mark_in_flight(new, "h1") and first.mark_in_flight(retried, "h1")
        first.mark_in_flight(sent, "h1")
        first.mark(sent, "sent")
        first.flush()  # a sent outcome waits for the ledger's next write (`HELD`)
        # The second read them as `pending` (no row) and `retry`: each claim now finds them taken.
        assert [second.mark_in_flight(key, "h1") for key in (new, retried, sent)] == [False] * 3
        assert second.mark_in_flight(sent, "h1", claimable=("sent",))  # --resend takes it whatever
        first.mark(new, "sent")
        first.flush()
        assert {r.key.recipient: r.status for r in second.deliveries_of(DRAFT)} == {
            new.recipient: "sent",
            retried.recipient: "in_flight",
            sent.recipient: "in_flight",
        }


def test_a_message_claimed_elsewhere_mid_dispatch_is_skipped_not_sent_not_failed(tmp_path):
    """A dispatch that read its draft's rows, then meets messages another process claimed in
    the meantime: it sends the rest, reports those as skipped, and nothing as failed."""
    url = sqlite_url(tmp_path / "ledger.sqlite")
    keys = KEYS[:6]
    with Ledger(url) as other, Ledger(url) as ours:
        other.mark_in_flight(keys[1], "h")
        other.mark(keys[1], "retry", "452 4.2.2 mailbox full")
        read = ours.statuses_of

        def then_claimed(*args):  # the dispatch reads its chunk's rows; then the other claims
            found = read(*args)
            assert other.mark_in_flight(keys[1], "h")  # read as `retry` by our dispatch
            assert other.mark_in_flight(keys[3], "h")  # no row when our dispatch read it
            return found

        ours.statuses_of = then_claimed  # type: ignore[method-assign]

        def messages() -> Iterator[Message]:
            for key in keys:
                yield Message(key, "h", lambda key=key: {"to": key.recipient})

        outbox = tmp_path / "outbox"
        report = dispatch(messages(), OutboxTarget("newsletter", outbox), ours)
    assert (report.sent, report.skipped, report.elsewhere, report.failed, report.pending) == (4, 2, 2, 0, 0)
    assert report.ok
    written = sorted(json.loads(p.read_text())["to"] for p in outbox.glob("*.json"))
    assert written == sorted(k.recipient for n, k in enumerate(keys) if n not in (1, 3))


def test_two_sends_on_one_postgresql_ledger_without_the_lock_send_each_reader_once(
    site, postgres_url, tmp_path, capsys
):
    """Two state folders (so no lock between them: the later "workers" set-up) sharing one
    ledger on PostgreSQL, both sending the same 500 readers at once: the claims alone keep each
    reader to one copy."""
    sink = SmtpSink()
    sink.stall = lambda command, _address, _attempt: 0.002 if command == "RCPT" else 0
    name = f"claims_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    database = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        with running_sink(sink) as controller:
            mailing_site(site, controller.port, database_url=database)
            configs = []
            for n in (1, 2):
                data = {**site.data, "state_dir": str(tmp_path / f"state-{n}")}
                path = site.root / f"config-{n}.yaml"
                path.write_text(yaml.safe_dump(data), encoding="utf-8")
                configs.append(path)
            Ledger(database).close()  # its tables made once (two processes at once race to make them)
            runs = [syndicate(path, "send", "--all") for path in configs]
            results = [run.communicate(timeout=300) for run in runs]
            assert [run.returncode for run in runs] == [0, 0], results
            assert_each_reader_once(sink)
        sent = [int(out.splitlines()[1].split()[1]) for out, _ in results]
        skipped = [int(out.splitlines()[1].split()[4]) for out, _ in results]
        assert sum(sent) == 500 and [s + k for s, k in zip(sent, skipped, strict=True)] == [500, 500]
        with capsys.disabled():
            print(f"\ntwo sends on one PostgreSQL ledger, no lock: sent {sent}, skipped {skipped}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
