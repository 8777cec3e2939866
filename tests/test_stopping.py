"""Ctrl-C and SIGTERM in a real `syndicate send` process: it stops after the message in flight
(a second signal: at once), prints the summary with what is pending, exits 130, and leaves no
row `in_flight`; the next run delivers what was left, each message once by the server's count.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from syndicate.stopping import NOTICE

from .conftest import Receiver, child_env, free_port, serving
from .test_faults import READERS, ledger_rows, summary
from .test_send import smtp_site, write_recent_articles

POSTS = {"linkedin:article-0", "linkedin:article-1"}


def hook_site(site, url: str, **options) -> None:
    """Two LinkedIn-channel posts to a webhook target at `url`."""
    write_recent_articles(site, count=2)
    site.data["targets"]["hook"] = {"type": "webhook", "url": url, **options}
    site.data["channels"] = {"linkedin": {**site.data["channels"]["linkedin"], "targets": ["hook"]}}
    site.write_config()


def digest_site(site, port: int, **options) -> None:
    """The weekly digest to READERS through an smtp target on `port`."""
    write_recent_articles(site)
    smtp_site(site, port, READERS)
    site.data["targets"]["newsletter"].update(options)
    site.data["channels"] = {"weekly": site.data["channels"]["weekly"]}
    site.write_config()


def start_send(site) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "send", "--all"]
    return subprocess.Popen(
        command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    return process.returncode, out, err


def send_again(site) -> str:
    code, out, err = finish(start_send(site))
    assert code == 0, out + err
    return out


def wait_for(condition, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert process.poll() is None, f"syndicate ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {what} after 30 s"
        time.sleep(0.05)


def live_statuses(site) -> list[str]:
    """The ledger's statuses as the running process has committed them (read-only)."""
    path = site.root / ".syndicate" / "ledger.sqlite"
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return [status for (status,) in db.execute("SELECT status FROM deliveries")]
    except sqlite3.OperationalError:  # not created yet
        return []


def wait_for_notice(process: subprocess.Popen[str]) -> None:
    """The first signal has been handled: the process said it is stopping (on stderr, after
    any progress bar's lines)."""
    seen, deadline, fd = b"", time.monotonic() + 30, process.stderr.fileno()
    while NOTICE not in seen:
        assert time.monotonic() < deadline, f"no stopping notice after 30 s: {seen!r}"
        if select.select([fd], [], [], 1)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"syndicate ended without a stopping notice: {seen!r}"
            seen += chunk


def per_post(receiver: Receiver) -> Counter[str]:
    return Counter(json.loads(body)["key"] for _, _, body in receiver.requests)


@pytest.mark.parametrize("seconds", [2, 5, 8])
def test_sigint_while_a_refused_webhook_is_retried(site, seconds):
    """Nothing listens: the post in flight is between retries (connection refused) whenever the
    signal comes. It stays `retry`, not `in_flight` (which the next run would call `unknown` and
    never send), and goes out once when a receiver is there."""
    port = free_port()
    hook_site(site, f"http://127.0.0.1:{port}/hook", retries=20)
    started = time.monotonic()
    process = start_send(site)
    wait_for(lambda: "in_flight" in live_statuses(site), process, "post in flight")
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    process.send_signal(signal.SIGINT)
    code, out, _ = finish(process)

    assert code == 130, out
    assert summary(out, "hook") == {"sent": 0, "pending": 2}
    assert "stopped by SIGINT: 2 message(s) left pending for the next run" in out
    [line] = [line for line in out.splitlines() if line.startswith("retry: ")]
    assert line.endswith(" (stopped before the next)") and "cannot reach the receiver" in line
    rows = ledger_rows(site)
    assert list(rows.values()) == ["retry"] and set(rows) < POSTS  # the other was never started

    with serving(Receiver(port=port)) as receiver:
        send_again(site)
        assert per_post(receiver) == dict.fromkeys(POSTS, 1)
    assert ledger_rows(site) == dict.fromkeys(POSTS, "sent")


def test_a_second_sigint_during_the_wait_stops_at_once(site):
    port = free_port()
    hook_site(site, f"http://127.0.0.1:{port}/hook", retries=20)
    process = start_send(site)
    wait_for(lambda: "in_flight" in live_statuses(site), process, "post in flight")
    process.send_signal(signal.SIGINT)
    wait_for_notice(process)
    process.send_signal(signal.SIGINT)
    code, out, _ = finish(process)

    assert code == 130, out
    assert summary(out, "hook") == {"sent": 0, "pending": 2}, out
    assert list(ledger_rows(site).values()) == ["retry"]
    with serving(Receiver(port=port)) as receiver:
        send_again(site)
        assert per_post(receiver) == dict.fromkeys(POSTS, 1)


