"""Finding extensions: every target type and every social network is a class registered under an
entry-point group, built-in ones (in syndicate's own pyproject.toml) and third-party ones alike.

Like `llm` and APScheduler, discovery goes through the installed packages' metadata, so a
package that declares `[project.entry-points."syndicate.targets"]` (or `"syndicate.networks"`)
adds one with no edit to syndicate. A plugin is imported only when it is asked for, once; a
plugin that cannot be loaded, is not the right kind of class, or whose name two packages claim
is a one-line `ConfigError` naming it and the package it came from.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

from .errors import ConfigError

__all__ = ["load_all", "load_plugin", "origin", "registered"]

T = TypeVar("T")


def registered(group: str) -> dict[str, tuple[EntryPoint, ...]]:
    """The entry points of `group` by name (more than one: two packages claim the name)."""
    return _registry(group, tuple(sys.path))


def load_plugin(group: str, name: str, base: type[T], kind: str) -> type[T] | None:
    """The class registered as `name`, checked to subclass `base`; None when nothing is.
    `kind` names it in errors ("network", "target type")."""
    found = registered(group).get(name)
    if found is None:
        return None
    if len(found) > 1:
        where = " and ".join(sorted(f"{origin(ep)} ({ep.value})" for ep in found))
        raise ConfigError(f"{kind} {name!r} is registered twice, by {where} (expected one; uninstall one)")
    loaded = _load(found[0], kind)
    if not (isinstance(loaded, type) and issubclass(loaded, base)):
        raise ConfigError(
            f"{kind} {name!r}: {found[0].value} from {origin(found[0])} is not a {base.__name__} subclass"
        )
    return loaded


def load_all(group: str, base: type[T], kind: str) -> dict[str, type[T]]:
    """Every class registered under `group`, by name (each loaded and checked)."""
    classes: dict[str, type[T]] = {}
    for name in sorted(registered(group)):
        loaded = load_plugin(group, name, base, kind)
        if loaded is not None:
            classes[name] = loaded
    return classes


def origin(point: EntryPoint) -> str:
    """The distribution an entry point comes from, for messages."""
    dist = point.dist
    return dist.name if dist is not None else "an unknown distribution"


@lru_cache(maxsize=16)
def _registry(group: str, search_path: tuple[str, ...]) -> dict[str, tuple[EntryPoint, ...]]:
    """Keyed on `sys.path` too, so a plugin put on the path later is found as well."""
    found: dict[str, dict[str, EntryPoint]] = {}
    for point in entry_points(group=group):
        found.setdefault(point.name, {})[point.value] = point  # one class seen twice is one plugin
    return {name: tuple(points.values()) for name, points in found.items()}


@lru_cache(maxsize=128)
def _load(point: EntryPoint, kind: str) -> object:
    try:
        return point.load()
    except Exception as exc:  # a plugin is someone else's code: any failure importing it is theirs
        raise ConfigError(
            f"{kind} {point.name!r}: cannot load {point.value} from {origin(point)} "
            f"({type(exc).__name__}: {exc})"
        ) from None


def clear_caches() -> None:
    """Forget what was found and loaded (tests that register entry points of their own)."""
    _registry.cache_clear()
    _load.cache_clear()
