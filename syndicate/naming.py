"""The names of the files syndicate writes: one rule for which characters a name may hold, one
name per draft, one per message, and the extensions.

- A draft (an email, a post) is named by its draft key made safe: `weekly:2024-02-05` ->
  `weekly-2024-02-05`. The preview writes `<draft>.html`, `.txt` and `.eml` for an email and
  `<draft>.txt` and `.json` for a post; an email's "view in browser" link points at
  `<draft>.html` in the site's archive, so those names are in every email already sent: they
  must never change.
- A message (one draft to one reader, as the outbox and the dry run write it) is named
  `<draft>.<recipient>.<digest>` plus `.eml` or `.json`: readable, and unique per ledger key
  through `MessageKey.digest()`. A re-run overwrites the same file rather than piling up a
  second, so these names must not change either.
- A target's or channel's folder (the dry run's `dry-run/<target>`, a test send's
  `test-send/<channel>`) is the config name made safe.

Safe means ASCII letters, digits, `.`, `_` and `-`, plus `@` and `+` in message names (they
name an address, and are harmless on every filesystem): any other run of characters becomes one
`-`, and a name never starts or ends with `-` or `.` (no hidden files, no `..`). The same rule
then holds in a URL path, on Windows and in a shell.
"""

from __future__ import annotations

import re
from pathlib import Path

from .keys import MessageKey

__all__ = [
    "EML",
    "HTML",
    "JSON",
    "TEXT",
    "archive_name",
    "draft_files",
    "draft_stem",
    "named_folder",
    "message_file",
    "safe_name",
]

EML = ".eml"  # a whole email, CRLF line endings, as SMTP would carry it
HTML = ".html"  # an email's HTML part
TEXT = ".txt"  # an email's plain part, or a post's text as posted
JSON = ".json"  # a post or webhook body

ADDRESS = "@+"  # kept in message names: `a+news@example.org` stays readable
PART_CHARS = 60  # the most of a draft key or an address a message name carries; the digest tells apart
_SAFE = "A-Za-z0-9._-"


def safe_name(text: str, keep: str = "") -> str:
    """`text` as a file-name part: runs of other characters than ASCII letters, digits, `.`, `_`,
    `-` (and those in `keep`) become one `-`, leading and trailing `-` and `.` go. May be empty."""
    unsafe = f"[^{re.escape(keep)}{_SAFE}]+"  # `_SAFE` ends with `-`: last, it stays a `-`
    return re.sub(unsafe, "-", text).strip("-.")


def draft_stem(draft_key: str) -> str:
    """A draft's file name without extension: `weekly:2024-02-05` -> `weekly-2024-02-05`."""
    return safe_name(draft_key) or "draft"


def draft_files(folder: Path, draft_key: str, *suffixes: str) -> tuple[Path, ...]:
    """A draft's files in `folder`, one per suffix (`HTML, TEXT, EML` for an email, `TEXT, JSON`
    for a post). The suffix is appended, never swapped for a dot already in the stem."""
    stem = draft_stem(draft_key)
    return tuple(folder / f"{stem}{suffix}" for suffix in suffixes)


def archive_name(draft_key: str) -> str:
    """The file an email's "view in browser" link names in the site's archive: the preview's
    HTML file, so publishing the preview folder publishes the archive."""
    return f"{draft_stem(draft_key)}{HTML}"


def message_file(folder: Path, key: MessageKey, suffix: str) -> Path:
    """One message's file: `<draft>.<recipient>.<digest><suffix>` (a post has no recipient)."""
    parts = [safe_name(part, ADDRESS)[:PART_CHARS] for part in (key.draft_key, key.recipient)]
    return folder / (".".join([*(p for p in parts if p), key.digest()]) + suffix)


def named_folder(parent: Path, name: str) -> Path:
    """The folder of a target or channel (named in the config) under `parent`: a name such as
    `../mail` or `a/b` stays one folder inside `parent`."""
    return parent / (safe_name(name) or "_")
