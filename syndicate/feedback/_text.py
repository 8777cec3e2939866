"""Small normalisations every feedback source shares, so a Message-ID or a diagnostic from a DSN
and from an ESP's JSON compare equal and print as one line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import ForgedWebhook

DETAIL_MAX = 300
_MESSAGE_ID = re.compile(r"<?\s*([^<>\s]+@[^<>\s]+?)\s*>?")


def one_line(*parts: object) -> str:
    """The parts joined by spaces, whitespace runs (folded header lines) collapsed, cut to a
    length a log line can carry: a diagnostic is the remote server's text, of any size."""
    text = " ".join(" ".join(str(part).split()) for part in parts if part not in (None, ""))
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def message_id(value: object) -> str | None:
    """A Message-ID as `<left@right>` whether the source wrote it with angle brackets (a DSN) or
    without (Mailgun), so the store can match it against what it sent; None if it is not one."""
    if not isinstance(value, str):
        return None
    found = _MESSAGE_ID.fullmatch(value.strip())
    return f"<{found.group(1)}>" if found else None


def address(value: object) -> str | None:
    """An address from an address-type field (`rfc822; reader@example.org`, RFC 3464 §2.1.2) or
    a bare one, without angle brackets; None when there is no `@` in it."""
    if not isinstance(value, str):
        return None
    text = value.split(";", 1)[1] if ";" in value else value
    text = " ".join(text.split()).strip("<> ")
    return text if "@" in text and " " not in text else None


def check_fresh(stamp: datetime, now: datetime, max_age_seconds: int) -> None:
    """ForgedWebhook when a signed timestamp is further than `max_age_seconds` from `now` either
    way: an old request is a replay, one from the future a forged clock."""
    age = (now - stamp).total_seconds()
    if age > max_age_seconds:
        raise ForgedWebhook(f"the signed timestamp is stale ({int(age)} s old; at most {max_age_seconds} s)")
    if age < -max_age_seconds:
        raise ForgedWebhook(f"the signed timestamp is {int(-age)} s in the future")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by name, whatever case the web framework kept it in."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def json_body(body: bytes) -> Any:
    """The parsed JSON of a request body; ForgedWebhook when it is not JSON (no ESP sends that)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeError):
        raise ForgedWebhook("the body is not JSON") from None


def obj(parent: Mapping[str, Any], name: str) -> dict[str, Any]:
    """`parent[name]` when it is a JSON object, else an empty one: ESP payloads omit and add
    fields as they please, and a missing one must read as absent, not crash."""
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def objects(parent: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The JSON objects in the list `parent[name]`; [] when it is not a list."""
    value = parent.get(name)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
