"""Import: `syndicate subscribers import` of a 100,000-row Mailchimp-style export.

The real CLI runs in its own process; its wall time and peak RSS (getrusage of the children)
are compared with two baselines measured the same way in the same process tree: starting
Python and importing syndicate (`python -c 'import syndicate'`), and reading the same CSV with
the csv module alone (every row into a list of dicts). The file is then imported a second
time, which must change nothing (0 new, 0 updated), and the database must hold one row per
address. Last, `subscribers export` writes the list back out.

    python benchmarks/bench_import.py [--count 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sites import bench_config  # noqa: E402

HEADER = (
    '"Email Address","First Name","Last Name","Favourite Topic",MEMBER_RATING,OPTIN_TIME,OPTIN_IP,'
    "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS\r\n"
)
TOPICS = ("Engines", "Compilers", "Tides", "Maps", "Letters")

READ_CSV = """
import csv, sys
with open(sys.argv[1], encoding="utf-8-sig", newline="") as f:
    rows = list(csv.DictReader(f))
print(len(rows))
"""


def make_export(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("\ufeff" + HEADER)
        for n in range(count):
            out.write(
                f"reader{n}@example.org,Reader,Number {n},{TOPICS[n % 5]},{n % 5 + 1},"
                f'"2024-03-01 09:{n % 60:02}:00",,"2024-03-01 10:00:00",203.0.113.{n % 250},,,,,,GB,,'
                f'"2024-03-01 10:00:00",{100000 + n},e{n:x},,\r\n'
            )


# Runs argv[2:] and writes its peak RSS (KiB, RUSAGE_CHILDREN of this process: that one child
# alone) to the file argv[1]; so each figure is one command's, not the largest of all so far.
WRAPPER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def measure(
    command: list[str], env: dict[str, str], scratch: Path
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, peak RSS MB, the run) of `command` in its own process."""
    report = scratch / "maxrss"
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(report), *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - began
    return elapsed, int(report.read_text()) / 1024, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export = root / "mailchimp.csv"
        make_export(export, args.count)
        config = root / "config.yaml"
        (root / "content").mkdir()
        config.write_text(yaml.safe_dump(bench_config(channels={}, targets={})))
        importing = [sys.executable, "-m", "syndicate", "--config", str(config), "subscribers", "import"]
        base_t, base_rss, _ = measure([sys.executable, "-c", "import syndicate"], env, root)
        csv_t, csv_rss, read = measure([sys.executable, "-c", READ_CSV, str(export)], env, root)
        first_t, first_rss, first = measure([*importing, str(export), "--list", "news"], env, root)
        again_t, again_rss, again = measure([*importing, str(export), "--list", "news"], env, root)
        exporting = [sys.executable, "-m", "syndicate", "--config", str(config), "subscribers", "export"]
        out_t, out_rss, out = measure([*exporting, "--list", "news", "-o", str(root / "out.csv")], env, root)

        from syndicate.config import load_config
        from syndicate.subscribers import SubscriberStore

        with SubscriberStore.from_config(load_config(config)) as store:
            counts = store.lists()
        size_mb = export.stat().st_size / 1e6
    print(f"{args.count:,}-row Mailchimp export ({size_mb:.1f} MB)")
    print(f"baseline `import syndicate`:  {base_t:6.2f} s, peak RSS {base_rss:6.1f} MB")
    print(
        f"baseline csv.DictReader:      {csv_t:6.2f} s, peak RSS {csv_rss:6.1f} MB ({read.stdout.strip()} rows)"
    )
    print(
        f"first import:                 {first_t:6.2f} s, peak RSS {first_rss:6.1f} MB  exit {first.returncode}: {first.stdout.strip()}"
    )
    print(
        f"second import:                {again_t:6.2f} s, peak RSS {again_rss:6.1f} MB  exit {again.returncode}: {again.stdout.strip()}"
    )
    print(
        f"export:                       {out_t:6.2f} s, peak RSS {out_rss:6.1f} MB  exit {out.returncode}: {out.stdout.strip()}"
    )
    print(
        f"ratios: first import / `import syndicate` {first_t / base_t:.1f}x time, {first_rss / base_rss:.1f}x RSS; "
        f"first import / csv read {first_t / csv_t:.1f}x time, {first_rss / csv_rss:.1f}x RSS; "
        f"{args.count / first_t:,.0f} rows/s"
    )
    unchanged = f"imported {args.count} into news (0 new, 0 updated, {args.count} unchanged)"
    assert first.returncode == 0 and again.returncode == 0, (first.stderr[-500:], again.stderr[-500:])
    assert again.stdout.strip() == unchanged, again.stdout
    assert counts == {"news": {"subscribed": args.count}}, counts
    assert out.returncode == 0, out.stderr[-500:]
    print("second import changed nothing; one row per address: True")


if __name__ == "__main__":
    main()
