"""Finding extensions: every target type and every social network is a class registered under an
entry-point group, built-in ones (in syndicate's own pyproject.toml) and third-party ones alike.

Like `llm` and APScheduler, discovery goes through the installed packages' metadata, so a
package that declares `[project.entry-points."syndicate.targets"]` adds a target type with no
edit to syndicate. A plugin that cannot be loaded is a one-line error naming its entry point.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TypeVar

from .errors import ConfigError

__all__ = ["load_plugins"]

T = TypeVar("T")


def load_plugins(group: str, base: type[T]) -> dict[str, type[T]]:
    """The classes registered under `group`, by entry-point name; each must subclass `base`.

    The same name registered twice with different classes is refused: which one wins would
    depend on the order packages were installed in."""
    found: dict[str, type[T]] = {}
    where: dict[str, str] = {}
    for point in sorted(entry_points(group=group), key=lambda p: (p.name, p.value)):
        if point.name in where:
            if where[point.name] == point.value:
                continue  # one package seen twice (an editable install beside a built one)
            raise ConfigError(
                f"entry point {group}:{point.name} is registered twice ({where[point.name]} and "
                f"{point.value}; expected one package to provide it)"
            )
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin: name it instead of a traceback
            raise ConfigError(
                f"entry point {group}:{point.name} ({point.value}) cannot be loaded "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if not (isinstance(loaded, type) and issubclass(loaded, base)):
            raise ConfigError(
                f"entry point {group}:{point.name} ({point.value}) is not a {base.__name__} "
                f"(expected a subclass of {base.__module__}.{base.__qualname__})"
            )
        found[point.name] = loaded
        where[point.name] = point.value
    return found
