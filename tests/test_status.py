"""`syndicate status` and `queue` tell the truth: messages left pending (with or without a ledger
row), why, overdue sends, what one reader got and who got one article. Real loopback SMTP servers,
real SQLite ledgers, the CLI in-process and a real `syndicate send` interrupted with SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.content import load_articles
from syndicate.ledger import Ledger
from syndicate.plan import plan_articles
from syndicate.send import send_planned

from .conftest import SmtpSink, child_env, free_port, running_sink
from .test_send import NOW, smtp_site, write_articles

READERS = [f"r{n:03}@example.org" for n in range(40)]
DIGEST = "weekly:2026-11-23"  # the key of a `send --all` digest at NOW


def invoke(site, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def status_json(site, *args: str) -> dict:
    result = invoke(site, "status", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def weekly_only(site, port: int, readers: list[str], **options) -> None:
    """The weekly digest alone, to `readers` through an smtp target on `port`."""
    write_articles(site)
    smtp_site(site, port, readers)
    site.data["channels"] = {"weekly": site.data["channels"]["weekly"]}
    site.data["targets"]["newsletter"].update(options)
    site.write_config()


def stop_after(site, count: int) -> None:
    """`send_planned()` of the weekly digest, stopped (as SIGTERM stops the daemon) after `count` results."""
    config = site.config()
    sends = plan_articles(config, load_articles(config).articles, NOW, channels=["weekly"])
    stop, results = threading.Event(), []

    def on_result(result) -> None:
        results.append(result)
        if len(results) == count:
            stop.set()

    outcome = send_planned(config, sends, stop=stop, on_result=on_result)
    [(_, report)] = outcome.reports
    assert (report.sent, report.pending, report.stopped) == (count, len(READERS) - count, True)


def test_smtp_down_leaves_messages_pending_and_status_lists_them_with_the_error(site, clock_at):
    clock_at(NOW)
    port = free_port()  # nothing listens here
    weekly_only(site, port, READERS[:25], timeout=1)
    sent = invoke(site, "send", "--all")
    assert sent.exit_code == 1
    assert f"cannot connect to 127.0.0.1:{port}" in sent.output
    assert "25 message(s) left pending for the next run" in sent.output

    report = status_json(site)
    [left] = report["left"]
    assert {k: left[k] for k in ("channel", "target", "draft", "state", "planned", "pending", "sent")} == {
        "channel": "weekly",
        "target": "newsletter",
        "draft": DIGEST,
        "state": "started",
        "planned": 25,
        "pending": 25,
        "sent": 0,
    }
    assert left["left"] == 25
    assert left["error"].startswith(f"targets.newsletter: cannot connect to 127.0.0.1:{port} (")
    assert report["totals"] == []  # not one message row: all 25 are counted from the draft
    # The schedule's digest of Monday 08:00 has the same key: overdue, started.
    assert [(o["draft"], o["state"]) for o in report["overdue"]] == [(DIGEST, "started")]

    text = invoke(site, "status").output
    assert f"  {DIGEST} -> newsletter: 25 pending  (targets.newsletter: cannot connect" in text
    assert "the ledger is empty" not in text


def test_a_stop_mid_list_shows_n_sent_and_the_rest_pending(site, smtp_sink, clock_at):
    clock_at(NOW)
    sink, port = smtp_sink
    weekly_only(site, port, READERS)
    stop_after(site, 12)
    assert len(sink.copies()) == 12

    [left] = status_json(site)["left"]
    assert (left["draft"], left["sent"], left["pending"], left["left"]) == (DIGEST, 12, 28, 28)
    assert left["error"] == "stopped before the end of the list"
    text = invoke(site, "status").output
    assert (
        f"  {DIGEST} -> newsletter: 28 pending, 12 sent  (stopped before the end of the list; since" in text
    )

    # A reader the run reached, and one it did not: their send is pending for them.
    reached = status_json(site, "--recipient", READERS[0])
    assert [(d["draft"], d["status"]) for d in reached["deliveries"]] == [(DIGEST, "sent")]
    assert reached["pending"] == []
    waiting = status_json(site, "--recipient", READERS[-1].upper())  # the case of an address is not its own
    assert waiting["deliveries"] == []
    assert [(p["draft"], p["pending"]) for p in waiting["pending"]] == [(DIGEST, 28)]
    assert (
        f"pending   {DIGEST} -> newsletter  (stopped before"
        in invoke(site, "status", "--recipient", READERS[-1]).output
    )

    finished = invoke(site, "send", "--all")  # the next run sends the 28, each once
    assert finished.exit_code == 0, finished.output
    assert sink.copies() == dict.fromkeys(READERS, 1)
    assert status_json(site)["left"] == []


def test_a_reader_s_pending_sends_are_found_a_chunk_of_the_list_at_a_time(
    site, smtp_sink, clock_at, monkeypatch
):
    """Whether a send part-way still mails one reader is read off the list in chunks (as a send
    reads it), up to that reader, never as a set of the whole list: a million readers cost
    `status --recipient` one chunk's memory."""
    from syndicate import readers
    from syndicate.status import recipient_history

    clock_at(NOW)
    _sink, port = smtp_sink
    weekly_only(site, port, READERS)
    stop_after(site, 12)
    monkeypatch.setattr(readers, "CHUNK", 4)
    read: list[int] = []
    chunks = readers.Readers.chunks

    def counted(self):
        for chunk in chunks(self):
            read.append(len(chunk))
            yield chunk

    monkeypatch.setattr(readers.Readers, "chunks", counted)
    config = site.config()
    early = recipient_history(config, READERS[13])  # the 14th reader: in the list's 4th chunk
    assert [(p.draft[2], p.pending) for p in early.pending] == [(DIGEST, 28)]
    assert read == [4, 4, 4, 4]  # read up to the reader, no further
    read.clear()
    assert recipient_history(config, "nobody@example.org").pending == []
    assert read == [4] * 10  # the whole list, a chunk at a time


