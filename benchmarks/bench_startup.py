"""Start-up: `syndicate --version`, `--help` and `validate` on the example config, against starting
Python itself (`python -c pass`), in one run.

Each command runs in its own child process, through a wrapper that reports that child's peak RSS
(getrusage of its children), and the rounds alternate (baseline, --version, --help, validate,
baseline, ...) so machine noise falls on all of them. Prints the median wall time and peak RSS
of each, and the ratios to the baseline; `validate` works on the repository's config.yaml and
content/ (7 articles, one email digest), so most of its time is start-up.

    python benchmarks/bench_startup.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs argv[2:] and writes its wall time (seconds) and peak RSS (KiB, RUSAGE_CHILDREN of this
# process: that one child alone) to the file argv[1].
WRAPPER = """
import resource, subprocess, sys, time
began = time.perf_counter()
code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
elapsed = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1], "w").write(f"{elapsed} {peak}")
sys.exit(code)
"""

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "syndicate --version": [sys.executable, "-m", "syndicate", "--version"],
    "syndicate --help": [sys.executable, "-m", "syndicate", "--help"],
    "syndicate validate": [sys.executable, "-m", "syndicate", "validate"],
}


def measure(command: list[str], env: dict[str, str], report: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of `command` in its own process; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(report), *command], cwd=REPO, env=env, check=False
    )
    assert done.returncode == 0, (command, done.returncode)
    elapsed, peak = report.read_text().split()
    return float(elapsed), int(peak) / 1024


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    peaks: dict[str, list[float]] = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "maxrss"
        for command in COMMANDS.values():  # warm the file cache and the .pyc files first
            measure(command, env, report)
        for _ in range(rounds):
            for name, command in COMMANDS.items():
                elapsed, peak = measure(command, env, report)
                times[name].append(elapsed)
                peaks[name].append(peak)
    base_t = statistics.median(times["python -c pass"])
    base_rss = statistics.median(peaks["python -c pass"])
    print(f"median of {rounds} runs each")
    for name in COMMANDS:
        t, rss = statistics.median(times[name]), statistics.median(peaks[name])
        print(
            f"{name:<22} {t:6.3f} s  peak RSS {rss:6.1f} MB   "
            f"{t / base_t:5.1f}x time, {rss / base_rss:4.1f}x RSS of python -c pass"
        )


if __name__ == "__main__":
    main()
