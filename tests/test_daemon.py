"""The daemon: sends at their time against real loopback servers, catch-up policies, content
edits, the state-folder lock, SIGTERM and SIGKILL of a real `syndicate daemon` process, and
digest times across daylight-saving changes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from syndicate import clock
from syndicate.cli import cli
from syndicate.config import DigestSchedule
from syndicate.daemon import Daemon, digest_trigger, run_article_job
from syndicate.errors import StateError
from syndicate.ledger import Ledger
from syndicate.schedule import digest_end_covering

from .conftest import REPO, SmtpSink, child_env, free_port, loopback_smtp, running_sink

ARTICLE = """---
title: '{title}'
description: 'What {title} is about.'
read_time: '3 mins'
publish_date: '{date}'
cta: 'Reply and tell us about {title}.'
draft: {draft}
---
Body of {title}.
"""


def write(site, slug: str, when: datetime, title: str | None = None, draft: bool = False) -> None:
    text = ARTICLE.format(title=title or slug, date=when.isoformat(), draft=str(draft).lower())
    site.article(f"{slug}.md", text)


def soon(seconds: float) -> datetime:
    return (clock.now() + timedelta(seconds=seconds)).replace(microsecond=0)


def wait_for(condition: Callable[[], object], timeout: float = 20.0, log: object = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; the daemon said: {log}")
        time.sleep(0.02)


@contextmanager
def running(config) -> Iterator[tuple[Daemon, list[dict]]]:
    """A daemon in a thread of this process, as `syndicate daemon` runs it (minus signals)."""
    events: list[dict] = []
    daemon = Daemon(config, events.append, watch=False)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: any(e["event"] == "ready" for e in events) or not thread.is_alive())
        assert thread.is_alive(), events
        yield daemon, events
    finally:
        daemon.stop()
        thread.join(30)


def fast_rescans(site) -> None:
    site.data["schedule"] = {**site.data.get("schedule", {}), "rescan_seconds": 0.1}
    site.write_config()


def outbox_posts(site) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((site.root / "outbox" / "social").glob("*.json"))]


def smtp_and_webhook_site(site, port: int, receiver_url: str) -> None:
    smtp_single_site(site, port, ["reader@example.org"])
    site.data["channels"]["linkedin"] = {"kind": "social", "network": "linkedin", "targets": ["hook"]}
    site.data["targets"]["hook"] = {"type": "webhook", "url": receiver_url, "local": True}
    fast_rescans(site)


def test_sends_reach_smtp_and_webhook_at_their_time_never_early(site, smtp_sink, receiver):
    sink, port = smtp_sink
    smtp_and_webhook_site(site, port, receiver.url)
    due = {"first-light": soon(3), "second-light": soon(5)}
    for slug, when in due.items():
        write(site, slug, when)
    with running(site.config()) as (daemon, events):
        assert {job: at for job, at in daemon.jobs().items() if job.startswith("article:")} == {
            f"article:{c}:{t}:{slug}": when
            for slug, when in due.items()
            for c, t in (("letters", "newsletter"), ("linkedin", "hook"))
        }
        wait_for(lambda: len(sink.arrivals) == 2 and len(receiver.arrivals) == 2, log=events)
    for arrived, content in sink.arrivals + receiver.arrivals:
        slug = next(s for s in due if s.encode() in content)
        late = arrived - due[slug].timestamp()
        assert 0 <= late <= 2, f"{slug} arrived {late:+.2f} s from its time"
    sent = [e for e in events if e["event"] == "sent"]
    assert len(sent) == 4 and all(e["sent"] == 1 for e in sent)


def test_past_dated_articles_are_skipped_logged_and_left_for_send_due(site):
    for path in (REPO / "content").glob("*.md"):
        shutil.copy(path, site.content / path.name)
    write(site, "next-month", soon(30 * 86400))
    with running(site.config()) as (_daemon, events):
        pass
    skipped = {e["draft"]: e for e in events if e["event"] == "skipped"}
    past = ["linkedin:charting-the-shallows", "linkedin:fog-signals", "linkedin:tide-tables-for-editors"]
    for draft in past:
        assert "schedule.catch_up: skip" in skipped[draft]["reason"]
        assert skipped[draft]["due"].startswith("2024-")
    assert "linkedin:next-month" not in skipped  # the future one is scheduled instead
    assert any(e["event"] == "scheduled" and e.get("draft") == "linkedin:next-month" for e in events)
    assert not (site.root / "outbox").exists()
    with Ledger.from_config(site.config()) as ledger:
        assert {d[2] for d, _ in ledger.skipped_drafts()} >= set(past)
    # A second start does not report them again: the ledger remembers the decision.
    with running(site.config()) as (_daemon, again):
        pass
    assert not [e for e in again if e["event"] == "skipped"]
    status = CliRunner().invoke(cli, ["--config", str(site.config_path), "status"])
    assert "skipped by the daemon's catch-up policy" in status.output
    assert "linkedin:fog-signals -> social-outbox  (missed by" in status.output
    # `send --due` follows the same policy; `send --due --backfill` is the explicit backfill.
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--due"])
    assert result.exit_code == 0, result.output
    assert "skipped earlier by schedule.catch_up are waiting" in result.output
    assert not (site.root / "outbox" / "social").exists()
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--due", "--backfill"])
    assert result.exit_code == 0, result.output
    slugs = {p["article"]["slug"] for p in outbox_posts(site)}
    assert {d.split(":")[1] for d in past} <= slugs


def test_content_edits_add_move_drop_and_edit_jobs(site):
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    fast_rescans(site)
    job = "article:linkedin:social-outbox:{}".format
    first = soon(3600)
    write(site, "harbour", first)
    with running(site.config()) as (daemon, events):
        assert daemon.jobs()[job("harbour")] == first

        later = soon(7200)
        write(site, "harbour", later)  # rescheduled
        wait_for(lambda: daemon.jobs().get(job("harbour")) == later)

        write(site, "harbour", later, draft=True)  # became a draft
        wait_for(lambda: job("harbour") not in daemon.jobs())

        write(site, "arrival", soon(3600))  # a new article
        wait_for(lambda: job("arrival") in daemon.jobs())
        (site.content / "arrival.md").unlink()  # deleted
        wait_for(lambda: job("arrival") not in daemon.jobs())

        due = soon(2)
        write(site, "harbour", due, title="Harbour (first draft)")
        wait_for(lambda: daemon.jobs().get(job("harbour")) == due)
        write(site, "harbour", due, title="Harbour, as edited")  # edited before its time
        wait_for(lambda: len(outbox_posts(site)) == 1)
        assert "Harbour, as edited" in outbox_posts(site)[0]["text"]

        write(site, "harbour", due, title="Harbour, edited after it went out")
        time.sleep(0.5)  # several rescans
        assert len(outbox_posts(site)) == 1  # not resent
        assert job("harbour") not in daemon.jobs()
    unscheduled = [e["reason"] for e in events if e["event"] == "unscheduled"]
    assert "draft" in unscheduled and "deleted or unreadable" in unscheduled


def test_a_renamed_article_already_sent_is_neither_scheduled_nor_sent_again(site, smtp_sink):
    sink, port = smtp_sink
    readers = ["ann@example.org", "bo@example.org", "cy@example.org"]
    smtp_single_site(site, port, readers)
    site.data["channels"]["linkedin"] = {"kind": "social", "network": "linkedin", "targets": ["posts"]}
    site.data["targets"]["posts"] = {"type": "outbox", "dir": "outbox/social"}
    fast_rescans(site)
    write(site, "storm-warning", soon(2))
    with running(site.config()) as (daemon, events):
        wait_for(
            lambda: sink.copies() == dict.fromkeys(readers, 1) and len(outbox_posts(site)) == 1, log=events
        )
        (site.content / "storm-warning.md").rename(site.content / "gale-warning.md")  # same bytes
        wait_for(lambda: any(e["event"] == "renamed" for e in events), log=events)
        time.sleep(0.5)  # several rescans
        assert not [job for job in daemon.jobs() if job.endswith(":gale-warning")]
        # A job for the new name, had one been queued, finds its drafts finished.
        run_article_job("letters", "newsletter", "gale-warning")
        run_article_job("linkedin", "posts", "gale-warning")
    assert sink.copies() == dict.fromkeys(readers, 1)
    assert len(outbox_posts(site)) == 1
    [renamed] = [e for e in events if e["event"] == "renamed"]
    assert renamed["reason"] == (
        f"{site.content / 'gale-warning.md'}: file: was {site.content / 'storm-warning.md'} (same content): "
        "the same article, so nothing already sent for it goes out again"
    )
    after = events[events.index(renamed) :]
    assert not [e for e in after if e["event"] in ("scheduled", "sent", "failed")], after
    assert {(e["draft"], e["reason"]) for e in after if e["event"] == "skipped"} == {
        ("letters:storm-warning", "already finished"),
        ("linkedin:storm-warning", "already finished"),
    }


def test_a_second_daemon_on_the_same_state_folder_is_refused(site):
    status = CliRunner().invoke(cli, ["--config", str(site.config_path), "status"])
    assert status.output.startswith("daemon: not running\n")
    with running(site.config()) as (daemon, _events):
        status = CliRunner().invoke(cli, ["--config", str(site.config_path), "status"])
        assert status.output.startswith(f"daemon: running (pid {os.getpid()})\n")
        with pytest.raises(StateError, match="another syndicate daemon is running"):
            Daemon(site.config(), lambda e: None, watch=False).start()
        result = CliRunner().invoke(cli, ["--config", str(site.config_path), "daemon"])
        assert result.exit_code == 2
        assert result.output.startswith("error: ") and "Traceback" not in result.output
        assert f"pid {os.getpid()}" in result.output


def test_publish_dates_with_offsets_keep_their_instant_and_logs_use_the_site_timezone(site):
    site.data["site"]["timezone"] = "America/New_York"
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.write_config()
    site.article(
        "monsoon.md",
        "---\ntitle: Monsoon\npublish_date: '2099-06-01T09:00:00+05:30'\ncta: Read it\n---\nBody.\n",
    )
    with running(site.config()) as (daemon, events):
        assert daemon.jobs()["article:linkedin:social-outbox:monsoon"] == datetime(
            2099, 6, 1, 3, 30, tzinfo=UTC
        )
    scheduled = next(e for e in events if e.get("draft") == "linkedin:monsoon")
    assert scheduled["at"] == "2099-05-31T23:30:00-04:00"
    assert all(e["time"].endswith(("-05:00", "-04:00")) for e in events)


@pytest.mark.parametrize(
    ("start", "fires"),
    [
        # Europe/London leaves summer time on 2026-10-25 and enters it on 2027-03-28.
        (
            datetime(2026, 10, 12, tzinfo=UTC),
            ["2026-10-12 07:00", "2026-10-19 07:00", "2026-10-26 08:00", "2026-11-02 08:00"],
        ),
        (
            datetime(2027, 3, 15, tzinfo=UTC),
            ["2027-03-15 08:00", "2027-03-22 08:00", "2027-03-29 07:00", "2027-04-05 07:00"],
        ),
    ],
)
def test_weekly_digest_fires_at_08_00_london_on_both_sides_of_dst(start, fires):
    schedule = DigestSchedule(every="week", weekday="mon", at="08:00")
    tz = ZoneInfo("Europe/London")
    trigger = digest_trigger(schedule, tz)
    seen, previous, moment = [], None, start
    for _ in fires:
        fire = trigger.get_next_fire_time(previous, moment)
        seen.append(fire.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))
        assert fire.astimezone(tz).strftime("%a %H:%M") == "Mon 08:00"
        assert fire == digest_end_covering(schedule, tz, moment)  # the planner agrees
        previous, moment = fire, fire + timedelta(seconds=1)
    assert seen == fires


def daemon_process(site, log_format: str = "json") -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "syndicate",
        "--config",
        str(site.config_path),
        "daemon",
        "--log-format",
        log_format,
    ]
    env = child_env(PYTHONUNBUFFERED="1")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def smtp_single_site(site, port: int, recipients: list[str] | str, **target) -> None:
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]}}
    site.data["targets"] = {"newsletter": loopback_smtp(port, recipients, **target)}
    site.write_config()


def test_sigterm_finishes_the_message_in_flight_and_a_restart_finishes_the_list(site, smtp_sink):
    sink, port = smtp_sink
    count = 400
    csv = site.root / "readers.csv"
    csv.write_text("email\n" + "".join(f"r{n}@example.org\n" for n in range(count)))
    smtp_single_site(site, port, str(csv), rate=100)
    write(site, "storm-warning", soon(2))
    process = daemon_process(site)
    wait_for(lambda: len(sink.received) >= 50, timeout=30)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    stopped_at = len(sink.received)
    assert stopped_at < count
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["event"] == "stopped"
    assert any(e["event"] == "failed" and e.get("pending") for e in lines)  # the rest is pending
    with Ledger.from_config(site.config()) as ledger:
        counts = ledger.counts()[("letters", "newsletter")]
        assert "in_flight" not in counts and counts["sent"] == stopped_at
    restarted = daemon_process(site)
    wait_for(lambda: len(sink.received) >= count, timeout=60)
    restarted.send_signal(signal.SIGTERM)
    restarted.communicate(timeout=30)
    assert sink.copies() == {f"r{n}@example.org": 1 for n in range(count)}


def test_kill_9_of_a_real_daemon_with_50_sends_in_a_minute(site, smtp_sink, capsys):
    """50 articles due over the next minute; SIGKILL halfway; start again. Every article goes out
    exactly once by the sink's count, apart from at most the one in flight at the kill."""
    sink, port = smtp_sink
    smtp_single_site(site, port, ["reader@example.org"])
    start = soon(3)
    slugs = [f"notice-{n:02d}" for n in range(50)]
    for n, slug in enumerate(slugs):
        write(site, slug, start + timedelta(seconds=n * 1.2), title=f"Notice to mariners {n:02d}")
    process = daemon_process(site)
    wait_for(lambda: len(sink.received) >= 25, timeout=90)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    before = len(sink.received)
    with Ledger.from_config(site.config()) as ledger:
        in_flight = sum(c.get("in_flight", 0) for c in ledger.counts().values())
    restarted = daemon_process(site)
    last_due = start + timedelta(seconds=49 * 1.2)
    wait_for(lambda: clock.now() > last_due + timedelta(seconds=3), timeout=120)
    wait_for(lambda: len(sink.received) >= 50 - in_flight, timeout=30)
    time.sleep(1)
    restarted.send_signal(signal.SIGTERM)
    out, _ = restarted.communicate(timeout=30)
    copies = {slug: sum(slug.encode() in content for _, content in sink.received) for slug in slugs}
    wrong = {slug: n for slug, n in copies.items() if n != 1}
    assert len(wrong) <= in_flight <= 1, wrong
    assert all(n == 0 for n in wrong.values())  # the in-flight one may be lost, never doubled
    with capsys.disabled():
        print(
            f"\nsyndicate daemon killed after {before} of 50: {in_flight} in flight, {sum(copies.values())} delivered"
        )


