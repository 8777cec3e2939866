"""Who an email goes to: one `Recipient` per address, with the fields templates may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipient:
    """An address plus its name and any extra CSV columns (for personalisation)."""

    email: str
    name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
