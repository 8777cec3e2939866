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

from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ConfigError
from ...plugins import load_plugin, registered

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
    #: The most hashtags the network itself takes, whatever a channel's `max_hashtags` asks (Threads
    #: makes one a post's topic tag and no more); None: no ceiling of its own.
    hashtag_ceiling: ClassVar[int | None] = None
    #: Fewer hashtags than this is a warning (the network's own advice); 0: no advice.
    min_hashtags: ClassVar[int] = 0
    #: How much of a post shows before "see more", in `unit`; None: the whole post shows.
    fold_at: ClassVar[int | None] = None
    #: Whether a post can go on as a thread of replies (`thread: true` on a channel).
    replies: ClassVar[bool] = False
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
    loaded = load_plugin(GROUP, name, Network, "network")  # type: ignore[type-abstract]
    if loaded is None:
        raise ConfigError(f"network {name!r} is not known (expected {_quoted(network_names())})")
    return _instance(loaded, name)


def network_names() -> list[str]:
    """The names of every installed network, sorted."""
    return sorted(registered(GROUP))


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none installed"


@lru_cache(maxsize=64)
def _instance(loaded: type[Network], name: str) -> Network:
    """One instance per network class, checked to answer to the name it is registered under."""
    if getattr(loaded, "name", None) != name:
        raise ConfigError(
            f"network {name!r}: {loaded.__module__}:{loaded.__qualname__} calls itself "
            f"{getattr(loaded, 'name', None)!r} (expected the entry point's name)"
        )
    try:
        return loaded()
    except TypeError as exc:  # abstract methods left out, or an __init__ wanting arguments
        raise ConfigError(f"network {name!r}: {loaded.__module__}:{loaded.__qualname__}: {exc}") from None
