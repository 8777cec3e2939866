"""The `outbox` target: exactly the bytes that would go out, one file per message, in a folder.

Email is written as `.eml` with CRLF line endings (what SMTP would carry), posts and webhook
bodies as `.json`. Names are deterministic, so a re-run overwrites rather than piles up.
A write that fails (a full disk) leaves no partial file, and the message pending for the next run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..errors import DeliveryError
from ..naming import EML, JSON, message_file
from ..state import private_dir, write_private
from . import MailTargetSettings, Message, Pacing, Result

if TYPE_CHECKING:
    from ..config import Config


class OutboxTarget:
    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.pacing = Pacing(error_threshold=1, max_attempts=1)

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[OutboxConnection]:
        try:
            private_dir(self.directory)
        except OSError as exc:
            raise DeliveryError(
                f"targets.{self.name}.dir: cannot create {self.directory} ({exc.strerror})"
            ) from None
        yield OutboxConnection(self.directory)


class OutboxConnection:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: Message) -> Result:
        from ..compose.mime import fresh_message_id, message_bytes  # the email toolchain: when sending

        payload = message.build()
        if isinstance(payload, EmailMessage):
            if message.fresh_id:  # a deliberate resend, as the smtp target sends it
                fresh_message_id(payload, message.fresh_id)
            data, suffix = message_bytes(payload), EML
        else:
            data, suffix = _json_bytes(payload), JSON
        path = message_file(self.directory, message.key, suffix)
        try:
            write_private(path, data)  # owner-only: it holds a reader's address
        except OSError as exc:  # a full disk, most likely: nothing went out, so the next run tries again
            return Result(message.key, "retry", f"cannot write {path} ({exc.strerror})")
        return Result(message.key, "sent", str(path))


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n").encode(
        "utf-8"
    )


class OutboxSettings(MailTargetSettings):
    """`type: outbox`: a folder; `recipients` (and `suppression`) when email channels use it."""

    type: Literal["outbox"]
    dir: Path
    what: ClassVar[str] = "an outbox target, which writes files"

    def connect(self, name: str, config: Config) -> OutboxTarget:
        return OutboxTarget(name, self.dir)