def test_file_events_wake_the_daemon_before_its_rescan_interval(site):
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.data["schedule"] = {"rescan_seconds": 3600}
    site.write_config()
    events: list[dict] = []
    daemon = Daemon(site.config(), events.append, watch=True)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: any(e["event"] == "ready" for e in events))
        job = "article:linkedin:social-outbox:new-buoy"
        deadline = time.monotonic() + 15
        while job not in daemon.jobs():  # written again until the watcher (starting up) sees it
            assert time.monotonic() < deadline, events
            write(site, "new-buoy", soon(3600))
            time.sleep(0.5)
    finally:
        daemon.stop()
        thread.join(30)


def test_an_unreachable_server_is_retried_with_backoff_until_it_answers(site, monkeypatch):
    monkeypatch.setattr("syndicate.daemon.service.RETRY_FIRST", timedelta(seconds=0.5))
    port = free_port()
    smtp_single_site(site, port, ["reader@example.org"])
    write(site, "late-ferry", soon(1))
    sink = SmtpSink()
    with running(site.config()) as (daemon, events):
        wait_for(lambda: any(e["event"] == "failed" for e in events), log=events)
        failed = next(e for e in events if e["event"] == "failed")
        assert "cannot connect to 127.0.0.1" in failed["reason"] and failed["pending"] == 1
        with running_sink(sink, port=port):
            wait_for(lambda: events[-1]["event"] == "sent", log=events)  # logged after the ledger says so
    assert len(sink.received) == 1


