"""The daemon over 10,000 future-dated articles: start time, idle RSS, rescan time.

A real `syndicate daemon` process is started on a generated folder (one LinkedIn channel to a
file outbox, so 10,000 date jobs in the SQLite job store), timed until its `ready` line, left
idle, and its resident memory read from /proc. It is started a second time on the same state
(jobs already stored) for the restart figure. The rescan of 10,000 unchanged files is timed in
this process against a first full load of the same folder, which gives the ratio.

    python benchmarks/bench_daemon.py [--count 10000] [--runs 3]

Targets (issue 6): idle RSS under 150 MB; a rescan of 10,000 unchanged files under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_content import PARAGRAPH  # noqa: E402
from sites import bench_config  # noqa: E402

ARTICLE = """---
title: 'Scheduled article {n}'
description: 'Article {n}, due in the future.'
read_time: '4 mins'
publish_date: '{date}'
cta: 'Follow us for article {n}.'
tags: [bench, daemon]
---

{body}
"""


def generate(root: Path, count: int) -> Path:
    content = root / "content"
    content.mkdir()
    start = datetime.now(UTC) + timedelta(days=30)
    for n in range(count):
        date = (start + timedelta(minutes=n)).isoformat()
        (content / f"scheduled-{n:05d}.md").write_text(ARTICLE.format(n=n, date=date, body=PARAGRAPH))
    config = bench_config(
        channels={"linkedin": {"kind": "social", "network": "linkedin", "targets": ["posts"]}},
        targets={"posts": {"type": "outbox", "dir": "outbox"}},
        schedule={"rescan_seconds": 3600},
    )
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_daemon(config: Path) -> tuple[float, float, int]:
    """Seconds until `ready`, idle RSS in MB after settling, and the job count it reported."""
    command = [sys.executable, "-m", "syndicate", "--config", str(config), "daemon", "--log-format", "json"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    jobs = 0
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "ready":
            jobs = event["jobs"]
            break
    ready = time.perf_counter() - began
    time.sleep(3)  # idle
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    return ready, rss_kb / 1024, jobs


def rescan_times(config_path: Path, runs: int) -> tuple[float, float]:
    from syndicate.config import load_config
    from syndicate.content import ArticleCache

    cache = ArticleCache(load_config(config_path))
    began = time.perf_counter()
    cache.refresh()
    first = time.perf_counter() - began
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        changed = cache.refresh()
        times.append(time.perf_counter() - began)
        assert not changed
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = generate(Path(tmp), args.count)
        first_start, first_rss, jobs = run_daemon(config)
        restart, restart_rss, _ = run_daemon(config)
        load, rescan = rescan_times(config, args.runs)
    n = args.count
    print(f"daemon over {n:,} future articles: {jobs:,} jobs")
    print(
        f"  first start (stores every job):  {first_start:6.2f} s   idle RSS {first_rss:6.1f} MB (target < 150)"
    )
    print(f"  restart (jobs already stored):   {restart:6.2f} s   idle RSS {restart_rss:6.1f} MB")
    print(f"  full load of {n:,} files:         {load:6.3f} s")
    print(f"  rescan of {n:,} unchanged files:  {rescan:6.3f} s (target < 1 s; median of {args.runs})")
    print(f"  rescan / full load ratio:         {rescan / load:6.3f}")


if __name__ == "__main__":
    main()
