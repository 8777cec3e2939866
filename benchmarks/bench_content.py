"""Loading articles: articles/s and peak memory for 1,000 and 10,000 generated articles.

Each size runs in a child process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARTICLE = """---
title: 'Generated article number {n}: on harbours, lights and ''quoted'' titles'
subtitle: 'A subtitle for article {n}'
description: 'A description long enough to need cutting for a preheader, as real ones are, number {n}.'
author: 'Bench Writer'
read_time: '8 mins'
publish_date: '2024-{month:02d}-{day:02d}'
created_date: '2025-02-01'
heroImage: 'https://img.example.com/{n}.webp'
cta: 'Follow us on LinkedIn for more articles like number {n}.'
tags: [bench, harbours]
---

{body}

![Figure {n}](https://img.example.com/figure-{n}.png)

## A heading

{body}
"""
PARAGRAPH = ("The keeper climbed the stairs at dusk, trimmed the wick and wound the clockwork. " * 12).strip()


def generate(folder: Path, count: int) -> None:
    for n in range(count):
        text = ARTICLE.format(n=n, month=n % 12 + 1, day=n % 28 + 1, body=PARAGRAPH)
        (folder / f"article-{n:05d}.md").write_text(text, encoding="utf-8")


def child(count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from syndicate.config import config_from_dict
    from syndicate.content import load_articles

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder, count)
        config = config_from_dict(
            {
                "site": {
                    "name": "Bench",
                    "base_url": "https://example.com/",
                    "sender": "b@example.com",
                    "postal_address": "x",
                }
            },
            folder / "config.yaml",
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        loaded = load_articles(config, [folder])
        elapsed = time.perf_counter() - start
        assert len(loaded.articles) == count, loaded.errors[:3]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"count": count, "seconds": elapsed, "rss_before_kb": before, "rss_peak_kb": peak}))


def main() -> None:
    rows = []
    for count in (1_000, 10_000):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(count)], capture_output=True, text=True, check=True
        ).stdout
        rows.append(json.loads(out))
    print(f"{'articles':>9} {'seconds':>8} {'articles/s':>11} {'peak RSS MB':>12} {'growth MB':>10}")
    for row in rows:
        rate = row["count"] / row["seconds"]
        print(
            f"{row['count']:>9,} {row['seconds']:>8.2f} {rate:>11,.0f} "
            f"{row['rss_peak_kb'] / 1024:>12.1f} {(row['rss_peak_kb'] - row['rss_before_kb']) / 1024:>10.1f}"
        )
    small, large = rows
    ratio = (large["count"] / large["seconds"]) / (small["count"] / small["seconds"])
    print(f"throughput ratio 10,000 vs 1,000: {ratio:.2f} (1.0 = linear scaling)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