def test_a_missing_content_folder_is_one_line_and_frees_the_state_folder(site):
    shutil.rmtree(site.content)
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "daemon"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "no such file or folder" in result.output
    assert "Traceback" not in result.output
    site.content.mkdir()
    with running(site.config()) as (_daemon, events):  # the lock was let go
        assert events[-1]["event"] == "ready"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+nosuchdriver://u@127.0.0.1/jobs", "schedule.jobstore_url: cannot open the job store"),
        ("not a url", "schedule.jobstore_url: cannot open the job store"),
        ("sqlite:////nonexistent-folder/x/jobs.sqlite", "schedule.jobstore_url: cannot open the job store"),
    ],
)
def test_a_job_store_that_cannot_be_opened_is_one_line(site, url, expected):
    site.data["schedule"] = {"jobstore_url": url}
    site.write_config()
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "daemon"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {expected}") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_ledger_and_job_store_on_postgresql(site, postgres_url):
    """`database_url` and `schedule.jobstore_url` on a real PostgreSQL server: a job waits there
    across a restart, a due one goes out and its ledger rows are in PostgreSQL."""
    site.data["database_url"] = postgres_url
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.data["schedule"] = {"jobstore_url": postgres_url}
    site.write_config()
    deep = soon(86400)
    write(site, "deep-water", deep)
    write(site, "shallows", soon(2))
    with running(site.config()) as (daemon, _events):
        assert daemon.jobs()["article:linkedin:social-outbox:deep-water"] == deep
        wait_for(lambda: len(outbox_posts(site)) == 1)
    assert not (site.root / ".syndicate" / "jobs.sqlite").exists()
    assert not (site.root / ".syndicate" / "ledger.sqlite").exists()
    with Ledger.from_config(site.config()) as ledger:
        assert ledger.counts() == {("linkedin", "social-outbox"): {"sent": 1}}
    with running(site.config()) as (daemon, events):  # the job came back from PostgreSQL
        assert daemon.jobs()["article:linkedin:social-outbox:deep-water"] == deep
        assert not [e for e in events if e["event"] == "scheduled" and "deep-water" in e.get("draft", "")]


