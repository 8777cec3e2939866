"""The ledger's writes per message, on SQLite (WAL) and a loopback PostgreSQL: time, statements, commits.

`dispatch()` sends N messages of one draft through a target that does nothing but say the data
was handed over (`handed()`, as SMTP does before the final ".") and answer `sent`: what is
measured is the ledger's part of the per-message path (the chunked `statuses_of` read, the
claim, the hand-over mark, the outcome). Each round runs, in turn, a `floor` loop (one single-row
INSERT committed per message on a fresh connection: the least a recorded message can cost) and
the dispatch with no ledger and the dispatch through the ledger; the figures are medians over
the rounds. Each line gives ms per message of the dispatch, of which the ledger (the difference
from the one without), its ratio to the floor of the same database in the same run, and the SQL
statements, commits and round trips (statements + BEGIN + COMMIT; SQLite has no round trips: it
runs in this process) per message, counted with SQLAlchemy's cursor and commit events on the
ledger's engine. `--code DIR` measures another checkout (this script copied there, or run from
here with its `syndicate` first on the path), for a before/after in one session. Last, per
database, the skip pass's reads (`skip_pass`: a second send that finds every reader sent).

PostgreSQL is a throwaway server started here (Debian's postgresql 15 binaries, fsync on, as a
production server runs; `--no-postgres` skips it, and it is skipped where not installed).

    python benchmarks/bench_ledger.py [--count 5000] [--runs 3] [--skip 100000] [--no-postgres] [--code DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if "--code" in sys.argv[:-1]:  # another checkout's syndicate, before anything imports it
    REPO = Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, event, text  # noqa: E402

from syndicate.deliver import Message, MessageKey, Pacing, Result, handed  # noqa: E402
from syndicate.dispatch import dispatch  # noqa: E402
from syndicate.ledger import Ledger, deliveries, sqlite_url  # noqa: E402

# The throwaway server of the tests, from this checkout whichever syndicate `--code` measures.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests" / "helpers"))
from pgserver import postgres_bin, throwaway_postgres  # noqa: E402

NOW = datetime(2026, 1, 5, tzinfo=UTC)


class _Handing:
    """A connection that hands each message over and is told `sent`, at no cost of its own."""

    def send(self, message: Message) -> Result:
        handed()
        return Result(message.key, "sent", "250 ok")


@dataclass
class _Target:
    name: str = "bench"
    pacing: Pacing = Pacing()

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[_Handing]:
        yield _Handing()


@dataclass
class Counts:
    statements: int = 0
    commits: int = 0
    begins: int = 0


def _counting(engine) -> Counts:
    counts = Counts()

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_args) -> None:
        counts.statements += 1

    def sent(conn) -> bool:  # an autocommit connection sends no BEGIN or COMMIT of its own
        return conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"

    @event.listens_for(engine, "commit")
    def _commit(conn) -> None:
        counts.commits += sent(conn)

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        counts.begins += sent(conn)

    return counts


def floor(url: str, count: int) -> float:
    """Seconds for `count` single-row INSERTs, each its own committed transaction (PostgreSQL:
    in autocommit, one round trip each)."""
    engine = create_engine(url, **({} if url.startswith("sqlite") else {"isolation_level": "AUTOCOMMIT"}))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, who TEXT)"))
        conn.execute(text("DELETE FROM floor"))
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            conn.commit()
        started = time.perf_counter()
        for n in range(count):
            conn.execute(text("INSERT INTO floor (id, who) VALUES (:n, :who)"), {"n": n, "who": f"r{n}"})
            conn.commit()
        took = time.perf_counter() - started
    engine.dispose()
    return took


def ledger_run(url: str | None, count: int, draft: str) -> tuple[float, Counts]:
    """Seconds and counts for one dispatch of `count` new messages through a ledger at `url`
    (None: no ledger, the dispatch loop's own cost)."""
    with Ledger(url) if url else contextlib.nullcontext() as ledger:
        counts = _counting(ledger.engine) if ledger else Counts()
        messages = (
            Message(MessageKey("weekly", "bench", draft, f"r{n}@example.org"), "h", dict)
            for n in range(count)
        )
        started = time.perf_counter()
        report = dispatch(messages, _Target(), ledger)
        took = time.perf_counter() - started
    assert report.sent == count, report
    return took, counts


def skip_pass(url: str, readers: int, runs: int) -> float:
    """Seconds for the skip pass's ledger reads (median of `runs`): `statuses_of` over a draft of
    `readers` sent rows, a chunk of 1,000 readers at a time in list order (not sorted), each run
    on a new ledger object (so its first chunk looks for rows from before keys were normalised)."""
    order = [f"r{(n * 7919) % readers:07d}@example.org" for n in range(readers)]
    with Ledger(url) as ledger, ledger.engine.begin() as conn:
        conn.execute(
            deliveries.insert(),
            [
                {
                    "channel": "weekly",
                    "target": "bench",
                    "draft_key": "skip",
                    "recipient": who,
                    "content_hash": "h",
                    "status": "sent",
                    "attempts": 1,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for who in order
            ],
        )
        if ledger.engine.dialect.name == "postgresql":
            # As autovacuum would have by the next send: without statistics on 100,000 rows just
            # bulk-written, the planner may read them through the status index for every chunk.
            conn.execute(text("ANALYZE deliveries"))
    takes = []
    for _ in range(runs):
        with Ledger(url) as ledger:
            started = time.perf_counter()
            for start in range(0, readers, 1000):
                ledger.statuses_of("weekly", "bench", "skip", order[start : start + 1000])
            takes.append(time.perf_counter() - started)
    return statistics.median(takes)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL on 127.0.0.1 (tests/helpers/pgserver.py, fsync on); None when its
    binaries are not installed."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        yield None
        return
    with throwaway_postgres(bin_dir) as server:
        yield server.url


def measure(name: str, url: str, count: int, runs: int, skip: int) -> None:
    floors, takes, bare, counted = [], [], [], []
    for run in range(runs):
        floors.append(floor(url, count))
        bare.append(ledger_run(None, count, "bare")[0])
        took, counts = ledger_run(url, count, f"weekly:run-{run}")
        takes.append(took)
        counted.append(counts)
    base, took = statistics.median(floors), statistics.median(takes)
    writes = took - statistics.median(bare)  # the ledger's part of the dispatch
    counts = counted[-1]
    trips = "-" if name == "sqlite" else f"{(counts.statements + counts.begins + counts.commits) / count:.2f}"
    print(
        f"{name:10}  floor {base / count * 1000:6.3f} ms/msg   dispatch {took / count * 1000:6.3f} ms/msg,"
        f" of which the ledger {writes / count * 1000:6.3f} (x{writes / base:5.2f} of the floor)"
        f"   {counts.statements / count:.2f} statements, {counts.commits / count:.2f} commits,"
        f" {trips} round trips per message",
        flush=True,
    )
    if skip:
        took = skip_pass(url, skip, runs)
        print(
            f"{name:10}  skip pass: statuses_of over {skip} sent rows, 1,000 readers a chunk:"
            f" {took:.3f} s ({took / skip * 1e6:.2f} us a reader)",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="Messages per run.")
    parser.add_argument("--runs", type=int, default=3, help="Rounds; medians are reported.")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only.")
    parser.add_argument("--skip", type=int, default=100_000, help="Rows of the skip pass (0: none).")
    parser.add_argument("--code", type=Path, help="Another checkout's syndicate to measure.")
    args = parser.parse_args()
    print(
        f"{args.count} messages of one draft, {args.runs} rounds, medians; syndicate from {REPO}", flush=True
    )
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as folder:
        measure("sqlite", sqlite_url(Path(folder) / "ledger.sqlite"), args.count, args.runs, args.skip)
    if args.no_postgres:
        return 0
    with postgres() as url:
        if url is None:
            print("postgresql  skipped: not installed", flush=True)
            return 0
        measure("postgresql", url, args.count, args.runs, args.skip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
