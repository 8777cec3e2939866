"""A lost ledger is noticed: the state folder remembers which ledger it used and how much it held.

The ledger is what stops a second run from mailing every reader again. If it is deleted, emptied
(a 0-byte file), swapped for another, or truncated, a run that trusted it would send everything
again, exit 0. So the state folder keeps a small marker (`ledger.marker`, owner-only JSON: the
ledger's id and how many messages it had recorded as sent), written after every run that sends.
A ledger that does not match its marker is refused with one line naming what is gone, until the
user accepts a new ledger (`--new-ledger`). A state folder with no marker yet (new, or written by
a version before the marker) adopts the ledger it finds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import StateError
from .ledger import LEDGER_FILE, Ledger
from .state import private_dir, private_file

__all__ = ["MARKER_FILE", "Marker", "check_ledger", "open_ledger", "remember_ledger"]

MARKER_FILE = "ledger.marker"


@dataclass(frozen=True)
class Marker:
    ledger_id: str
    sent: int


def _marker_path(config: Config) -> Path:
    return config.state_dir / MARKER_FILE


def read_marker(config: Config) -> Marker | None:
    path = _marker_path(config)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Marker(str(data["ledger_id"]), int(data["sent"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise StateError(
            f"{path}: cannot read the ledger marker (expected the JSON syndicate writes there; "
            "--new-ledger writes it anew)"
        ) from None


def remember_ledger(config: Config, ledger: Ledger) -> None:
    """Record the ledger's id and sent count (atomically: a crash leaves the old marker)."""
    path = _marker_path(config)
    private_dir(path.parent)
    temporary = private_file(path.with_name(f".{MARKER_FILE}.{os.getpid()}.tmp"))
    temporary.write_text(
        json.dumps({"ledger_id": ledger.ledger_id, "sent": ledger.sent_total()}), encoding="utf-8"
    )
    os.replace(temporary, path)


def check_ledger(config: Config, ledger: Ledger, *, accept_new: bool = False) -> None:
    """Refuse to send through a ledger that is not the one this state folder used (StateError,
    exit 2), unless `accept_new`; a state folder without a marker adopts this ledger."""
    marker = read_marker(config)
    if marker is None or accept_new:
        remember_ledger(config, ledger)
        return
    if marker.ledger_id == ledger.ledger_id:
        sent = ledger.sent_total()
        if sent >= marker.sent:
            return
        what = f"it records {sent} sent message(s) where it had {marker.sent}: rows were removed"
    else:
        where = "database_url" if config.database_url else str(config.state_dir / LEDGER_FILE)
        state = "new and empty" if ledger.is_new else "another one"
        what = f"{where} was deleted, emptied or replaced: the ledger there is {state}"
    raise StateError(
        f"{config.state_dir}: the ledger that recorded {marker.sent} sent message(s) is gone ({what}); "
        "sending now could send them all again. Restore it, or run again with --new-ledger to "
        "start a new ledger (expected the ledger this state folder has used)"
    )


def open_ledger(config: Config, new_ledger: bool = False) -> Ledger:
    """The ledger to send through, checked against the one the state folder remembers."""
    ledger = Ledger.from_config(config)
    try:
        check_ledger(config, ledger, accept_new=new_ledger)
    except BaseException:
        ledger.close()
        raise
    return ledger