def test_a_broken_article_is_reported_and_the_others_still_go_out(site):
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    fast_rescans(site)
    site.article("broken.md", "---\ntitle: Broken\npublish_date: 'the 31st of Smarch'\n---\nBody.\n")
    write(site, "sound", soon(1))
    with running(site.config()) as (_daemon, events):
        wait_for(lambda: len(outbox_posts(site)) == 1, log=events)
    [invalid] = [e for e in events if e["event"] == "invalid"]
    assert "broken.md: publish_date: 'the 31st of Smarch' is not a date" in invalid["reason"]


def test_an_article_sent_by_hand_before_its_time_is_not_sent_again(site):
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    fast_rescans(site)
    due = soon(3)
    write(site, "early-bird", due)
    job_id = "article:linkedin:social-outbox:early-bird"
    send_it = ["--config", str(site.config_path), "send", "early-bird"]
    with running(site.config()) as (daemon, _events):
        assert job_id in daemon.jobs()
        # While the daemon runs, its jobs do the sending: a send by hand is refused, one line.
        refused = CliRunner().invoke(cli, send_it)
        assert refused.exit_code == 2, refused.output
        assert refused.output.startswith("error: ") and "Traceback" not in refused.output
        assert f"the syndicate daemon (pid {os.getpid()}) is running on this state folder" in refused.output
    result = CliRunner().invoke(cli, send_it)  # the daemon stopped: sent by hand, early
    assert result.exit_code == 0, result.output
    with running(site.config()) as (daemon, events):
        assert job_id not in daemon.jobs()
        wait_for(lambda: clock.now() > due + timedelta(seconds=1))
    unscheduled = next(e for e in events if e["event"] == "unscheduled")
    assert unscheduled["draft"] == job_id and unscheduled["reason"] == "already finished"
    assert len(outbox_posts(site)) == 1


