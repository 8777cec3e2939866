"""A `spool` target, made up: each post appended to a JSON-lines file, one line per message.

Written as a third party would, against syndicate's public target protocol only: a settings
model (`TargetSettings`, its keys checked when the config loads), what it carries (ThreadsX
posts only), and `connect()` returning a target whose connections send messages one by one.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from syndicate import Config, Message, Result
from syndicate.deliver import Pacing, TargetSettings


class SpoolSettings(TargetSettings):
    """`type: spool`: `file` (relative to the config, as every path) gets one line per post."""

    type: Literal["spool"]
    file: Path
    label: str = Field(default="spool", min_length=1, max_length=40)
    what: ClassVar[str] = "a spool target, which appends ThreadsX posts to a file"
    takes_email: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = frozenset({"threadsx"})

    def connect(self, name: str, config: Config) -> Spool:
        return Spool(name, self.file, self.label)


class Spool:
    def __init__(self, name: str, file: Path, label: str) -> None:
        self.name = name
        self.file = file
        self.label = label
        self.pacing = Pacing(max_attempts=1)

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[SpoolConnection]:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with self.file.open("a", encoding="utf-8") as handle:
            yield SpoolConnection(handle, self.label)


class SpoolConnection:
    def __init__(self, handle: Any, label: str) -> None:
        self.handle = handle
        self.label = label

    def send(self, message: Message) -> Result:
        line = {"label": self.label, "key": message.key.draft_key, "payload": message.build()}
        self.handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return Result(message.key, "sent", str(self.handle.name))
