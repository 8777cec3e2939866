"""SMTP delivery throughput: `syndicate send` of a real digest vs a raw smtplib loop, in the same run.

Both deliver the same 20-article digest, personalised for 10,000 recipients, to a loopback
aiosmtpd sink running in its own process. The syndicate run is the real path: `send()` with a
recipients CSV, an `smtp` target and a SQLite ledger; its clock starts when dispatch begins
(after the one render of the draft), so it covers building each message from the draft, the
ledger's two commits per message and the SMTP transaction. The raw loop sends the same messages,
serialised beforehand, over one reused connection: SMTP and nothing else.
Target: syndicate >= 0.7 of the raw rate. A second raw loop builds each message as it goes
(`build_message` + `message_bytes`): the gap to it is the dispatch loop and ledger alone.

    python benchmarks/bench_smtp.py [--count 10000] [--connections 1,2] [--runs 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import socket
import statistics
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
from syndicate.recipients import Recipient  # noqa: E402
from syndicate.send import send  # noqa: E402

REQUIRED_RATIO = 0.7
NOW = datetime(2024, 3, 11, 12, tzinfo=UTC)


class CountingSink:
    def __init__(self, counter) -> None:
        self.counter = counter

    async def handle_DATA(self, server, session, envelope):
        with self.counter.get_lock():
            self.counter.value += len(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def run_sink(port: int, counter, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(CountingSink(counter), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


def site_config(root: Path, port: int, connections: int) -> Config:
    """A site whose weekly digest goes to an smtp target on the sink; its own ledger under `root`."""
    raw = bench_config(
        channels={"weekly": digest_channel("newsletter")},
        targets={
            "newsletter": loopback_smtp(
                port, str(root.parent / "subscribers.csv"), per_connection=100_000, connections=connections
            )
        },
        site={"unsubscribe_secret": "bench-secret"},
        content={"dir": str(root.parent / "content")},
        state_dir=str(root / "state"),
    )
    return config_from_dict(raw, root / "config.yaml")


def syndicate_run(folder: Path, port: int, connections: int, count: int) -> float:
    """Seconds from the start of dispatch to the end of `send()`, with a fresh ledger."""
    config = site_config(Path(tempfile.mkdtemp(dir=folder)), port, connections)
    started: list[float] = []
    outcome = send(config, select="all", now=NOW, on_start=lambda *_: started.append(time.perf_counter()))
    elapsed = time.perf_counter() - started[0]
    assert outcome.totals()["newsletter"]["sent"] == count, outcome.totals()
    return elapsed


def raw_loop(port: int, sender: str, messages: Iterable[tuple[str, bytes]]) -> float:
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for address, data in messages:
            smtp.sendmail(sender, [address], data)
    return time.perf_counter() - start


def median(runs: int, measure: Callable[..., float], *args: object) -> float:
    return statistics.median(measure(*args) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--connections", default="1,2", help="comma-separated counts to try")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of each measurement; the median is reported"
    )
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    counter, stop = multiprocessing.Value("l", 0), multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, counter, stop), daemon=True)
    sink.start()
    time.sleep(1.0)

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_articles(folder / "content", 20, body_words=1500)
        recipients = [Recipient(f"reader{n:05d}@example.org", f"Reader {n}") for n in range(args.count)]
        (folder / "subscribers.csv").write_text(
            "email,name\n" + "".join(f"{r.email},{r.name}\n" for r in recipients), encoding="utf-8"
        )
        config = site_config(folder / "raw", port, 1)
        draft = compose_digest(load_articles(config).articles, "weekly", config, window_end=NOW)
        sender = parseaddr(config.site.sender)[1]

        def built() -> Iterable[tuple[str, bytes]]:
            return ((r.email, message_bytes(build_message(draft, r, config))) for r in recipients)

        prebuilt = list(built())
        size = sum(len(data) for _, data in prebuilt) / len(prebuilt)
        print(
            f"{args.count} personalised 20-article digests of {size / 1024:.0f} KB to a loopback "
            f"aiosmtpd sink; median of {args.runs} run(s)"
        )
        raw = median(args.runs, raw_loop, port, sender, prebuilt)
        del prebuilt
        raw_rate = args.count / raw
        print(f"raw smtplib, one connection, pre-built:      {raw_rate:6.0f} msgs/s ({raw:.1f} s)")
        in_loop = median(args.runs, lambda: raw_loop(port, sender, built()))
        in_loop_rate = args.count / in_loop
        print(f"raw smtplib, one connection, built in loop:  {in_loop_rate:6.0f} msgs/s ({in_loop:.1f} s)")
        counts = [int(n) for n in args.connections.split(",")]
        for connections in counts:
            ours = median(args.runs, syndicate_run, folder, port, connections, args.count)
            rate = args.count / ours
            print(
                f"syndicate send + ledger, {connections} conn:        {rate:6.0f} msgs/s ({ours:.1f} s), "
                f"ratio {rate / raw_rate:.2f} to pre-built (target >= {REQUIRED_RATIO:.2f}), "
                f"{rate / in_loop_rate:.2f} to built in loop"
            )
    stop.set()
    sink.join(10)
    assert counter.value == args.runs * (2 + len(counts)) * args.count, counter.value


if __name__ == "__main__":
    main()
