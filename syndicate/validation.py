"""Checks that settings models share: strict models, times, URLs and where a URL may point.

Both the config (site, channels, schedule) and each target type's own settings model (one per
module under `deliver/`) validate with these, so a rule such as "plain http only to loopback"
is written once, whoever declares the field.
"""

from __future__ import annotations

import ipaddress
import re
import reprlib
from datetime import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict", "check_http_url", "is_internal", "is_loopback", "parse_time", "short"]


class Strict(BaseModel):
    """Unknown keys are mistakes (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 08:00 as the sexagesimal integer 480.
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hour, minute = (int(p) for p in value.strip().split(":"))
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise ValueError(f"{short(value)} is not a time (expected HH:MM)")


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{short(value)} is not a URL (expected http:// or https://...)")
    return value


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


# Names that reach a cloud provider's instance metadata (credentials) from inside its network.
_METADATA_HOSTS = {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}


def is_internal(host: str | None) -> bool:
    """A host a webhook must not reach unless the user says so: private, link-local (the
    169.254.169.254 metadata service), unspecified, reserved or multicast addresses, and cloud
    metadata names. Loopback is allowed (tests, local relays); names are not resolved here."""
    name = (host or "").rstrip(".").lower()
    if name in _METADATA_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return False
    return (
        address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
        or address.is_multicast
    )


def short(value: Any) -> str:
    return reprlib.repr(value)
