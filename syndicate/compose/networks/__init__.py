"""Social networks as plugins: what one network counts, allows and adds to a post.

Each network is one `Network` subclass in its own module, holding its own numbers (limit, unit,
hashtag counts, fold) and rules (how it measures text, what it refuses, which facets it wants).
Built-in and third-party networks are found the same way, through the entry-point group
`syndicate.networks` (`name = "package.module:Class"`), so adding one edits no code here:

    [project.entry-points."syndicate.networks"]
    threads = "my_package.threads:Threads"

The composer (`compose.social`) asks a network only through this interface; it has no branch
per network.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ConfigError

GROUP = "syndicate.networks"


class Network(ABC):
    """One social network's rules. Subclasses set the class attributes and `measure`.

    The defaults describe a network with one length limit, no fold and no facets; a network with
    more rules (a byte cap, a "see more" fold, rich-text facets) overrides the matching method.
    """

    #: The name channels use (`network: x`); the same as the entry point's name.
    name: ClassVar[str]
    #: How the network spells itself in messages ("LinkedIn").
    label: ClassVar[str]
    #: The most a post may measure, in `unit`.
    limit: ClassVar[int]
    #: What `measure` counts, for messages and the preview ("graphemes").
    unit: ClassVar[str]
    #: Hashtags a post gets when the channel sets no `max_hashtags`.
    max_hashtags: ClassVar[int]
    #: Fewer hashtags than this is a warning (the network's own advice); 0: no advice.
    min_hashtags: ClassVar[int] = 0
    #: How much of a post shows before "see more", in `unit`; None: the whole post shows.
    fold_at: ClassVar[int | None] = None
    #: A folder holding `social/<name>.txt.j2`, for a network shipped outside syndicate: searched
    #: after the site's templates and the shipped ones, so a site can still override it.
    templates: ClassVar[Path | None] = None

    @abstractmethod
    def measure(self, text: str) -> int:
        """Length of `text` as the network counts it, to compare with `limit`."""

    def fits(self, text: str) -> bool:
        """Whether the network accepts `text` as a post's length."""
        return self.measure(text) <= self.limit

    def hook_fits(self, text: str) -> bool:
        """Whether the first line (the hook) ends before the fold, so "see more" never cuts it."""
        return self.fold_at is None or self.measure(text.split("\n", 1)[0]) <= self.fold_at

    def fold(self, text: str) -> int | None:
        """Index in `text` where "see more" cuts; None when all of it shows (or there is no fold)."""
        return None

    def facets(self, text: str, hashtags: Iterable[str]) -> tuple[dict[str, Any], ...]:
        """Rich-text annotations the network needs beside the text (links, tags); none by default."""
        return ()

    def size(self, text: str) -> str:
        """How big `text` is, for a message saying it does not fit ("312 graphemes")."""
        return f"{self.measure(text)} {self.unit}"


def network(name: str) -> Network:
    """The network called `name`; a ConfigError naming the known ones when there is none."""
    found = _registry(tuple(sys.path)).get(name)
    if found is None:
        raise ConfigError(f"network {name!r} is not known (expected {_quoted(network_names())})")
    if len(found) > 1:
        where = " and ".join(sorted(f"{_origin(ep)} ({ep.value})" for ep in found))
        raise ConfigError(f"network {name!r} is registered twice, by {where} (expected one; uninstall one)")
    return _load(found[0])


def network_names() -> list[str]:
    """The names of every installed network, sorted."""
    return sorted(_registry(tuple(sys.path)))


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none installed"


@lru_cache(maxsize=4)
def _registry(search_path: tuple[str, ...]) -> dict[str, tuple[EntryPoint, ...]]:
    """Entry points by name. Keyed on `sys.path` so a plugin put on the path later is found too."""
    found: dict[str, dict[str, EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, {})[ep.value] = ep  # the same class found twice is one network
    return {name: tuple(eps.values()) for name, eps in found.items()}


@lru_cache(maxsize=64)
def _load(ep: EntryPoint) -> Network:
    """Import and check a network once; a broken plugin is a one-line error naming it."""
    try:
        loaded = ep.load()
    except Exception as exc:  # a plugin is someone else's code: any failure importing it is theirs
        raise ConfigError(
            f"network {ep.name!r}: cannot load {ep.value} from {_origin(ep)} ({type(exc).__name__}: {exc})"
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Network)):
        raise ConfigError(f"network {ep.name!r}: {ep.value} from {_origin(ep)} is not a Network subclass")
    if getattr(loaded, "name", None) != ep.name:
        raise ConfigError(
            f"network {ep.name!r}: {ep.value} from {_origin(ep)} calls itself "
            f"{getattr(loaded, 'name', None)!r} (expected the entry point's name)"
        )
    try:
        return loaded()
    except TypeError as exc:  # abstract methods left out, or an __init__ wanting arguments
        raise ConfigError(f"network {ep.name!r}: {ep.value} from {_origin(ep)}: {exc}") from None


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist
    return dist.name if dist is not None else "an unknown distribution"
