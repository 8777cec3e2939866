"""What the daemon says: one event per thing that happened, as a dict, shown as one log line.

Every part of the daemon (the service, its job-store sync, the runner) reports through `emit`, so
an event always has the same shape (`time`, `event`, then its fields) and times always read the
same way, whoever logged them; `format_event` is the only place that turns one into text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .. import clock
from ..config import Config
from ..timeshow import show_time

__all__ = ["Event", "Log", "emit", "first_line", "format_event"]

Event = dict[str, Any]
Log = Callable[[Event], None]


def emit(log: Log, config: Config, event: str, **fields: Any) -> None:
    """One log event; times in the site's timezone with their offset, to the second."""
    tz = config.site.tz

    def shown(moment: datetime) -> str:
        return show_time(moment, tz, to="second", form="iso")

    values = {k: shown(v) if isinstance(v, datetime) else v for k, v in fields.items() if v is not None}
    log({"time": shown(clock.now()), "event": event, **values})


def format_event(event: Event, style: str) -> str:
    """One log line: `text` for people, `json` for log collectors."""
    if style == "json":
        return json.dumps(event, ensure_ascii=False)
    head = f"{event['time']}  {event['event']:<11}"
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("time", "event", "reason"))
    reason = f"  ({event['reason']})" if "reason" in event else ""
    return f"{head} {rest}{reason}".rstrip()


def first_line(exc: BaseException) -> str:
    """A database error as one line: the driver's own message when SQLAlchemy wraps one."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