def test_queue_shows_what_the_daemon_will_do(site):
    for path in (REPO / "content").glob("*.md"):
        shutil.copy(path, site.content / path.name)
    write(site, "next-month", soon(30 * 86400).replace(second=0))  # future whatever the examples' dates
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "queue", "--json", "--days", "400"])
    assert result.exit_code == 0, result.output
    queued = [
        (datetime.strptime(row["due"], "%Y-%m-%d %H:%M %z"), row["channel"], row["target"], row["draft"])
        for row in json.loads(result.output)
        if not row["overdue"]  # the examples' past articles: the daemon's catch-up policy decides those
    ]
    assert any(q[3] == "linkedin:next-month" for q in queued)
    with running(site.config()) as (daemon, _events):
        jobs = daemon.jobs()
        digest = daemon.scheduler.get_job("digest:weekly:mail-outbox").trigger
    for due, channel, target, draft in queued:
        if channel == "weekly":  # the digest's cron job fires at that time
            assert digest.get_next_fire_time(None, due - timedelta(seconds=1)) == due
        else:
            assert jobs[f"article:{channel}:{target}:{draft.split(':', 1)[1]}"] == due
    article_jobs = {job for job in jobs if job.startswith("article:")}
    assert len(article_jobs) == len([q for q in queued if q[1] != "weekly"])


