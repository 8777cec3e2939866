"""How a moment is shown: always in the site's timezone, always with its UTC offset.

Every time syndicate shows (the CLI's tables, `status --json`, the daemon's log, the preview
gallery, `serve`'s console) goes through `show_time`, so they agree on the zone and the offset
and a reader can compare any two of them. What varies is for whom:

- `text` (the default), for a person at a terminal: `2027-03-01 08:00 +00:00`;
- `iso`, for programs (JSON, log collectors): ISO 8601, `2027-03-01T08:00:00+00:00`;
- `reader`, for the site's readers and writers in the gallery: `Mon 1 Mar 2027, 08:00 GMT (+00:00)`.

and how precisely: to the `minute` (a send time, which is planned to the minute) or to the
`second` (a log event or a ledger write, which happen when they happen).

It lives alone rather than in `schedule.py` (which decides *when* things go out, and imports
the config and content models for it) so that anything showing a time, the daemon's logging
included, can use it without depending on scheduling.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

__all__ = ["Form", "Precision", "show_time"]

Precision = Literal["minute", "second"]
Form = Literal["text", "iso", "reader"]

_CLOCK = {"minute": "%H:%M", "second": "%H:%M:%S"}


def show_time(moment: datetime, tz: tzinfo, *, to: Precision = "minute", form: Form = "text") -> str:
    """`moment` in `tz` (the site's timezone) with its UTC offset, to the minute or the second,
    in the `form` its audience reads (see the module docstring)."""
    local = moment.astimezone(tz)
    if form == "iso":
        return local.isoformat(timespec="minutes" if to == "minute" else "seconds")
    clock = local.strftime(_CLOCK[to])
    offset = _offset(local)
    if form == "reader":
        return f"{local:%a} {local.day} {local:%b %Y}, {clock} {local.tzname()} ({offset})"
    return f"{local:%Y-%m-%d} {clock} {offset}"


def _offset(local: datetime) -> str:
    """The UTC offset as `+01:00` (ISO's shape, which `%z`'s `+0100` is not)."""
    z = local.strftime("%z")
    return f"{z[:3]}:{z[3:5]}"
