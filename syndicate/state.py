"""The state folder (`state_dir`): the ledger, the daemon's job store and lock, previews and dry
runs, private to its owner.

It holds subscribers' addresses, delivery errors and drafts not yet published, so syndicate
creates it owner-only (0700) and its databases and lock file 0600 (SQLite gives its -wal and -shm
files the database file's mode), whatever the umask. A folder that already exists is left as it is: it may
be one the user chose and shares on purpose.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def state_path(config: Config, *parts: str) -> Path:
    """A path inside the state folder, the folder created owner-only first if missing."""
    private_dir(config.state_dir)
    return config.state_dir.joinpath(*parts)


def private_dir(folder: Path) -> Path:
    """Create `folder` (and missing parents) as 0700; the umask can only take bits away."""
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return folder


def write_private(path: Path, data: str | bytes) -> Path:
    """Write `path` whole or not at all (a temporary file, then a rename), owner-only whatever the
    umask: outboxes, previews and dry runs hold readers' addresses and unpublished drafts. Its
    folder (and missing parents) is created 0700."""
    private_dir(path.parent)
    partial = path.with_name(f".{path.name}.partial")
    try:
        handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        try:
            os.fchmod(handle, PRIVATE_FILE)  # one left by an older run keeps no wider mode
            with os.fdopen(handle, "wb", closefd=False) as out:
                out.write(data.encode("utf-8") if isinstance(data, str) else data)
        finally:
            os.close(handle)
        os.replace(partial, path)
    except BaseException:  # a full disk: no partial file stays behind
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return path


FOLDER_ID_FILE = "folder.id"


def folder_id(config: Config) -> str:
    """This state folder's own random id, made on first use and kept in `folder.id`. The ledger
    marks each row a run claims with it (`Ledger.claimant`): on a ledger that several state
    folders share (PostgreSQL), a run recovers only its own folder's abandoned rows. A path
    would not do: two machines may both use `/srv/news/.syndicate`."""
    path = state_path(config, FOLDER_ID_FILE)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text
    made = uuid.uuid4().hex
    try:  # O_EXCL: of two processes making it at once, one id wins and both read it
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip() or made
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(made + "\n")
    return made


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 unless it exists, so whatever opens it next cannot widen it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    return path