@pytest.mark.parametrize(
    ("policy", "expected"),
    # The `2d` and `skip` cases, and what each policy decides, are unit-tested without a daemon in
    # test_daemon_catchup.py; this one keeps the wiring: a start's decision, one `digest-now` job.
    [("send", {"three-days", "two-days", "one-day"})],
)
def test_missed_digests_coalesce_into_one_as_the_policy_allows(site, policy, expected, clock_at):
    site.data["channels"] = {
        "daily": {
            "kind": "email",
            "mode": "digest",
            "schedule": {"every": "day", "at": "00:00"},
            "targets": ["mail-outbox"],
        }
    }
    site.data["site"]["timezone"] = "UTC"
    site.data["schedule"] = {"catch_up": policy}
    site.write_config()
    if clock.now().time() < time_of_day(0, 5):  # the digest of midnight would still be on time
        clock_at(clock.now() + timedelta(minutes=5))
    midnight = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    # One article in each of the three windows before this midnight's digest.
    for hours, slug in ((54, "three-days"), (30, "two-days"), (6, "one-day")):
        write(site, slug, midnight - timedelta(hours=hours))
    with running(site.config()) as (_daemon, events):
        if expected:
            wait_for(lambda: any(e["event"] == "sent" for e in events), log=events)
    emails = list((site.root / "outbox" / "email").glob("*.eml"))
    assert len(emails) == (1 if expected else 0)  # one digest for every missed window
    if emails:
        body = emails[0].read_bytes()
        assert {s for s in ("three-days", "two-days", "one-day") if s.encode() in body} == expected
    else:
        assert [e["draft"] for e in events if e["event"] == "skipped"] == [f"daily:{midnight:%Y-%m-%d}"]


def test_a_full_disk_under_the_job_store_is_reported_and_caught_up(site, small_disk):
    if not small_disk.mounted:
        pytest.skip("needs a small tmpfs (root): a file-size limit cannot be put on a thread")
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk.folder)], check=True)  # room to start
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.data["state_dir"] = str(small_disk.folder)
    fast_rescans(site)
    with running(site.config()) as (daemon, events):
        filler = small_disk.folder / "filler"
        with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        for n in range(20):  # enough new jobs that the store must grow
            write(site, f"flood-{n:02d}", soon(3600 + n))
        wait_for(lambda: any(e["event"] == "failed" for e in events), log=events)
        failed = next(e for e in events if e["event"] == "failed")
        assert "full" in failed["reason"] and failed["reason"].endswith("trying again at the next rescan")
        filler.unlink()
        wait_for(lambda: sum(j.startswith("article:") for j in daemon.jobs()) == 20, log=events)


def test_sighup_reloads_the_config_and_a_broken_one_is_kept_out(site):
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.write_config()
    write(site, "tidings", soon(3600))
    process = daemon_process(site)
    lines: list[dict] = []

    def read_until(event: str) -> None:
        for line in process.stdout:
            lines.append(json.loads(line))
            if lines[-1]["event"] == event:
                return
        raise AssertionError(f"no {event!r} event; the daemon said {lines}")

    read_until("ready")
    site.data["channels"]["mastodon"] = {
        "kind": "social",
        "network": "mastodon",
        "targets": ["social-outbox"],
    }
    site.write_config()
    process.send_signal(signal.SIGHUP)
    read_until("ready")
    assert any(e["event"] == "reloaded" for e in lines)
    assert any(e["event"] == "scheduled" and e.get("draft") == "mastodon:tidings" for e in lines)

    site.config_path.write_text("site: [this is not a site\n")  # a typo while it runs
    process.send_signal(signal.SIGHUP)
    read_until("ready")
    failed = next(e for e in lines if e["event"] == "failed")
    assert "the config loaded before stays in use" in failed["reason"] and "\n" not in failed["reason"]
    site.data["content"]["dir"] = "no-such-folder"  # loads, but cannot start
    site.write_config()
    process.send_signal(signal.SIGHUP)
    read_until("ready")
    assert "back to the config loaded before" in [e for e in lines if e["event"] == "failed"][-1]["reason"]
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err
    assert json.loads(out.splitlines()[-1])["event"] == "stopped"
