"""Workers: one send of 100,000 readers through 1, 2 and 4 `syndicate worker` processes.

A throwaway PostgreSQL (Debian's `postgresql`, started here on loopback) holds the ledger, the
subscriber store and the procrastinate queue; the readers are generated into a template
database once and each run gets a fresh copy of it. For each worker count: one article's email
to the whole list is enqueued (`queue.enqueue`, `shard_size` readers a shard), then N real
`syndicate worker` processes send it into Postfix's C `smtp-sink` (else aiosmtpd in its own
process), and the clock runs from their start until the ledger says the draft is `finished`.

Reported: wall time, msgs/s, the scaling ratio against 1 worker, the workers' CPU ms per message
(`RUSAGE_CHILDREN`) and PostgreSQL's (every server process's utime+stime from /proc, before and
after): what bounds a projection to N machines, since every worker of every machine writes to
that one database.

    python benchmarks/bench_workers.py                      # 100,000 readers, 1/2/4 workers
    python benchmarks/bench_workers.py --readers 20000 --workers 1,2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_content import PARAGRAPH  # noqa: E402
from bench_scale import ARTICLE, NOW, free_port, seed_readers, start_sink  # noqa: E402
from sites import bench_config, loopback_smtp  # noqa: E402

sys.path.append(str(BENCH.parent / "tests" / "helpers"))
from pgserver import postgres_bin, throwaway_postgres  # noqa: E402


def postgres_cpu(data: Path) -> float:
    """CPU seconds (user + system) of every process of the server whose data folder is `data`."""
    pid = int((data / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(entry.name) == pid:  # the postmaster, and the backends that ended (its cutime, cstime)
            total += sum(int(f) for f in fields[11:15]) / tick
        elif int(fields[1]) == pid:  # a backend still running
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def execute(url: str, statement: str) -> None:
    import psycopg

    from syndicate.queue import conninfo

    with psycopg.connect(conninfo(url + "/postgres"), autocommit=True) as conn:
        conn.execute(statement)


def write_site(root: Path, database: str, port: int, shard_size: int) -> Path:
    content = root / "content"
    content.mkdir(parents=True, exist_ok=True)
    day = (NOW - timedelta(hours=1)).isoformat()
    (content / "tide-tables.md").write_text(ARTICLE.format(n=1, date=day, body=PARAGRAPH * 3))
    raw = bench_config(
        channels={"letters": {"kind": "email", "mode": "single", "targets": ["mail"]}},
        targets={"mail": loopback_smtp(port, "", per_connection=100_000)},
        site={"unsubscribe_secret": "bench-secret", "timezone": "UTC"},
        state_dir=str(root / "state"),
    )
    raw["targets"]["mail"]["recipients"] = {"list": "readers"}
    raw["database_url"] = database
    raw["workers"] = {"shard_size": shard_size, "stalled_seconds": 10}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def enqueue_all(config_path: Path) -> int:
    """Plan the article's send and put it on the queue; its messages."""
    from syndicate.config import load_config
    from syndicate.content import load_articles
    from syndicate.plan import plan_articles
    from syndicate.queue import enqueue

    config = load_config(config_path)
    articles = load_articles(config).articles
    sends = plan_articles(config, articles, NOW)
    return sum(item.messages for item in enqueue(config, sends))


def finished(database: str) -> tuple[bool, int]:
    from syndicate.ledger import Ledger

    with Ledger(database, read_only=True) as ledger:
        rows = ledger.drafts()
        sent = ledger.sent_total()
    return bool(rows) and all(row.state == "finished" for row in rows), sent


def run(root: Path, base: str, data: Path, workers: int, port: int, shard_size: int, n: int) -> dict:
    database = f"{base}/w{workers}_{n}"
    execute(base, f'CREATE DATABASE "w{workers}_{n}" TEMPLATE seed')
    site = root / f"site-{workers}-{n}"
    config = write_site(site, database, port, shard_size)
    messages = enqueue_all(config)
    env = {**os.environ, "SYNDICATE_NOW": NOW.isoformat()}
    command = [sys.executable, "-m", "syndicate", "--config", str(config), "worker"]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pg_before = postgres_cpu(data)
    began = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    try:
        while True:
            done, sent = finished(database)
            if done:
                break
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(
                    "a worker stopped: " + "".join(p.stderr.read() for p in processes if p.stderr)
                )
            time.sleep(0.5)
        elapsed = time.perf_counter() - began
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
    pg_cpu = postgres_cpu(data) - pg_before
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {
        "workers": workers,
        "messages": messages,
        "sent": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "worker_cpu_ms": 1000 * cpu / max(sent, 1),
        "pg_cpu_ms": 1000 * pg_cpu / max(sent, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each worker count, interleaved")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    bin_dir = postgres_bin()
    if bin_dir is None:
        sys.exit("bench_workers needs PostgreSQL (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    port = free_port()
    sink = start_sink(port)
    try:
        with throwaway_postgres(bin_dir, "max_connections=100") as server:
            base = server.url.rsplit("/", 1)[0]
            execute(base, "CREATE DATABASE seed")
            from syndicate.subscribers import SubscriberStore

            began = time.perf_counter()
            with SubscriberStore(f"{base}/seed") as store:
                seed_readers(store, args.readers)
            print(
                f"{args.readers:,} readers generated into PostgreSQL in {time.perf_counter() - began:.1f} s"
            )
            results = [
                run(folder, base, server.data, workers, port, args.shard_size, n)
                for n in range(args.rounds)
                for workers in counts
            ]
    finally:
        sink.terminate()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{args.readers:,} readers, shards of {args.shard_size}, {os.cpu_count()} CPUs, one PostgreSQL")
    print("| workers | seconds | msgs/s | ratio to 1 worker | worker CPU ms/msg | PostgreSQL CPU ms/msg |")
    print("| --- | --- | --- | --- | --- | --- |")
    one = [r["rate"] for r in results if r["workers"] == counts[0]]
    base_rate = sorted(one)[len(one) // 2]
    for r in results:
        print(
            f"| {r['workers']} | {r['seconds']:.1f} | {r['rate']:.0f} | {r['rate'] / base_rate:.2f} "
            f"| {r['worker_cpu_ms']:.2f} | {r['pg_cpu_ms']:.2f} |"
        )
        assert r["sent"] == r["messages"] == args.readers, r
    pg_ms = sorted(r["pg_cpu_ms"] for r in results)[len(results) // 2]
    print(
        f"\nPostgreSQL spends {pg_ms:.2f} ms of CPU a message: one core of it carries about "
        f"{1000 / pg_ms:.0f} msgs/s, the ceiling for any number of worker machines per database core."
    )


if __name__ == "__main__":
    main()