@contextmanager
def unaccepted_port() -> Iterator[int]:
    """A port where a connection attempt hangs: its listener never accepts and its queue is full."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers: list[socket.socket] = []
        try:
            for _ in range(20):
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.3)
                try:
                    filler.connect(server.getsockname())
                except TimeoutError:
                    break  # the queue is full: the next attempt hangs too
            else:
                pytest.fail("the listen queue never filled")
            yield server.getsockname()[1]
        finally:
            for filler in fillers:
                filler.close()


def test_a_second_sigint_while_connecting_leaves_the_post_retry(site, receiver):
    """The connection attempt hangs (up to the 60 s timeout). Nothing of the post has gone out,
    so cut short by a second Ctrl-C it is `retry`, not `unknown`, and the next run sends it."""
    with unaccepted_port() as port:
        hook_site(site, f"http://127.0.0.1:{port}/hook", timeout=60)
        process = start_send(site)
        wait_for(lambda: "in_flight" in live_statuses(site), process, "post in flight")
        process.send_signal(signal.SIGINT)
        wait_for_notice(process)
        process.send_signal(signal.SIGINT)
        code, out, _ = finish(process)

    assert code == 130, out
    assert summary(out, "hook") == {"sent": 0, "pending": 2}, out
    [line] = [line for line in out.splitlines() if line.startswith("retry: ")]
    assert line.endswith(": not sent: stopped at once")
    assert list(ledger_rows(site).values()) == ["retry"]
    site.data["targets"]["hook"]["url"] = receiver.url
    site.write_config()
    send_again(site)
    assert per_post(receiver) == dict.fromkeys(POSTS, 1)


def test_sigterm_stops_the_same_way_and_exits_143(site):
    port = free_port()
    hook_site(site, f"http://127.0.0.1:{port}/hook", retries=20)
    process = start_send(site)
    wait_for(lambda: "in_flight" in live_statuses(site), process, "post in flight")
    process.send_signal(signal.SIGTERM)
    code, out, _ = finish(process)
    assert code == 143, out
    assert "stopped by SIGTERM: 2 message(s) left pending for the next run" in out
    assert list(ledger_rows(site).values()) == ["retry"]


def test_the_first_sigint_lets_the_post_in_flight_finish(site, receiver):
    receiver.delay = 3.0  # slow, but within the timeout
    hook_site(site, receiver.url, timeout=30)
    process = start_send(site)
    wait_for(lambda: receiver.requests, process, "a request")
    process.send_signal(signal.SIGINT)
    code, out, _ = finish(process)

    assert code == 130, out
    assert summary(out, "hook") == {"sent": 1, "pending": 1}
    assert receiver.answered == 1
    [first] = per_post(receiver)
    assert ledger_rows(site) == {first: "sent"}
    receiver.delay = 0
    send_again(site)
    assert per_post(receiver) == dict.fromkeys(POSTS, 1)


def test_a_second_sigint_cuts_a_slow_answer_short(site, receiver):
    """The receiver holds the post and takes a minute to answer: the first Ctrl-C waits for it,
    the second does not. The post may have gone out, so it is `unknown`, and the next run (by
    default) does not post it again."""
    receiver.delay = 60.0
    hook_site(site, receiver.url, timeout=120)
    process = start_send(site)
    wait_for(lambda: receiver.requests, process, "a request")
    process.send_signal(signal.SIGINT)
    wait_for_notice(process)
    time.sleep(1)
    assert process.poll() is None  # still waiting for the answer to the post in flight
    process.send_signal(signal.SIGINT)
    code, out, _ = finish(process)

    assert code == 130, out
    assert receiver.answered == 0  # it ended before the answer came
    [first] = per_post(receiver)
    assert f"unknown: hook: {first}: stopped at once while it was going out: the receiver may have it" in out
    assert ledger_rows(site) == {first: "unknown"}
    status = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "status"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    unknowns = status.stdout.split("unknown (the server may have them")[1]
    assert first in unknowns

    receiver.delay = 0
    send_again(site)
    assert per_post(receiver) == dict.fromkeys(POSTS, 1)  # the unknown one not posted again


# -- the same through an smtp target ----------------------------------------------------------


def test_sigint_during_the_dispatch_loops_retry_wait(site, smtp_sink):
    """b is greylisted (451) and waits 30 s for its retry; Ctrl-C ends the wait: b stays `retry`
    and goes out on the next run."""
    sink, port = smtp_sink
    sink.rcpt_reply = lambda address, attempt: "451 4.7.1 greylisted" if address == "b@example.org" else None
    digest_site(site, port, retry_delay=30)
    process = start_send(site)
    wait_for(lambda: len(sink.received) == 2, process, "a and c delivered")
    process.send_signal(signal.SIGINT)
    code, out, _ = finish(process)

    assert code == 130, out
    assert summary(out, "newsletter") == {"sent": 2, "pending": 1}
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": "retry", "c@example.org": "sent"}
    assert sink.attempts["b@example.org"] == 1
    sink.rcpt_reply = None
    send_again(site)
    assert sink.copies() == dict.fromkeys(READERS, 1)


@pytest.mark.parametrize(
    ("stalled", "left"),
    [("RCPT", "retry"), ("DATA", "unknown")],
    ids=["before-the-data", "after-the-data"],
)
def test_a_second_sigint_cuts_an_smtp_transaction_short(site, smtp_sink, stalled, left):
    """The relay stalls b's transaction. Cut short before the data went out, b was not sent
    (`retry`, sent next run); after it, the relay may hold it (`unknown`, not sent again)."""
    sink, port = smtp_sink
    sink.stall = lambda command, address, attempt: (
        60 if (command, address, attempt) == (stalled, "b@example.org", 1) else 0
    )
    digest_site(site, port, timeout=120)
    process = start_send(site)
    if stalled == "RCPT":
        wait_for(lambda: sink.attempts["b@example.org"] == 1, process, "b's RCPT")
    else:
        wait_for(lambda: "b@example.org" in sink.copies(), process, "b's message kept")
    process.send_signal(signal.SIGINT)
    wait_for_notice(process)
    process.send_signal(signal.SIGINT)
    code, out, _ = finish(process)

    assert code == 130, out
    assert ledger_rows(site) == {"a@example.org": "sent", "b@example.org": left}
    send_again(site)
    assert sink.copies() == dict.fromkeys(READERS, 1)
