"""State written by the code before the daemon became a package still loads and resumes.

tests/data/old_state/ was written by `tests/data/make_old_state.py` at the base of issue 14: a job
store holding every kind of job that code queued (article, digest, digest-now, resume, retry),
each persisted as a reference like `syndicate.daemon:run_resume_job`, and a ledger with a weekly
digest stopped part-way. Today's code must load every one of those jobs (APScheduler quietly
deletes a job whose function no longer imports) and finish the digest: each reader it had not
reached gets it exactly once, by a real loopback SMTP server's count, and no reader it had reached
gets it again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import obj_to_ref

import syndicate.daemon
from syndicate.config import load_config
from syndicate.daemon import JobId, run_article_job, run_digest_job, run_resume_job
from syndicate.ledger import Ledger, sqlite_url

from .conftest import DATA
from .test_daemon import running, wait_for

OLD_STATE = DATA / "old_state"
EXPECTED = json.loads((OLD_STATE / "expected.json").read_text(encoding="utf-8"))
DIGEST = ("weekly", "newsletter", "weekly:2026-11-30")


def old_site(tmp_path: Path, port: int) -> Path:
    """A copy of the old state (its config's paths are relative), its SMTP target on `port`."""
    root = tmp_path / "old-site"
    shutil.copytree(OLD_STATE, root)
    config_path = root / "config.yaml"
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["targets"]["newsletter"]["port"] = port
    config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return config_path


def test_every_job_of_an_old_job_store_loads_with_its_function(tmp_path):
    jobs_file = old_site(tmp_path, 2525).parent / "state" / "jobs.sqlite"
    with sqlite3.connect(jobs_file) as raw:
        stored = sorted(row[0] for row in raw.execute("SELECT id FROM apscheduler_jobs"))
    assert stored == EXPECTED["jobs"]
    store = SQLAlchemyJobStore(url=sqlite_url(jobs_file))
    try:
        loaded = {job.id: job for job in store.get_all_jobs()}  # one that fails to load is deleted
    finally:
        store.shutdown()
    assert sorted(loaded) == stored
    kinds = {
        "article": syndicate.daemon.run_article_job,
        "digest": syndicate.daemon.run_digest_job,
        "digest-now": syndicate.daemon.run_digest_job,
        "resume": syndicate.daemon.run_resume_job,
        "retry": syndicate.daemon.run_resume_job,  # the retry of a resume
    }
    for job_id, job in loaded.items():
        assert job.func is kinds[job_id.split(":")[0]], job_id


def test_a_digest_half_sent_by_the_old_code_is_finished_once_per_remaining_reader(
    tmp_path, smtp_sink, clock_at
):
    sink, port = smtp_sink
    config = load_config(old_site(tmp_path, port))
    clock_at(datetime.fromisoformat(EXPECTED["now"]) + timedelta(seconds=30))
    with running(config) as (_daemon, events):
        wait_for(lambda: len(sink.received) >= len(EXPECTED["pending"]), log=events)
        wait_for(
            lambda: any(e["event"] == "sent" and e.get("draft") == DIGEST[2] for e in events), log=events
        )
    assert sink.copies() == dict.fromkeys(EXPECTED["pending"], 1)  # none of EXPECTED["sent"] again
    with Ledger.from_config(config) as ledger:
        assert ledger.draft_state(DIGEST) == "finished"
        statuses = ledger.statuses(*DIGEST)
    assert {reader: status for reader, (status, _) in statuses.items()} == dict.fromkeys(
        EXPECTED["sent"] + EXPECTED["pending"], "sent"
    )


def test_todays_code_writes_the_ids_and_references_the_old_store_holds():
    """So a store written now loads in the code before it too, and the jobs a start finds in an
    old store are the ones it would queue (the same id replaces, never duplicates, a job)."""
    made = [
        JobId.article("linkedin", "social-outbox", "ice-on-the-quay"),
        JobId.article("linkedin", "social-outbox", "winter-moorings"),
        JobId.digest_now("daily", "mail-outbox"),
        JobId.digest("daily", "mail-outbox"),
        JobId.digest("weekly", "newsletter"),
        JobId.resume(DIGEST),
        JobId.resume(DIGEST).retried(),
    ]
    assert [str(job_id) for job_id in made] == EXPECTED["jobs"]
    assert [JobId.parse(text) for text in EXPECTED["jobs"]] == made
    assert JobId.parse("backup:nightly") is None  # not a kind the daemon makes
    for func in (run_article_job, run_digest_job, run_resume_job):
        assert obj_to_ref(func) == f"syndicate.daemon:{func.__name__}"
