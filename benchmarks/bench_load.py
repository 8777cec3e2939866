"""Load: `syndicate send --due` of one digest to 50,000 recipients on a loopback SMTP sink.

The real CLI runs in its own process; its resident memory is sampled from /proc while it sends,
so the figures show whether memory stays flat as the list goes by. A 5,000-recipient run of the
same digest gives the ratio (peak RSS at 50k / peak RSS at 5k; flat memory is about 1.0).
Afterwards the ledger must hold exactly one `sent` row per recipient and nothing in flight, and
the sink must have counted each message once.

    python benchmarks/bench_load.py [--count 50000] [--small 5000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
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
from bench_daemon import ARTICLE  # noqa: E402
from bench_smtp import run_sink  # noqa: E402
from sites import bench_config, digest_channel, loopback_smtp  # noqa: E402


def make_site(root: Path, count: int, port: int) -> Path:
    content = root / "content"
    content.mkdir()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    for n in range(3):
        (content / f"load-{n}.md").write_text(ARTICLE.format(n=n, date=yesterday, body=PARAGRAPH))
    csv = root / "readers.csv"
    csv.write_text("email,name\n" + "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(count)))
    config = bench_config(
        channels={"daily": digest_channel("mail", schedule={"every": "day", "at": "00:00"})},
        targets={"mail": loopback_smtp(port, str(csv))},
        site={"timezone": "UTC"},
    )
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(count: int) -> dict:
    port = free_port()
    counter, stop = multiprocessing.Value("l", 0), multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, counter, stop), daemon=True)
    sink.start()
    time.sleep(1.0)
    with tempfile.TemporaryDirectory() as tmp:
        config = make_site(Path(tmp), count, port)
        command = [sys.executable, "-m", "syndicate", "--config", str(config), "send", "--due", "--backfill"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        began = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        samples: list[tuple[float, float]] = []  # (share of the list delivered, RSS MB)
        while process.poll() is None:
            try:
                samples.append((counter.value / count, rss_mb(process.pid)))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.25)
        _, err = process.communicate()
        elapsed = time.perf_counter() - began
        from syndicate.config import load_config
        from syndicate.ledger import Ledger

        with Ledger.from_config(load_config(config)) as ledger:
            rows = ledger.counts()
    stop.set()
    sink.join(10)
    statuses = next(iter(rows.values()), {})
    return {
        "exit": process.returncode,
        "stderr": err.strip().splitlines()[-1:] if err.strip() else [],
        "elapsed": elapsed,
        "delivered": counter.value,
        "statuses": statuses,
        "peak": max(r for _, r in samples),
        "curve": [
            next((r for share, r in samples if share >= mark), samples[-1][1]) for mark in (0.1, 0.5, 0.9)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=5_000)
    args = parser.parse_args()
    small, large = run(args.small), run(args.count)
    for n, result in ((args.small, small), (args.count, large)):
        at = ", ".join(f"{r:.1f}" for r in result["curve"])
        print(
            f"{n:>7,} recipients: exit {result['exit']}, {result['elapsed']:6.1f} s "
            f"({n / result['elapsed']:,.0f} msg/s), sink counted {result['delivered']:,}, "
            f"ledger {result['statuses']}; peak RSS {result['peak']:.1f} MB; RSS at 10/50/90% of the list: {at} MB"
        )
        if result["exit"] != 0 and result["stderr"]:
            print(f"         stderr: {result['stderr'][0]}")
        intact = result["statuses"] == {"sent": n} and result["delivered"] == n
        print(f"         ledger intact (one sent row per recipient, none in flight, sink agrees): {intact}")
    print(f"peak RSS ratio {args.count:,} / {args.small:,}: {large['peak'] / small['peak']:.2f} (flat = 1.0)")


if __name__ == "__main__":
    main()
