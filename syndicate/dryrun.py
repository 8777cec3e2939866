"""The dry-run folder: emptied before each dry run, so it holds only what that run would send.

`<state_dir>/dry-run` belongs to syndicate and is emptied whole. A folder given with `--out` is
the user's: it is emptied only when it holds nothing but what earlier dry runs wrote there, as
listed in its marker file (`.syndicate-dry-run`, rewritten after each run); a folder holding
anything else is refused with one line, and nothing in it is touched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import Config
from .errors import ContentError
from .state import state_path

MARKER = ".syndicate-dry-run"
_HEADER = "# written by `syndicate send --dry-run`; emptied by the next one. Files it wrote:"


@contextmanager
def dry_run_folder(config: Config, out: Path | None = None) -> Iterator[Path]:
    """The folder a dry run writes to (`out`, or `<state_dir>/dry-run`), emptied first; an `out`
    folder gets its marker listing what the run wrote once it ends (or is interrupted)."""
    owned = out is None or out.resolve() == (config.state_dir / "dry-run").resolve()
    folder = state_path(config, "dry-run") if out is None else out
    empty(folder, owned=owned)
    try:
        yield folder
    finally:
        if not owned and folder.is_dir():
            entries = sorted(str(p) for p in _entries(folder) if str(p) != MARKER)
            (folder / MARKER).write_text("\n".join([_HEADER, *entries]) + "\n", encoding="utf-8")


def empty(folder: Path, *, owned: bool) -> None:
    """Remove what earlier dry runs wrote in `folder`; everything when syndicate owns it."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ContentError(f"{folder}: not a folder (expected a folder for the dry run's messages)")
    if owned:
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        return
    marker = folder / MARKER
    written = set(marker.read_text(encoding="utf-8").splitlines()[1:]) if marker.is_file() else set()
    strangers = [p for p in _entries(folder) if str(p) != MARKER and str(p) not in written]
    if strangers:
        raise ContentError(
            f"{folder}: holds {len(strangers)} file(s) no dry run wrote (e.g. {strangers[0]}); "
            "not emptying it (expected a new or empty folder, or one only dry runs wrote to)"
        )
    for relative in sorted(written, key=lambda p: -p.count("/")):
        path = folder / relative
        if path.is_symlink() or path.is_file():
            path.unlink()
    for below, dirs, _files in os.walk(folder, topdown=False):
        for name in dirs:
            path = Path(below) / name
            if not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()


def _entries(folder: Path) -> Iterator[Path]:
    """Everything in `folder` but directories, relative to it; a link to a folder is an entry
    (never followed)."""
    for below, dirs, files in os.walk(folder):
        here = Path(below).relative_to(folder)
        for name in files:
            yield here / name
        for name in list(dirs):
            if (Path(below) / name).is_symlink():
                dirs.remove(name)
                yield here / name
