"""A throwaway PostgreSQL server on 127.0.0.1, for the tests (conftest's `postgres_url`) and the
benchmarks that need one (bench_ledger, bench_workers): Debian's `postgresql` binaries, a data
folder of its own, trust authentication for the user `syndicate`, stopped and deleted after."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Server", "postgres_bin", "throwaway_postgres"]


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@dataclass(frozen=True)
class Server:
    url: str  # postgresql+psycopg://syndicate@127.0.0.1:<port>/postgres
    data: Path  # its data folder (postmaster.pid: the server's pid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_postgres(bin_dir: Path, *settings: str) -> Iterator[Server]:
    """Start a server with `settings` (`-c name=value` each, e.g. "fsync=off"); as root it runs
    as the `postgres` user, in a folder of its own that user may enter."""
    folder = Path(tempfile.mkdtemp(prefix="syndicate-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "syndicate")
    options = " ".join(
        [f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", *(f"-c {s}" for s in settings)]
    )
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    try:
        yield Server(f"postgresql+psycopg://syndicate@127.0.0.1:{port}/postgres", data)
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
