"""`syndicate validate` on real-site-shaped content against a bare loop, in one run.

The fixture: 10,000 posts in the shapes of the six presets' test sites (Jekyll posts with Liquid
and kramdown, Hugo bundles with shortcodes and TOML, Astro .mdx with imports and components,
authors and images as maps and lists), written once. Each measurement runs in its own child
process, so its peak RSS is its own, and they alternate (bare, load, bare, load, ...) so machine
noise falls on both:

- bare: read each file, `frontmatter.loads()` (python-frontmatter) and markdown-it-py's
  `MarkdownIt("commonmark").render()` of the body: the least any loader must do;
- load: `syndicate.content.load_articles()` with `content.preset: hugo` (every field, URL,
  excerpt and problem);
- validate: the `syndicate validate` command end to end (interpreter start included), against
  the bare loop's whole process.

Prints files/s for each, the ratios load/bare (the loops) and validate/bare process (time; 1.00 =
as fast as bare), and peak RSS. `python benchmarks/bench_validate.py [COUNT] [ROUNDS]`.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = (
    "The ferry left at six, the quay emptied and the gulls took the bollards back. "
    "We counted [the boats](/boats/), then the lamps, then the steps down to the water. "
) * 4

JEKYLL = """---
layout: post
title: "Post {n}: the keeper's logbook"
date: '2013-11-{day:02d} 5:00:00 +0000'
categories: [field notes]
author:
  name: Writer {n}
image:
  path: /assets/img/{n}.jpg
  alt: Image {n}
---
{{% include figure.html src="{n}.jpg" %}}

## Night watch {n}

{para} {{{{ site.signoff }}}}
{{: .lead}}

<!--more-->

{para}
"""
HUGO = """+++
title = "Walk {n}"
date = 2024-01-{day:02d}T08:00:00+00:00
publishDate = 2024-01-{day:02d}T09:00:00+00:00
summary = "A walk around the harbour, number {n}."
authors = ["Ann", "Bob"]
images = ["quay-{n}.jpg"]
tags = ["walks", "harbour"]
+++
{{{{< figure src="quay.jpg" title="Quay {n}" >}}}}

{para} {{{{% note %}}}}Bring a coat.{{{{% /note %}}}}

## The second half

{para}
"""
MDX = """---
title: 'Charts {n}'
description: 'Charts of the sky, number {n}.'
pubDate: 'Jul {day:02d} 2022'
heroImage: '/placeholder-{n}.jpg'
---
import Chart from '../components/Chart.astro';

export const caption = 'Drawn by hand';

<Chart months={{months}} caption={{caption}} />

<Callout type="tip">
{para}
</Callout>

{para}
"""


def generate(folder: Path, count: int) -> None:
    for n in range(count):
        day = n % 28 + 1
        kind = n % 3
        if kind == 0:
            path = folder / "posts" / f"2013-11-{day:02d}-post-{n}.md"
            text = JEKYLL.format(n=n, day=day, para=PARAGRAPH)
        elif kind == 1:
            path = folder / "posts" / f"walk-{n}" / "index.md"
            text = HUGO.format(n=n, day=day, para=PARAGRAPH)
        else:
            path = folder / "posts" / f"charts-{n}.mdx"
            text = MDX.format(n=n, day=day, para=PARAGRAPH)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


CONFIG = """site:
  name: Bench
  base_url: https://bench.example/
  sender: Bench <b@bench.example>
  postal_address: 1 Bench Street
content:
  dir: {folder}
  preset: hugo
  aliases: {{pubDate: publish_date}}  # the Astro-shaped posts
channels:
  letters: {{kind: email, mode: single, targets: [mail]}}
targets:
  mail: {{type: outbox, dir: outbox, recipients: [a@example.com]}}
"""


def bare(folder: Path) -> dict[str, float]:
    import frontmatter
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".md", ".mdx"))
    start = time.perf_counter()
    for path in files:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
        md.render(post.content)
    return {"files": len(files), "seconds": time.perf_counter() - start}


def load(folder: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from syndicate.config import load_config
    from syndicate.content import load_articles

    config = load_config(folder.parent / "config.yaml")
    start = time.perf_counter()
    loaded = load_articles(config)
    seconds = time.perf_counter() - start
    assert not loaded.errors and not loaded.skipped, (loaded.errors + loaded.skipped)[:3]
    return {"files": len(loaded.articles), "seconds": seconds}


def child(kind: str, folder: Path) -> None:
    result = bare(folder) if kind == "bare" else load(folder)
    result["rss_peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


def run_child(kind: str, folder: Path) -> dict[str, float]:
    """The child's own timing of its loop, and the wall time of the whole process (interpreter
    start and imports included), to set against `syndicate validate`'s."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder)], capture_output=True, text=True, check=True
    )
    return {**json.loads(out.stdout), "process_seconds": time.perf_counter() - start}


def run_validate(folder: Path) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(folder.parent / "config.yaml"), "validate"],
        capture_output=True,
        text=True,
        check=False,
        cwd=folder.parent,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"files": 0, "seconds": seconds, "rss_peak_kb": usage}


def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "content"
        generate(folder, count)
        (root / "config.yaml").write_text(CONFIG.format(folder=folder), encoding="utf-8")
        times: dict[str, list[float]] = {"bare": [], "load": [], "bare process": [], "validate": []}
        peaks: dict[str, float] = {}
        for _ in range(rounds):
            for kind in ("bare", "load"):
                row = run_child(kind, folder)
                times[kind].append(row["seconds"])
                peaks[kind] = row["rss_peak_kb"]
                if kind == "bare":
                    times["bare process"].append(row["process_seconds"])
            times["validate"].append(run_validate(folder)["seconds"])
        best = {kind: statistics.median(values) for kind, values in times.items()}
        print(f"{count:,} files, median of {rounds} rounds")
        print(f"{'run':>13} {'seconds':>8} {'files/s':>9} {'peak RSS MB':>12}")
        for kind in ("bare", "load", "bare process", "validate"):
            peak = f"{peaks[kind] / 1024:>12.1f}" if kind in peaks else f"{'':>12}"
            print(f"{kind:>13} {best[kind]:>8.2f} {count / best[kind]:>9,.0f} {peak}")
        print(f"load / bare (the loops): {best['load'] / best['bare']:.2f}x the time")
        ratio = best["validate"] / best["bare process"]
        print(f"validate / bare process (both from interpreter start): {ratio:.2f}x the time")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
