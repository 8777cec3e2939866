"""ThreadsX, a made-up network: 500 graphemes, links counted as written, 3 hashtags by default.

Written as a third party would, against syndicate's public `Network` class only.
"""

from __future__ import annotations

from pathlib import Path

from syndicate.compose.networks import Network
from syndicate.compose.textlength import graphemes


class ThreadsX(Network):
    name = "threadsx"
    label = "ThreadsX"
    limit = 500
    unit = "graphemes"
    max_hashtags = 3
    templates = Path(__file__).parent / "templates"

    def measure(self, text: str) -> int:
        return len(graphemes(text))
