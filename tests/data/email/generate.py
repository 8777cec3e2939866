"""Sample-shaped articles made on demand: the 60-article digest test and the benchmark use them."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

_WORDS = [
    "harbour",
    "tide",
    "lantern",
    "keeper",
    "breakwater",
    "headland",
    "current",
    "pilot",
    "chart",
    "buoy",
    "mooring",
    "quay",
    "swell",
    "beacon",
    "reef",
    "estuary",
    "gale",
    "sounding",
    "anchor",
    "compass",
    "slipway",
    "channel",
    "fathom",
    "spring",
    "neap",
]


def _sentence(seed: int, words: int) -> str:
    picked = [_WORDS[(seed * 7 + i * 13) % len(_WORDS)] for i in range(words)]
    return " ".join(picked).capitalize() + "."


def write_articles(folder: Path, count: int, *, first_day: date = date(2024, 3, 5), body_words: int = 3000):
    """Write `count` articles, one an hour from `first_day` 06:00, with long bodies and descriptions."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        hour = (6 + n) % 24
        day = first_day + timedelta(days=(6 + n) // 24)
        published = f"{day.isoformat()} {hour:02d}:00"
        paragraphs = (_sentence(n + p, 25) for p in itertools.count())
        body = "\n\n".join(itertools.islice(paragraphs, body_words // 25))
        path = folder / f"generated-{n:03d}.md"
        path.write_text(
            "---\n"
            f"title: 'Generated article {n}: {_sentence(n, 8)[:-1]}'\n"
            f"subtitle: '{_sentence(n + 1, 12)}'\n"
            f"description: '{_sentence(n + 2, 45)}'\n"
            "author: 'Test Writer'\n"
            "read_time: '14 mins'\n"
            f"publish_date: '{published}'\n"
            f"heroImage: 'https://images.example.org/generated-{n}.webp'\n"
            f"cta: '{_sentence(n + 3, 30)}'\n"
            "---\n\n" + body + "\n",
            encoding="utf-8",
        )
        paths.append(path)
    return paths
