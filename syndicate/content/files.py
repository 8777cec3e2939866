"""Which files in a content folder are articles: the kinds, the include and exclude globs, and
the pages a generator never publishes as posts (README, section `_index.md`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ContentError
from .presets import ALWAYS_SKIPPED, Preset

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")


@dataclass(frozen=True)
class Found:
    """A folder walked: the files to read, and those passed over (path, why)."""

    files: list[Path]
    skipped: list[tuple[Path, str]]


@dataclass(frozen=True)
class Selection:
    """The rules a walk applies (from `content.include`, `content.exclude` and the preset)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    section_pages: tuple[str, ...] = ()

    @classmethod
    def of(cls, include: list[str], exclude: list[str], preset: Preset | None) -> Selection:
        return cls(
            tuple(include),
            (*ALWAYS_SKIPPED, *(preset.exclude if preset else ()), *exclude),
            preset.section_pages if preset else ("_index.md", "_index.markdown", "_index.mdx"),
        )

    def why_skipped(self, relative: str) -> str | None:
        """Why a file (its path in the content folder, with `/`) is not an article, or None."""
        name = relative.rsplit("/", 1)[-1]
        if name in self.section_pages:
            return "a section page"
        if self.exclude and _any_of(self.exclude).fullmatch(relative):
            return "excluded"
        if self.include and not _any_of(self.include).fullmatch(relative):
            return "not included"
        return None


def is_markdown(name: str) -> bool:
    return name.lower().endswith(MARKDOWN_SUFFIXES) and not name.startswith(".")


def walk(root: Path, selection: Selection) -> Found:
    """The article files under `root` (or `root` itself), in a stable order; any depth."""
    if root.is_file():
        return Found([root], [])
    if not root.exists():
        raise ContentError(f"{root}: no such file or folder (expected markdown articles)")
    if not root.is_dir():
        raise ContentError(f"{root}: not a file or folder")
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    prefix = len(str(root)) + 1
    # followlinks=False: a symlinked folder loop must not walk forever.
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not is_markdown(name):
                continue
            path = Path(folder) / name
            why = selection.why_skipped(str(path)[prefix:].replace(os.sep, "/"))
            if why is None:
                files.append(path)
            else:
                skipped.append((path, why))
    return Found(files, skipped)


@lru_cache(maxsize=64)
def _any_of(globs: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern matching any of the globs: a walk tests each file once, not once a glob."""
    return re.compile("|".join(f"(?:{_compiled(glob).pattern})" for glob in globs))


@lru_cache(maxsize=256)
def _compiled(glob: str) -> re.Pattern[str]:
    """A glob as a regular expression: `**` across folders, `*` and `?` within one
    (PurePosixPath.full_match arrives in Python 3.13)."""
    pattern = glob.strip().lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    if "/" not in glob.strip().strip("/"):  # a bare name matches at any depth, like .gitignore
        return re.compile("(?:.*/)?" + "".join(out))
    return re.compile("".join(out))


def folders_of(path: Path, root: Path) -> tuple[tuple[str, ...], str | None]:
    """The folders between the content folder and a file, and, for a page bundle
    (`post/index.md`), its folder's name: that folder is the post, so not one of the folders."""
    inside = _prefix(str(root))
    absolute = str(path) if path.is_absolute() else os.path.abspath(path)
    if not absolute.startswith(inside):  # a file given outside the content folder: only a bundle's own
        is_index = path.stem.lower() == "index" and bool(path.parent.name)
        return (), (path.parent.name if is_index else None)
    parts = absolute[len(inside) :].split(os.sep)
    folders = tuple(parts[:-1])
    if parts[-1].rsplit(".", 1)[0].lower() == "index" and folders:
        return folders[:-1], folders[-1]
    return folders, None


@lru_cache(maxsize=16)
def _prefix(root: str) -> str:
    return os.path.join(os.path.abspath(root), "")
