"""Make tests/data/old_state/: a site and the state a daemon left in it, written by the code of the
day this script was run (the base of issue 14, before `daemon.py` became the `daemon/` package).

Run it from the checkout whose code should write the state (normally never again: the files it
wrote are committed, and `tests/test_daemon_compat.py` loads them with today's code to show that a
job store and a ledger written before a change still load and resume):

    python tests/data/make_old_state.py [OUT]      # default: tests/data/old_state

What it writes, at the fixed instant NOW (a Monday just after 08:00 in Europe/London):
- `config.yaml` with relative paths only (content/, readers.csv, outbox/, state/), so the copy a
  test makes anywhere works; the SMTP target's port is PORT, which the test replaces by its sink's;
- `content/`: two articles in the week before the weekly digest, one older (missed: skipped by the
  catch-up policy), two in the future;
- `state/ledger.sqlite` + `state/ledger.marker`: the weekly digest `weekly:2026-11-30` sent to the
  first readers and stopped part-way (as SIGTERM does), the rest pending, its draft `started` and
  its body stored;
- `state/jobs.sqlite`: the APScheduler job store a daemon start wrote from that state: one article
  job per future article (`article:`), the weekly and daily cron jobs (`digest:`), the daily
  digest due now (`digest-now:`), the resume of the half-sent digest (`resume:`) and a retry of
  it (`retry:resume:`), each a reference to `syndicate.daemon:run_*_job` plus its arguments;
- `expected.json`: the readers the ledger has as sent and as pending, and the job ids stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NOW = "2026-11-30T08:00:10+00:00"  # a Monday: the weekly digest of 08:00 is 10 s old
PORT = 2525  # a placeholder: the test writes its own sink's port here
READERS = [f"reader{n:02d}@example.org" for n in range(10)]
SENT_BEFORE_STOP = 4  # the stop is asked for after this many messages have arrived

ARTICLE = """---
title: '{title}'
description: 'What {title} is about.'
read_time: '3 mins'
publish_date: '{date}'
cta: 'Reply and tell us about {title}.'
---
Body of {title}.
"""
ARTICLES = {
    "harbour-lights": "2026-11-20T09:00:00+00:00",  # missed: before the digest's week
    "neap-tides": "2026-11-25T09:00:00+00:00",  # in the weekly digest
    "spring-tides": "2026-11-27T09:00:00+00:00",  # in the weekly digest
    "winter-moorings": "2026-12-03T09:00:00+00:00",  # future: an article job
    "ice-on-the-quay": "2026-12-10T09:00:00+00:00",  # future: an article job
}


def site_config() -> dict:
    return {
        "site": {
            "name": "Old State Weekly",
            "base_url": "https://example.com/articles/",
            "timezone": "Europe/London",
            "sender": "Old State Weekly <news@example.com>",
            "postal_address": "1 Example Street, London",
            "unsubscribe_url": "https://example.com/unsubscribe",
        },
        "content": {"dir": "content"},
        "state_dir": "state",
        "channels": {
            "weekly": {
                "kind": "email",
                "mode": "digest",
                "schedule": {"every": "week", "weekday": "mon", "at": "08:00"},
                "targets": ["newsletter"],
            },
            "daily": {
                "kind": "email",
                "mode": "digest",
                "schedule": {"every": "day", "at": "08:00"},
                "targets": ["mail-outbox"],
            },
            "linkedin": {"kind": "social", "network": "linkedin", "targets": ["social-outbox"]},
        },
        "targets": {
            "newsletter": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": PORT,
                "security": "none",
                "recipients": "readers.csv",
            },
            "mail-outbox": {"type": "outbox", "dir": "outbox/email", "recipients": ["a@example.com"]},
            "social-outbox": {"type": "outbox", "dir": "outbox/social"},
        },
    }


def write_site(out: Path) -> Path:
    (out / "content").mkdir(parents=True)
    for slug, date in ARTICLES.items():
        text = ARTICLE.format(title=slug.replace("-", " ").title(), date=date)
        (out / "content" / f"{slug}.md").write_text(text, encoding="utf-8")
    (out / "readers.csv").write_text("email\n" + "".join(f"{r}\n" for r in READERS), encoding="utf-8")
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(site_config(), sort_keys=False), encoding="utf-8")
    return path


def half_send_the_digest(config_path: Path) -> None:
    """The weekly digest to a loopback sink that asks for a stop (SIGTERM's path) part-way."""
    from syndicate.config import load_config
    from syndicate.content import load_articles
    from syndicate.plan import plan_due
    from syndicate.send import send_planned
    from tests.conftest import SmtpSink, running_sink

    stop = threading.Event()

    class StoppingSink(SmtpSink):
        async def handle_DATA(self, server, session, envelope):
            reply = await super().handle_DATA(server, session, envelope)
            if len(self.received) >= SENT_BEFORE_STOP:
                stop.set()
            return reply

    sink = StoppingSink()
    with running_sink(sink) as controller:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        data["targets"]["newsletter"]["port"] = controller.port
        config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        config = load_config(config_path)
        articles = load_articles(config).articles
        from syndicate import clock

        sends = plan_due(config, articles, clock.now(), channels=["weekly"])
        assert [s.draft_key for s in sends] == ["weekly:2026-11-30"], sends
        send_planned(config, sends, stop=stop)
    data["targets"]["newsletter"]["port"] = PORT
    config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_job_store(config_path: Path) -> list[str]:
    """A daemon start on that state, its scheduler never running a job, plus the retry a
    failed resume queues (`Daemon._deliver`); then closed, leaving the job store as it was."""
    from apscheduler.schedulers.background import BackgroundScheduler

    import syndicate.daemon as old
    from syndicate import clock
    from syndicate.config import load_config

    # Never run a job: not when started, nor on the wake-up its shutdown makes after leaving pause.
    BackgroundScheduler._process_jobs = lambda self: None  # type: ignore[method-assign]
    config = load_config(config_path)
    events: list[dict] = []
    daemon = old.Daemon(config, events.append, watch=False)
    daemon.start()
    try:
        draft = ("weekly", "newsletter", "weekly:2026-11-30")
        job_id = f"resume:{draft[0]}:{draft[1]}:{draft[2]}"
        assert job_id in daemon.jobs(), (daemon.jobs(), events)
        retry_at = clock.now().replace(microsecond=0) + timedelta(minutes=1)
        daemon._queue(f"retry:{job_id}", retry_at, old.run_resume_job, draft, draft)
        return sorted(daemon.jobs())
    finally:
        daemon.close()


def expected_readers(config_path: Path) -> dict[str, list[str]]:
    from syndicate.config import load_config
    from syndicate.ledger import Ledger

    with Ledger.from_config(load_config(config_path)) as ledger:
        statuses = ledger.statuses("weekly", "newsletter", "weekly:2026-11-30")
        state = ledger.draft_state(("weekly", "newsletter", "weekly:2026-11-30"))
    assert state == "started", state
    sent = sorted(r for r, (status, _) in statuses.items() if status == "sent")
    pending = sorted(r for r in READERS if r not in sent)
    assert sent and pending, statuses
    assert all(statuses.get(r, ("pending",))[0] == "pending" for r in pending), statuses
    return {"sent": sent, "pending": pending}


def main(out: Path) -> None:
    if os.environ.get("SYNDICATE_NOW") != NOW:  # the clock is read once per process: set it first
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "SYNDICATE_NOW": NOW})
    sys.path.insert(0, str(REPO))
    shutil.rmtree(out, ignore_errors=True)
    config_path = write_site(out)
    half_send_the_digest(config_path)
    jobs = write_job_store(config_path)
    readers = expected_readers(config_path)
    (out / "state" / "daemon.lock").unlink(missing_ok=True)  # a lock, not state
    shutil.rmtree(out / "outbox", ignore_errors=True)
    leftovers = sorted(p.name for p in (out / "state").iterdir())
    assert leftovers == ["jobs.sqlite", "ledger.marker", "ledger.sqlite"], leftovers
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    manifest = {"now": NOW, "written_by_commit": commit.strip(), "jobs": jobs}
    (out / "expected.json").write_text(json.dumps({**manifest, **readers}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({**manifest, **readers}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE / "old_state")