def test_ctrl_c_of_a_real_send_leaves_the_rest_counted_as_pending(site, smtp_sink, clock_at):
    """SIGINT to `syndicate send` part-way through 400 readers: sent + in flight + pending is
    every reader, and the next run sends the rest."""
    clock_at(NOW)
    sink, port = smtp_sink
    readers = site.root / "readers.csv"
    readers.write_text("email\n" + "".join(f"r{n}@example.org\n" for n in range(400)))
    weekly_only(site, port, readers)
    command = [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "send", "--all"]
    process = subprocess.Popen(command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(sink.received) < 50 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and b"Traceback" not in err, err
    received = len(sink.received)
    assert 0 < received < 400, "the signal must land part-way through the list"

    [left] = status_json(site)["left"]
    assert left["planned"] == 400 and left["error"].startswith("stopped before the end of the list")
    # The message in flight at the signal finished: nothing is in doubt.
    assert left["in_flight"] == 0 and left["sent"] == received and left["pending"] == 400 - received

    again = invoke(site, "send", "--all")
    assert again.exit_code == 0, again.output
    assert sink.copies() == {f"r{n}@example.org": 1 for n in range(400)}
    assert status_json(site)["left"] == []


def test_messages_left_retry_are_named_by_send_and_status(site, smtp_sink, clock_at):
    clock_at(NOW)
    sink, port = smtp_sink
    weekly_only(site, port, READERS[:3], max_attempts=2)
    sink.rcpt_reply = lambda address, attempt: (
        "452 4.5.3 too many recipients" if address == READERS[1] else None
    )
    sent = invoke(site, "send", "--all")
    assert sent.exit_code == 1
    assert (
        f"pending: newsletter: 1 message(s) of {DIGEST} left for the next run "
        "(still refused after every attempt (last: 452 4.5.3 too many recipients))"
    ) in sent.output.splitlines()
    [left] = status_json(site)["left"]
    assert (left["sent"], left["retry"], left["pending"], left["left"]) == (2, 1, 0, 1)
    assert left["error"] == "still refused after every attempt (last: 452 4.5.3 too many recipients)"


def test_recipient_and_article_after_a_real_send(site, smtp_sink, clock_at):
    clock_at(NOW)
    sink, port = smtp_sink
    write_articles(site)
    readers = ["a@example.org", "b@example.org", "refused@example.org"]
    smtp_site(site, port, readers)
    site.data["channels"]["letters"] = {"kind": "email", "mode": "single", "targets": ["newsletter"]}
    site.write_config()
    sink.rcpt_reply = lambda address, attempt: (
        "550 5.1.1 no such user" if address.startswith("refused") else None
    )
    assert invoke(site, "send", "--all").exit_code == 1  # the 550s

    got = status_json(site, "--recipient", "b@example.org")
    assert sorted((d["draft"], d["target"], d["status"]) for d in got["deliveries"]) == [
        ("letters:article-0", "newsletter", "sent"),
        ("letters:article-1", "newsletter", "sent"),
        ("letters:article-2", "newsletter", "sent"),
        (DIGEST, "newsletter", "sent"),
    ]
    assert all(d["sent_at"].startswith("2026-11-23T12:00") for d in got["deliveries"])  # site time, London
    refused = invoke(site, "status", "--recipient", "refused@example.org").output
    assert "refused@example.org: 4 message(s)" in refused
    assert f"failed    {DIGEST} -> newsletter  (550 5.1.1 no such user)" in refused
    assert invoke(site, "status", "--recipient", "nobody@example.org").output.endswith(
        "nobody@example.org: no message in the ledger\n"
    )

    article = status_json(site, "--article", "article-1")
    assert article["title"] == "Article 1" and article["unmatched_digests"] == 0
    by_draft = {(s["channel"], s["target"], s["draft"]): s for s in article["sends"]}
    assert set(by_draft) == {
        ("letters", "newsletter", "letters:article-1"),
        ("linkedin", "social-outbox", "linkedin:article-1"),
        ("weekly", "newsletter", DIGEST),  # the digest held all three articles
    }
    digest = by_draft["weekly", "newsletter", DIGEST]
    assert digest["digest"] is True and (digest["sent"], digest["failed"]) == (2, 1)
    assert digest["recipients"] == {
        "sent": ["a@example.org", "b@example.org"],
        "failed": ["refused@example.org"],
    }
    post = by_draft["linkedin", "social-outbox", "linkedin:article-1"]
    assert (post["digest"], post["sent"], post["recipients"]) == (False, 1, {})
    text = invoke(site, "status", "--article", "article-1").output
    assert text.startswith("article article-1: Article 1\n")
    assert f"  weekly -> newsletter  {DIGEST} (digest): 2 sent, 1 failed" in text
    assert "    failed (1): refused@example.org" in text

    mistake = invoke(site, "status", "--article", "no-such")
    assert mistake.exit_code == 2
    assert mistake.output == (
        "error: no-such: no such article in the content folder or the ledger (expected an article's slug)\n"
    )


def test_article_in_a_digest_recorded_before_its_articles_were_kept(site, smtp_sink, clock_at):
    """A digest draft without recorded articles cannot be matched: status says so, and still
    finds the article's per-article drafts by their key."""
    clock_at(NOW)
    sink, port = smtp_sink
    write_articles(site, count=1)
    smtp_site(site, port, ["a@example.org"])
    assert invoke(site, "send", "--all").exit_code == 0
    with Ledger.from_config(site.config()) as ledger, ledger.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE drafts SET articles = NULL")  # as an older syndicate left it
    article = status_json(site, "--article", "article-0")
    assert [s["draft"] for s in article["sends"]] == ["linkedin:article-0"]
    assert article["unmatched_digests"] == 1
    assert (
        "note: 1 digest draft(s) were recorded before the ledger kept"
        in invoke(site, "status", "--article", "article-0").output
    )


def test_queue_and_status_mark_overdue_sends(site, clock_at):
    clock_at(NOW)
    write_articles(site, count=2)  # published 2026-11-20 and 21: due
    site.article("later.md", "---\ntitle: Later\npublish_date: '2026-12-01'\ncta: Go\n---\nb\n")
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.write_config()
    rows = json.loads(invoke(site, "queue", "--json").output)
    assert [(r["draft"], r["overdue"], r.get("state")) for r in rows] == [
        ("linkedin:article-0", True, "not started"),
        ("linkedin:article-1", True, "not started"),
        ("linkedin:later", False, None),
    ]
    text = invoke(site, "queue").output
    assert "2026-11-20 00:00 +00:00  linkedin     social-outbox    Article 0  [overdue: not started]" in text
    assert text.endswith(
        "1 send(s) in the next 30 day(s) (Europe/London); 2 overdue (due, not finished: see syndicate status)\n"
    )

    assert invoke(site, "send", "article-0").exit_code == 0
    rows = json.loads(invoke(site, "queue", "--json").output)
    assert [r["draft"] for r in rows if r["overdue"]] == ["linkedin:article-1"]
    assert [o["draft"] for o in status_json(site)["overdue"]] == ["linkedin:article-1"]
    assert (
        "  2026-11-21 00:00 +00:00  linkedin:article-1 -> social-outbox  (not started)"
        in invoke(site, "status").output
    )

    with Ledger.from_config(site.config()) as ledger:  # as the daemon's catch-up policy records a skip
        ledger.set_draft_state(("linkedin", "social-outbox", "linkedin:article-1"), "skipped", "missed by 2d")
    assert status_json(site)["overdue"] == []
    assert not [r for r in json.loads(invoke(site, "queue", "--json").output) if r["overdue"]]


def test_a_send_stopped_part_way_is_overdue_as_started(site, clock_at):
    """The planner's digest, its server down: overdue and `started` until a run finishes it."""
    clock_at(NOW)  # Monday 12:00; the digest was due at 08:00
    site.data["schedule"] = {"catch_up": "send"}
    weekly_only(site, free_port(), READERS[:2], timeout=1)
    site.data["channels"]["weekly"]["schedule"] = {"every": "week", "weekday": "mon", "at": "08:00"}
    site.write_config()
    assert invoke(site, "send", "--due").exit_code == 1
    [late] = status_json(site)["overdue"]
    assert (late["draft"], late["state"], late["due"]) == (DIGEST, "started", "2026-11-23T08:00:00+00:00")
    [row] = [r for r in json.loads(invoke(site, "queue", "--json").output) if r["overdue"]]
    assert (row["draft"], row["state"]) == (DIGEST, "started")

    sink = SmtpSink()
    with running_sink(sink) as controller:
        site.data["targets"]["newsletter"]["port"] = controller.port
        site.write_config()
        assert invoke(site, "send", "--due").exit_code == 0
    assert status_json(site)["overdue"] == [] and sink.copies() == dict.fromkeys(READERS[:2], 1)


def test_status_creates_no_ledger(site):
    site.article("later.md", "---\ntitle: Later\npublish_date: '2099-01-01'\n---\nb\n")
    result = invoke(site, "status")
    assert result.exit_code == 0
    assert result.output == "daemon: not running\nthe ledger is empty: nothing sent yet\n"
    assert not (site.root / ".syndicate").exists()
    assert status_json(site)["left"] == [] and not (site.root / ".syndicate").exists()


def test_a_run_started_before_runs_were_counted_shows_its_pending_as_unknown(site):
    site.article("later.md", "---\ntitle: Later\npublish_date: '2099-01-01'\n---\nb\n")
    with Ledger.from_config(site.config()) as ledger:  # as an older syndicate left it: no count
        ledger.set_draft_state(("weekly", "mail-outbox", DIGEST), "started")
    [left] = status_json(site)["left"]
    assert (left["draft"], left["planned"], left["pending"], left["left"]) == (DIGEST, None, None, 0)
    assert (
        f"  {DIGEST} -> mail-outbox: ? pending (not counted: started by an older syndicate)  (no error recorded"
        in invoke(site, "status").output
    )
