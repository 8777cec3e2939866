"""Moving every job of a daemon at once (a timezone change): 10,000 date jobs in the SQLite store.

A job store is filled with `--count` article jobs, then copied, and each copy is moved an hour
later in a fresh process (so each peak RSS is its own), with the scheduler running as it is during
a rescan: once as `JobBook.queue` did before issue 19 (APScheduler's `add_job(replace_existing=
True)` per job: a failed INSERT, an UPDATE and a wake-up, each job in its own transaction), the
baseline; once through `JobBook.batch()` (one transaction, one wake-up). Each process reports wall
seconds and CPU seconds of the move alone, and its peak RSS; a check afterwards reads every job
back through APScheduler at its new time.

    python benchmarks/bench_reschedule.py [--count 10000]

Target (issue 19): the move under 3 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sites import bench_config  # noqa: E402

START = datetime(2099, 1, 4, 8, 0, tzinfo=UTC)  # far ahead: no job falls due while measured
MOVE = timedelta(hours=1)


def write_config(root: Path) -> Path:
    (root / "content").mkdir(exist_ok=True)
    config = bench_config(
        channels={"linkedin": {"kind": "social", "network": "linkedin", "targets": ["posts"]}},
        targets={"posts": {"type": "outbox", "dir": "outbox"}},
    )
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def jobs_of(count: int, shift: timedelta) -> list[tuple[str, datetime]]:
    return [(f"scheduled-{n:05d}", START + timedelta(minutes=n) + shift) for n in range(count)]


def child(config_path: Path, path: str, count: int, shift: timedelta) -> dict[str, float]:
    """Open the book, move (or first fill) every job, and say what it cost."""
    from apscheduler.triggers.date import DateTrigger

    from syndicate.config import load_config
    from syndicate.daemon import JobBook, JobId, run_article_job

    book = JobBook(load_config(config_path), lambda event, **fields: None)
    book.open()
    book.resume()  # running, as during a rescan: every add_job wakes the scheduler thread
    moves = [(JobId.article("linkedin", "posts", slug), slug, when) for slug, when in jobs_of(count, shift)]
    began, cpu = time.perf_counter(), time.process_time()
    if path == "add_job":  # JobBook.queue before issue 19, as it was
        assert book.scheduler is not None
        for job_id, slug, when in moves:
            name = str(job_id)
            book.scheduler.add_job(
                run_article_job,
                DateTrigger(run_date=when),
                args=("linkedin", "posts", slug),
                id=name,
                name=name,
                replace_existing=True,
            )
            book.queued[name] = when
    else:
        with book.batch():
            for job_id, slug, when in moves:
                book.queue(
                    job_id, when, run_article_job, ("linkedin", "posts", slug), ("linkedin", "posts", slug)
                )
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    book.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu": cpu_seconds, "peak_mb": peak_mb}


def run_child(config_path: Path, path: str, count: int, shift: timedelta) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", path, "--config", str(config_path), "--count", str(count)]
    command += ["--shift", str(int(shift.total_seconds()))]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def check_moved(config_path: Path, count: int) -> None:
    """Every job loads through APScheduler's own store at its new time."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from syndicate.ledger import sqlite_url

    store = SQLAlchemyJobStore(url=sqlite_url(config_path.parent / ".syndicate" / "jobs.sqlite"))
    try:
        loaded = {job.args[2]: job.next_run_time for job in store.get_all_jobs()}
    finally:
        store.shutdown()
    assert loaded == dict(jobs_of(count, MOVE)), "the moved jobs do not load at their new times"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--child", choices=["add_job", "batch"])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--shift", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.config, args.child, args.count, timedelta(seconds=args.shift))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        filled = Path(tmp) / "filled"
        filled.mkdir()
        run_child(write_config(filled), "batch", args.count, timedelta(0))
        results = {}
        for path in ("add_job", "batch"):
            site = Path(tmp) / path
            shutil.copytree(filled, site)
            results[path] = run_child(site / "config.yaml", path, args.count, MOVE)
            check_moved(site / "config.yaml", args.count)
    before, after = results["add_job"], results["batch"]
    print(f"moving {args.count:,} date jobs an hour later (SQLite job store, scheduler running)")
    for label, r in (("add_job per job (before)", before), ("JobBook.batch() (after)", after)):
        print(f"  {label:26} {r['seconds']:7.2f} s  {r['cpu']:7.2f} CPU-s  peak RSS {r['peak_mb']:6.1f} MB")
    print(
        f"  batch / add_job time ratio: {after['seconds'] / before['seconds']:.3f} (target: the move < 3 s)"
    )


if __name__ == "__main__":
    main()
