"""`status --recipient` over a subscriber list of 10,000 to 1,000,000 readers: memory and time.

For each size the readers are generated into the subscriber store (SQLite, in bulk, as
`bench_scale.py` does) and the ledger holds a digest stopped part-way with every reader still
pending, so `recipient_history()` must ask whether the target lists the address. Each question
runs in a fresh process (its peak RSS from its own `getrusage`): the last reader on the list and
an address on none, through today's code (the list read a chunk at a time up to the address) and,
as the baseline, the way it was before issue 19 (a set of every address on the list, from
`target_readers`), reproduced here.

    python benchmarks/bench_status.py [--readers 10000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

DRAFT = ("daily", "mail", "daily:bench")


def child(step: str, root: Path, **options: object) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", step, str(root), json.dumps(options)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_setup(root: Path, readers: int) -> dict:
    """The store filled with `readers` readers, and a digest to them stopped before the first."""
    import bench_scale

    from syndicate.ledger import Ledger

    made = bench_scale.step_setup(root, readers, port=2525, articles=1)
    with Ledger.from_config(bench_scale.config_of(root)) as ledger:
        ledger.set_draft_state(DRAFT, "started", "stopped before the first reader", planned=readers)
    return made


def step_ask(root: Path, address: str, path: str) -> dict:
    """One `recipient_history()`, through today's code or the one before; what it cost."""
    import bench_scale

    from syndicate import status

    if path == "before":  # status._readers before issue 19: a set of every address on the list

        def lists_as_before(config, channel, target, wanted, listed):
            from syndicate.readers import target_readers
            from syndicate.recipients import address_key

            settings = config.targets[target]
            if target not in listed:
                found = target_readers(target, settings, config, write=False).recipients
                listed[target] = {address_key(r.email) for r in found}  # type: ignore[assignment]
            return wanted in listed[target]

        status._lists = lists_as_before
    config = bench_scale.config_of(root)
    began, cpu = time.perf_counter(), time.process_time()
    history = status.recipient_history(config, address)
    return {
        "pending": [p.pending for p in history.pending],
        "seconds": time.perf_counter() - began,
        "cpu": time.process_time() - cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", default="10000,1000000")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "ROOT", "OPTIONS"))
    args = parser.parse_args()
    if args.child:
        step, root, options = args.child
        steps = {"setup": step_setup, "ask": step_ask}
        print(json.dumps(steps[step](Path(root), **json.loads(options))))
        return
    print("status --recipient: does a send part-way still mail this reader? (fresh process each)")
    print(f"{'readers':>10} {'address':>8} {'code':>7} {'seconds':>8} {'CPU s':>7} {'peak RSS':>9}")
    for size in (int(n) for n in args.readers.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"bench-status-{size}-"))
        try:
            child("setup", root, readers=size)
            for label, address in (("last", f"reader{size - 1}@example.org"), ("none", "nobody@example.org")):
                for path in ("before", "after"):
                    r = child("ask", root, address=address, path=path)
                    assert r["pending"] == ([size] if label == "last" else []), r
                    print(
                        f"{size:>10,} {label:>8} {path:>7} {r['seconds']:8.2f} {r['cpu']:7.2f} "
                        f"{r['peak_mb']:7.1f} MB",
                        flush=True,
                    )
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
