"""The per-message path near the wire: `syndicate send` vs raw smtplib loops into Postfix's C `smtp-sink`.

`smtp-sink` (Debian's `postfix` package) costs the receiving side almost nothing, so what is
measured is the client: a raw smtplib loop sending pre-built bytes over one reused connection
(1.00), a raw loop building each message with syndicate's own code (`build_message` +
`message_bytes`), and the real `send()` (recipients CSV, SQLite ledger, `smtp` target) at 1, 2
and 4 connections; with `--dkim`, `send()` signing every message too. Each round runs every
variant once, in turn, in this one process (the sink is a child); the figures are medians over
the rounds. Besides msgs/s and the ratio to the pre-built loop, each line gives this process's
CPU time per message (`time.process_time()`, every thread) over the same span.

`--profile N` instead runs `send()` once (1 connection, N readers) under cProfile and prints
the top functions by their own time and by cumulative time.

    python benchmarks/bench_wire.py [--count 10000] [--connections 1,2,4] [--runs 3] [--dkim]
    python benchmarks/bench_wire.py --profile 3000
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "data" / "email"))

from generate import write_articles  # noqa: E402
from sites import bench_config, digest_channel, loopback_smtp  # noqa: E402

from syndicate.compose.email import compose_digest  # noqa: E402
from syndicate.compose.mime import build_message, message_bytes  # noqa: E402
from syndicate.config import Config, config_from_dict  # noqa: E402
from syndicate.content import load_articles  # noqa: E402
from syndicate.dkim import generate_key  # noqa: E402
from syndicate.recipients import Recipient  # noqa: E402
from syndicate.send import send  # noqa: E402

NOW = datetime(2024, 3, 11, 12, tzinfo=UTC)
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


class Sink:
    """`smtp-sink -c` on a free loopback port; `count()` reads the messages it counted."""

    def __init__(self) -> None:
        if not os.access(SINK, os.X_OK):
            sys.exit("smtp-sink not found: install Debian's postfix package (apt-get install postfix)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  # closed in stop()
        self.process = subprocess.Popen(
            [SINK, "-c", *user, f"127.0.0.1:{self.port}", "1000"], stdout=self.log, stderr=subprocess.STDOUT
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("smtp-sink did not start")

    def count(self) -> int:
        time.sleep(0.2)  # its counters are written as each session ends
        self.log.seek(0)
        found = re.findall(rb"mesg=(\d+)", self.log.read())
        return int(found[-1]) if found else 0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)
        self.log.close()


def site_config(root: Path, port: int, connections: int, dkim: dict | None = None) -> Config:
    """A site whose weekly digest goes to an smtp target on the sink; its own ledger under `root`."""
    target = loopback_smtp(
        port, str(root.parent / "subscribers.csv"), per_connection=100_000, connections=connections
    )
    if dkim:
        target["dkim"] = dkim
    raw = bench_config(
        channels={"weekly": digest_channel("newsletter")},
        targets={"newsletter": target},
        site={"unsubscribe_secret": "bench-secret"},
        content={"dir": str(root.parent / "content")},
        state_dir=str(root / "state"),
    )
    return config_from_dict(raw, root / "config.yaml")


Measure = tuple[float, float]  # (wall seconds, CPU seconds)


def syndicate_run(folder: Path, port: int, connections: int, count: int, dkim: dict | None = None) -> Measure:
    """From the start of dispatch (after the draft's one render) to the end of `send()`, fresh ledger."""
    config = site_config(Path(tempfile.mkdtemp(dir=folder)), port, connections, dkim)
    started: list[tuple[float, float]] = []
    outcome = send(
        config,
        select="all",
        now=NOW,
        on_start=lambda *_: started.append((time.perf_counter(), time.process_time())),
    )
    wall, cpu = time.perf_counter() - started[0][0], time.process_time() - started[0][1]
    assert outcome.totals()["newsletter"]["sent"] == count, outcome.totals()
    return wall, cpu


def raw_loop(port: int, sender: str, messages: Iterable[tuple[str, bytes]]) -> Measure:
    wall, cpu = time.perf_counter(), time.process_time()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for address, data in messages:
            smtp.sendmail(sender, [address], data)
    return time.perf_counter() - wall, time.process_time() - cpu


def dkim_settings(folder: Path) -> dict:
    key = folder / "dkim.pem"
    key.write_bytes(generate_key().private_pem)
    return {"domain": "example.com", "selector": "bench", "key_file": str(key)}


def profile(folder: Path, port: int, count: int, top: int = 25) -> None:
    config = site_config(Path(tempfile.mkdtemp(dir=folder)), port, 1)
    profiler = cProfile.Profile()
    profiler.enable()
    outcome = send(config, select="all", now=NOW)
    profiler.disable()
    assert outcome.totals()["newsletter"]["sent"] == count, outcome.totals()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--connections", default="1,2,4", help="comma-separated counts to try")
    parser.add_argument("--runs", type=int, default=3, help="rounds; the median of each is reported")
    parser.add_argument("--dkim", action="store_true", help="also send() with every message DKIM-signed")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile one send() to N readers")
    args = parser.parse_args()
    count = args.profile or args.count

    sink = Sink()
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            write_articles(folder / "content", 20, body_words=1500)
            recipients = [Recipient(f"reader{n:05d}@example.org", f"Reader {n}") for n in range(count)]
            (folder / "subscribers.csv").write_text(
                "email,name\n" + "".join(f"{r.email},{r.name}\n" for r in recipients), encoding="utf-8"
            )
            if args.profile:
                profile(folder, sink.port, count)
                return
            config = site_config(folder / "raw", sink.port, 1)
            draft = compose_digest(load_articles(config).articles, "weekly", config, window_end=NOW)
            sender = parseaddr(config.site.sender)[1]

            def built() -> Iterable[tuple[str, bytes]]:
                return ((r.email, message_bytes(build_message(draft, r, config))) for r in recipients)

            prebuilt = list(built())
            size = sum(len(data) for _, data in prebuilt) / len(prebuilt)
            dkim = dkim_settings(folder) if args.dkim else None
            variants: dict[str, Callable[[], Measure]] = {
                "raw smtplib, pre-built bytes": lambda: raw_loop(sink.port, sender, prebuilt),
                "raw smtplib, built in the loop": lambda: raw_loop(sink.port, sender, built()),
            }
            for n in (int(n) for n in args.connections.split(",")):
                variants[f"syndicate send, {n} conn"] = (
                    lambda n=n: syndicate_run(folder, sink.port, n, count)  # type: ignore[misc]
                )
            if dkim:
                variants["syndicate send, 1 conn, DKIM"] = lambda: syndicate_run(
                    folder, sink.port, 1, count, dkim
                )
            print(
                f"{count} personalised 20-article digests of {size / 1024:.0f} KB to smtp-sink on "
                f"127.0.0.1; {args.runs} interleaved round(s), medians"
            )
            results: dict[str, list[Measure]] = {name: [] for name in variants}
            for _ in range(args.runs):
                for name, measure in variants.items():
                    results[name].append(measure())
            base = count / statistics.median(w for w, _ in results["raw smtplib, pre-built bytes"])
            print(f"| {'variant':<32} | msgs/s | ratio | CPU ms/msg |")
            print(f"| {'-' * 32} | ------ | ----- | ---------- |")
            for name, runs in results.items():
                rate = count / statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs) / count * 1000
                print(f"| {name:<32} | {rate:6.0f} | {rate / base:5.2f} | {cpu:10.2f} |")
            expected = args.runs * len(variants) * count
        counted = sink.count()
        assert counted == expected, f"smtp-sink counted {counted}, expected {expected}"
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
