"""`JobBook.batch()`: many date jobs written in one transaction, in APScheduler's own format.

A timezone change moves every job of a site; the batch writes them together. What it writes must
be what `SQLAlchemyJobStore` writes itself (a daemon started afterwards loads those rows as its
own jobs and runs them at their new times), and a write that fails leaves the mirror as the store
is, so the next rescan queues them again.
"""

from __future__ import annotations

import pickle
import sqlite3
from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from syndicate import clock
from syndicate.daemon import JobBook, JobId, run_article_job

from .test_daemon import outbox_posts, running, soon, wait_for

DRAFT = ("linkedin", "social-outbox", "linkedin:{}")


def stored_states(jobs_file) -> dict[str, tuple[float, dict]]:
    """Job id -> (next_run_time column, unpickled job state), read with sqlite3 alone."""
    with sqlite3.connect(jobs_file) as raw:
        rows = raw.execute("SELECT id, next_run_time, job_state FROM apscheduler_jobs").fetchall()
    return {job_id: (next_run, pickle.loads(state)) for job_id, next_run, state in rows}


@pytest.fixture
def book(site):
    events: list[dict] = []
    book = JobBook(site.config(), lambda event, **fields: events.append({"event": event, **fields}))
    book.open()
    book.events = events  # type: ignore[attr-defined]
    yield book
    book.close()


def queue(book: JobBook, slug: str, when: datetime) -> None:
    channel, target, key = DRAFT
    job_id = JobId.article(channel, target, slug)
    book.queue(job_id, when, run_article_job, (channel, target, slug), (channel, target, key.format(slug)))


def test_a_batch_writes_the_rows_apschedulers_add_job_writes(site, book):
    when = soon(86400)
    assert book.scheduler is not None
    book.scheduler.add_job(  # the path before batches, for a job of the same shape
        run_article_job,
        "date",
        run_date=when,
        args=("linkedin", "social-outbox", "by-hand"),
        id="by-hand",
        name="by-hand",
        replace_existing=True,
    )
    with book.batch():
        queue(book, "batched", when)
        assert book.events == []  # written, and logged, when the batch ends
    states = stored_states(site.root / ".syndicate" / "jobs.sqlite")
    by_hand_next, by_hand = states["by-hand"]
    name = "article:linkedin:social-outbox:batched"
    batched_next, batched = states[name]
    assert batched_next == by_hand_next == when.timestamp()
    assert by_hand.pop("trigger").__getstate__() == batched.pop("trigger").__getstate__()
    assert {**by_hand, "id": name, "name": name, "args": batched["args"]} == batched
    assert [e["event"] for e in book.events] == ["scheduled"]


def test_one_batch_moves_stored_jobs_and_adds_new_ones(site, book):
    first = soon(86400)
    for slug in ("ebb", "flow"):
        queue(book, slug, first)  # outside a batch: written at once
    later = first + timedelta(hours=3)
    with book.batch():
        for slug in ("ebb", "flow", "slack-water"):
            queue(book, slug, later)
        with book.batch():  # part of the outer one
            queue(book, "neap", later)
    assert book.jobs() == dict.fromkeys(
        (f"article:linkedin:social-outbox:{slug}" for slug in ("ebb", "flow", "slack-water", "neap")), later
    )
    assert book.jobs() == book.queued
    drafts = [e["draft"] for e in book.events if e["event"] == "scheduled"]
    assert drafts[2:] == ["linkedin:ebb", "linkedin:flow", "linkedin:slack-water", "linkedin:neap"]


def test_unqueueing_a_job_of_the_batch_writes_the_batch_first(site, book):
    when = soon(86400)
    with book.batch():
        queue(book, "ebb", when)
        queue(book, "flow", when)
        book.unqueue(JobId.article("linkedin", "social-outbox", "ebb"), "draft")
    assert list(book.jobs()) == ["article:linkedin:social-outbox:flow"]
    assert [(e["event"], e["draft"]) for e in book.events] == [
        ("scheduled", "linkedin:ebb"),
        ("scheduled", "linkedin:flow"),
        ("unscheduled", "article:linkedin:social-outbox:ebb"),
    ]


def test_a_failed_batch_leaves_the_mirror_as_the_store_is(site, book, monkeypatch):
    first = soon(86400)
    queue(book, "ebb", first)
    book.events.clear()

    def refuse(rows):
        raise OperationalError("UPDATE apscheduler_jobs", {}, Exception("database or disk is full"))

    monkeypatch.setattr(book, "_write", refuse)
    with pytest.raises(OperationalError), book.batch():
        queue(book, "ebb", first + timedelta(hours=1))
        queue(book, "flow", first)
    assert book.queued == {"article:linkedin:social-outbox:ebb": first}
    assert book.events == []
    with pytest.raises(RuntimeError), book.batch():  # the block itself failing: nothing written
        queue(book, "flow", first)
        raise RuntimeError("a rescan that failed half-way")
    assert book.queued == {"article:linkedin:social-outbox:ebb": first}
    monkeypatch.undo()
    assert book.jobs() == book.queued


def test_a_timezone_change_moves_every_job_and_a_restarted_daemon_runs_them_then(site):
    """Naive publish dates are the site's local time: a new timezone moves every job. The daemon
    that starts on the new config moves them (one batch); one started after it finds them stored
    at their new times, writes nothing, and sends each then, not before."""
    site.data["channels"] = {"linkedin": site.data["channels"]["linkedin"]}
    site.data["site"]["timezone"] = "Etc/GMT+1"  # UTC-1: the same wall-clock time, an hour later
    site.write_config()
    slugs = ["ebb", "flow", "neap"]
    due = {slug: soon(8 + n) for n, slug in enumerate(slugs)}  # as instants in UTC
    for slug, when in due.items():
        local = when.replace(tzinfo=None).isoformat()
        site.article(f"{slug}.md", f"---\ntitle: {slug}\npublish_date: '{local}'\ncta: Read it\n---\nBody.\n")
    job = "article:linkedin:social-outbox:{}".format
    with running(site.config()) as (daemon, _events):
        assert daemon.jobs() == {job(s): when + timedelta(hours=1) for s, when in due.items()}

    site.data["site"]["timezone"] = "UTC"
    site.write_config()
    with running(site.config()) as (daemon, events):
        assert daemon.jobs() == {job(s): when for s, when in due.items()}
        assert sorted(e["draft"] for e in events if e["event"] == "scheduled") == [
            f"linkedin:{s}" for s in slugs
        ]
    assert {
        name: state["next_run_time"]
        for name, (_, state) in stored_states(site.root / ".syndicate" / "jobs.sqlite").items()
    } == {job(s): when for s, when in due.items()}

    with running(site.config()) as (daemon, events):
        assert daemon.jobs() == {job(s): when for s, when in due.items()}  # loaded, not written again
        assert not [e for e in events if e["event"] == "scheduled"]
        assert outbox_posts(site) == []
        wait_for(lambda: len(outbox_posts(site)) == len(slugs), log=events)
        assert clock.now() >= max(due.values())
    sent = {e["draft"]: datetime.fromisoformat(e["time"]) for e in events if e["event"] == "sent"}
    assert set(sent) == {f"linkedin:{s}" for s in slugs}
    for slug, when in due.items():
        assert sent[f"linkedin:{slug}"] >= when.replace(microsecond=0)
