"""Scale: one digest to a subscriber list of 10,000 to 1,000,000 readers, memory and time.

For each size, in fresh child processes (so each peak RSS is that step's own, read with
`resource.getrusage` in the child): the readers are generated into the subscriber store (SQLite
in a temporary state folder), then `send()` mails the digest to the list on a loopback SMTP sink
(Postfix's C `smtp-sink` when installed, else aiosmtpd in its own process), 2 connections;
then a second `send()` that finds every message sent and only skips. Reported: wall time of each
send, its peak RSS, the ledger's bytes per message (file size / rows) and, last, the ratio of
each size's peak RSS to the first size's.

A full send takes about 2-3 ms a message here, so a million would take most of an hour. Sizes
above `--full-up-to` (default 100,000) are measured differently, and the output says so: the
ledger is first filled with `sent` rows for all but every `--due-every`-th reader (written in
bulk, as a finished first send would leave them), so the first send goes through the whole list,
a chunk at a time, and mails only the readers left (1 % by default); the second send skips them
all.

    python benchmarks/bench_scale.py --readers 10000,100000,1000000
    python benchmarks/bench_scale.py --readers 10000 --code /tmp/older-syndicate   # another checkout
    python benchmarks/bench_scale.py --csv 10000,1000000   # CSV lists through `Readers`, no send
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
NOW = datetime.now(UTC).replace(microsecond=0)
SMTP_SINK = "/usr/sbin/smtp-sink"
ARTICLE = """---
title: Scale {n}
publish_date: {date}
tags: [bench]
---
{body}
"""


# -- the parent ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen:
    if Path(SMTP_SINK).exists():
        command = [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1000"]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--sink", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


def child(code: Path, step: str, root: Path, **options: object) -> dict:
    """Run one step in a fresh Python process; its JSON answer."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", step, str(root), json.dumps(options)]
    env = {**os.environ, "PYTHONPATH": str(code), "SYNDICATE_NOW": NOW.isoformat()}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(code: Path, readers: int, full_up_to: int, due_every: int, articles: int, port: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench-scale-{readers}-"))
    try:
        made = child(code, "setup", root, readers=readers, port=port, articles=articles)
        store_only = database_bytes(root)  # the subscriber store shares the ledger's file
        partial = readers > full_up_to
        if partial:
            made |= child(code, "prefill", root, due_every=due_every)
        first = child(code, "send", root)
        second = child(code, "send", root)
        size = database_bytes(root) - store_only
        return {
            "readers": readers,
            "partial": partial,
            **made,
            "first": first,
            "second": second,
            "ledger_bytes": size,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def database_bytes(root: Path) -> int:
    """The SQLite file (and its -wal, -shm) holding the store and the ledger."""
    ledger = root / "state" / "ledger.sqlite"
    return sum(p.stat().st_size for p in ledger.parent.glob("ledger.sqlite*"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", default="10000,100000,1000000", help="comma-separated list sizes")
    parser.add_argument("--full-up-to", type=int, default=100_000, help="largest size sent in full")
    parser.add_argument("--due-every", type=int, default=100, help="above it, every Nth reader is due")
    parser.add_argument("--articles", type=int, default=3, help="articles in the digest")
    parser.add_argument("--code", type=Path, default=REPO, help="the syndicate checkout to measure")
    parser.add_argument("--csv", help="instead: read CSV lists of these sizes through `Readers` (no send)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        return run_aiosmtpd(args.sink)
    if args.child:
        step, root, options = args.child
        print(json.dumps(STEPS[step](Path(root), **json.loads(options))))
        return None
    if args.csv:
        return csv_sizes(args.code, [int(n) for n in args.csv.split(",")])
    port = free_port()
    sink = start_sink(port)
    print(
        f"code: {args.code}; sink: {'smtp-sink' if Path(SMTP_SINK).exists() else 'aiosmtpd'}; "
        f"{os.cpu_count()} CPUs; {args.articles}-article digest, 2 connections"
    )
    results = []
    try:
        for size in (int(n) for n in args.readers.split(",")):
            result = measure(args.code, size, args.full_up_to, args.due_every, args.articles, port)
            results.append(result)
            report(result)
    finally:
        sink.terminate()
        sink.wait(10)
    base = results[0]["first"]["peak_mb"]
    for result in results:
        ratio = result["first"]["peak_mb"] / base
        skip = result["second"]["peak_mb"] / base
        print(
            f"{result['readers']:>9,}: peak RSS / {results[0]['readers']:,}'s: "
            f"send {ratio:.2f}, skip {skip:.2f}"
        )
    return None


def report(r: dict) -> None:
    first, second, n = r["first"], r["second"], r["readers"]
    rows = first["ledger_rows"]
    how = (
        (
            f"first send through the whole list with {r['due']:,} due ({r['prefilled']:,} sent rows "
            f"prefilled in bulk)"
        )
        if r["partial"]
        else "first send to everyone"
    )
    print(f"{n:>9,} readers (store filled in {r['setup_s']:.1f} s): {how}")
    print(
        f"           first:  {first['seconds']:8.1f} s, sent {first['sent']:,}, "
        f"skipped {first['skipped']:,}, "
        f"peak RSS {first['peak_mb']:.1f} MB"
    )
    print(
        f"           second: {second['seconds']:8.1f} s, sent {second['sent']:,}, "
        f"skipped {second['skipped']:,}, "
        f"peak RSS {second['peak_mb']:.1f} MB"
    )
    print(
        f"           ledger (the database's growth past the store) "
        f"{r['ledger_bytes'] / 1e6:.1f} MB for {rows:,} rows: "
        f"{r['ledger_bytes'] / max(rows, 1):.0f} bytes a message"
    )
    sys.stdout.flush()


# -- the children ----------------------------------------------------------------------------


def write_config(root: Path, port: int) -> None:
    import yaml

    sys.path.insert(0, str(BENCH))
    from sites import bench_config, digest_channel, loopback_smtp

    raw = bench_config(
        channels={"daily": digest_channel("mail")},
        targets={"mail": loopback_smtp(port, "", per_connection=100_000, connections=2)},
        site={"unsubscribe_secret": "bench-secret", "timezone": "UTC"},
        state_dir=str(root / "state"),
    )
    raw["targets"]["mail"]["recipients"] = {"list": "readers"}
    (root / "config.yaml").write_text(yaml.safe_dump(raw))


def config_of(root: Path):
    from syndicate.config import load_config

    return load_config(root / "config.yaml")


def step_setup(root: Path, readers: int, port: int, articles: int) -> dict:
    """The content, the config and `readers` subscribed readers in the store, in bulk."""
    from syndicate.subscribers import SubscriberStore

    sys.path.insert(0, str(BENCH))
    from bench_content import PARAGRAPH

    began = time.perf_counter()
    content = root / "content"
    content.mkdir(parents=True)
    day = (NOW - timedelta(days=1)).date().isoformat()
    for n in range(articles):
        (content / f"scale-{n}.md").write_text(ARTICLE.format(n=n, date=day, body=PARAGRAPH))
    write_config(root, port)
    with SubscriberStore.from_config(config_of(root)) as store:
        seed_readers(store, readers)
    return {"setup_s": time.perf_counter() - began}


def seed_readers(store, readers: int, list_name: str = "readers") -> None:
    """`readers` subscribed readers in the store's list, in bulk (10,000 rows a statement)."""
    from sqlalchemy import insert

    from syndicate.subscribers import new_id, subscribers_table

    now = NOW
    with store.engine.begin() as conn:
        for start in range(0, readers, 10_000):
            rows = [
                {
                    "id": new_id(),
                    "list": list_name,
                    "email": f"reader{n}@example.org",
                    "address_key": f"reader{n}@example.org",
                    "name": f"Reader {n}",
                    "attributes": "{}",
                    "status": "subscribed",
                    "source": "bench",
                    "created_at": now,
                    "updated_at": now,
                    "confirmed_at": now,
                    "soft_bounces": 0,
                }
                for n in range(start, min(readers, start + 10_000))
            ]
            conn.execute(insert(subscribers_table), rows)


def step_prefill(root: Path, due_every: int) -> dict:
    """The ledger as a finished first send leaves it, but for every `due_every`-th reader."""
    from sqlalchemy import func, insert, select

    from syndicate.content import load_articles
    from syndicate.identity import identify
    from syndicate.ledger import Ledger, deliveries
    from syndicate.plan import plan_articles
    from syndicate.subscribers import SubscriberStore, subscribers_table

    config = config_of(root)
    articles, _ = identify(config, load_articles(config).articles, record=True)
    [planned] = plan_articles(config, articles, NOW)
    with SubscriberStore.from_config(config) as store, store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(subscribers_table)).scalar_one()
    prefilled = 0
    with Ledger.from_config(config) as ledger, ledger.engine.begin() as conn:
        for start in range(0, total, 10_000):
            rows = [
                {
                    "channel": planned.channel,
                    "target": planned.target,
                    "draft_key": planned.draft_key,
                    "recipient": f"reader{n}@example.org",
                    "content_hash": "prefilled",
                    "status": "sent",
                    "attempts": 1,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "sent_at": NOW,
                }
                for n in range(start, min(total, start + 10_000))
                if n % due_every
            ]
            conn.execute(insert(deliveries), rows)
            prefilled += len(rows)
    return {"prefilled": prefilled, "due": total - prefilled}


def step_send(root: Path) -> dict:
    import resource

    from syndicate.ledger import Ledger
    from syndicate.send import send

    config = config_of(root)
    began = time.perf_counter()
    outcome = send(config, select="all", now=NOW)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    totals = outcome.totals()["mail"]
    with Ledger.from_config(config) as ledger:
        rows = sum(sum(statuses.values()) for statuses in ledger.counts().values())
    assert outcome.ok, totals
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "sent": totals["sent"],
        "skipped": totals["skipped"],
        "ledger_rows": rows,
    }


def csv_sizes(code: Path, sizes: list[int]) -> None:
    """`Readers` over a generated CSV of each size (as a dry run reads it: no store), in a fresh
    process each: the first pass (count, problems) and the pass a send makes, and peak RSS."""
    first = None
    for size in sizes:
        root = Path(tempfile.mkdtemp(prefix=f"bench-scale-csv-{size}-"))
        try:
            r = child(code, "csv", root, readers=size)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        first = first or r["peak_mb"]
        print(
            f"{size:>9,} CSV lines: {r['readers']:,} readers, problems {r['problems']}; first pass "
            f"{r['survey_s']:.1f} s, then the send's pass {r['pass_s']:.1f} s; peak RSS {r['peak_mb']:.1f} MB "
            f"({r['peak_mb'] / first:.2f} of the first size's)"
        )
        sys.stdout.flush()


def step_csv(root: Path, readers: int) -> dict:
    import resource

    from syndicate.readers import Readers

    csv = root / "readers.csv"
    with csv.open("w") as out:
        out.write("email,name\n")
        out.writelines(f"reader{n}@example.org,Reader {n}\n" for n in range(readers))
        out.write("READER7@example.org,Again\n")  # listed twice, a whole list apart
    write_config(root, 25)
    text = (root / "config.yaml").read_text()
    (root / "config.yaml").write_text(text.replace("recipients:\n      list: readers", f"recipients: {csv}"))
    config = config_of(root)
    began = time.perf_counter()
    found = Readers("mail", config.targets["mail"], config, write=False)
    survey = time.perf_counter() - began
    count = sum(1 for _ in found)
    assert count == len(found) == readers, (count, len(found))
    return {
        "readers": count,
        "problems": [str(p).split(": ", 1)[1] for p in found.problems],
        "survey_s": survey,
        "pass_s": time.perf_counter() - began - survey,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


STEPS = {"setup": step_setup, "prefill": step_prefill, "send": step_send, "csv": step_csv}


def run_aiosmtpd(port: int) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
