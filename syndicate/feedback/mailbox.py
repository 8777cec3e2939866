"""The mailbox bounces and complaints arrive in: a Maildir folder, an mbox file, or IMAP over TLS.

Each kind yields `(ident, raw bytes)` for the messages not yet processed and marks one processed
with `mark_done(ident)`, so a second run never counts a bounce twice:

- Maildir: messages are read from `new/` and `cur/`; a processed one is moved (one rename, so
  it is never in both places) into the Maildir++ subfolder `.processed/cur/`, which a mail
  client shows as the folder "processed". Everything still in the inbox is unprocessed.
- mbox: the file is shared with the MTA that appends to it, so it is never rewritten; the
  SHA-256 of each processed message is appended to a state file. A hash, not an offset or a
  Message-ID: offsets move when a mail client compacts the file, bounces may lack a
  Message-ID, and a message read half-written has another hash than the complete one and is
  read again once complete.
- IMAP (`imaps://user@host[:port]/FOLDER`): the UNSEEN messages, fetched with BODY.PEEK so
  reading alone marks nothing, then flagged \\Seen by `mark_done`. The password comes from the
  environment variable the config names, and is never printed.

`read_mailbox` marks each message done when the caller asks for the next one, i.e. after it
has handled it: a crash in between reads that message again next time (at least once).
"""

from __future__ import annotations

import hashlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, SyndicateError

__all__ = ["ImapBox", "Mailbox", "MailboxError", "MaildirBox", "MboxBox", "open_mailbox", "read_mailbox"]

PROCESSED = ".processed"


class MailboxError(SyndicateError):
    """The mailbox cannot be read: missing, not a mailbox, or the IMAP server refused us."""


class Mailbox(Protocol):
    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def mark_done(self, ident: str) -> None: ...

    def close(self) -> None: ...


class MaildirBox:
    """A Maildir; `ident` is `new/<name>` or `cur/<name>`."""

    def __init__(self, path: Path) -> None:
        if not all((path / sub).is_dir() for sub in ("new", "cur")):
            raise MailboxError(f"{path}: not a Maildir (no new/ and cur/ folders)")
        self.path = path

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for sub in ("new", "cur"):
            for name in sorted(os.listdir(self.path / sub)):  # names start with the arrival time
                if name.startswith("."):
                    continue
                try:
                    raw = (self.path / sub / name).read_bytes()
                except FileNotFoundError:  # another reader moved it meanwhile
                    continue
                yield f"{sub}/{name}", raw

    def mark_done(self, ident: str) -> None:
        sub, _, name = ident.partition("/")
        if sub not in ("new", "cur") or not name or "/" in name:
            raise ValueError(f"not a message of this Maildir: {ident!r}")
        target = self.path / PROCESSED
        for folder in ("new", "cur", "tmp"):
            (target / folder).mkdir(parents=True, exist_ok=True)
        (target / "maildirfolder").touch()  # marks a Maildir++ subfolder
        # A message from new/ gets the info suffix cur/ requires; Seen, as it has been read.
        done_name = name if ":2," in name else f"{name}:2,S"
        os.rename(self.path / sub / name, target / "cur" / done_name)

    def close(self) -> None:
        pass


class MboxBox:
    """An mbox file and the state file listing the hashes of its processed messages."""

    def __init__(self, path: Path, state: Path | None) -> None:
        if state is None:
            raise ConfigError(f"{path}: an mbox needs a state file to remember processed messages")
        if not path.is_file():
            raise MailboxError(f"{path}: no such mbox file")
        self.path, self.state = path, state
        self.done = set(state.read_text("ascii").split()) if state.is_file() else set()

    def messages(self) -> Iterator[tuple[str, bytes]]:
        box = mailbox.mbox(self.path, create=False)
        try:
            for key in box.iterkeys():
                raw = box.get_bytes(key)
                ident = hashlib.sha256(raw).hexdigest()
                if ident not in self.done:
                    yield ident, raw
        finally:
            box.close()

    def mark_done(self, ident: str) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", ident):
            raise ValueError(f"not a message of this mbox: {ident!r}")
        self.state.parent.mkdir(parents=True, exist_ok=True)
        with self.state.open("a", encoding="ascii") as state:
            state.write(ident + "\n")
            state.flush()
            os.fsync(state.fileno())
        self.done.add(ident)

    def close(self) -> None:
        pass


class ImapBox:
    """One IMAP folder over TLS; `ident` is the message's UID."""

    def __init__(self, url: str, password_env: str | None, ca_file: str | None) -> None:
        parts = urlsplit(url)
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        if not parts.hostname or not parts.username:
            raise ConfigError(f"{parts.scheme}://{parts.hostname or ''}: expected imaps://user@host/FOLDER")
        if not password_env or not os.environ.get(password_env):
            raise ConfigError(f"IMAP password: set the environment variable {password_env or '(none named)'}")
        context = ssl.create_default_context(cafile=ca_file)
        where = f"{parts.hostname}:{parts.port or 993}"
        try:
            self.imap = imaplib.IMAP4_SSL(parts.hostname, parts.port or 993, ssl_context=context, timeout=30)
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"IMAP {where}: cannot connect ({error})") from None
        try:
            self.imap.login(unquote(parts.username), os.environ[password_env])
            status, _ = self.imap.select(_quoted(folder))
        except imaplib.IMAP4.error:
            self.close()
            raise MailboxError(f"IMAP {where}: login or folder {folder!r} refused") from None
        if status != "OK":
            self.close()
            raise MailboxError(f"IMAP {where}: no folder {folder!r}")

    def messages(self) -> Iterator[tuple[str, bytes]]:
        status, data = self.imap.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise MailboxError("IMAP: the UNSEEN search failed")
        for uid in (data[0] or b"").split():
            status, fetched = self.imap.uid("FETCH", uid.decode("ascii"), "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if status == "OK" and isinstance(raw, bytes):
                yield uid.decode("ascii"), raw

    def mark_done(self, ident: str) -> None:
        if not ident.isdigit():
            raise ValueError(f"not an IMAP UID: {ident!r}")
        status, _ = self.imap.uid("STORE", ident, "+FLAGS", "(\\Seen)")
        if status != "OK":
            raise MailboxError(f"IMAP: cannot flag message {ident} as seen")

    def close(self) -> None:
        with suppress(OSError, imaplib.IMAP4.error):
            self.imap.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def open_mailbox(
    location: str | Path,
    *,
    state: Path | None = None,
    password_env: str | None = None,
    ca_file: str | None = None,
) -> Iterator[Mailbox]:
    """The mailbox at `location`: an `imaps://` URL, a Maildir folder, or an mbox file (which
    needs `state`). `password_env` names the environment variable holding the IMAP password."""
    text = str(location)
    box: Mailbox
    if text.startswith("imaps://"):
        box = ImapBox(text, password_env, ca_file)
    elif "://" in text:
        raise ConfigError(f"{text.split('://')[0]}://: only imaps:// mailboxes are read (not plain IMAP)")
    elif Path(text).is_dir():
        box = MaildirBox(Path(text))
    else:
        box = MboxBox(Path(text), state)
    try:
        yield box
    finally:
        box.close()


def read_mailbox(
    location: str | Path,
    *,
    state: Path | None = None,
    password_env: str | None = None,
    ca_file: str | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Each unprocessed message as (ident, raw bytes), marked done once the caller comes back for
    the next one. Stopping early leaves the last message yielded unmarked, to be read again."""
    with open_mailbox(location, state=state, password_env=password_env, ca_file=ca_file) as box:
        for ident, raw in box.messages():
            yield ident, raw
            box.mark_done(ident)
