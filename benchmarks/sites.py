"""The site every benchmark's config is written around: one place, so the benchmarks differ only
in what they measure (their channels and targets), never in the site."""

from __future__ import annotations

from typing import Any

SITE = {
    "name": "Bench Weekly",
    "base_url": "https://example.com/articles/",
    "timezone": "Europe/London",
    "sender": "Bench Weekly <news@example.com>",
    "postal_address": "1 Example Street, London",
    "unsubscribe_url": "https://example.com/unsubscribe",
}


def bench_config(channels: dict[str, Any], targets: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A raw config: the bench site, content in `content/`, and what the benchmark adds."""
    raw: dict[str, Any] = {
        "site": dict(SITE),
        "content": {"dir": "content"},
        "channels": channels,
        "targets": targets,
    }
    for key, value in more.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) else value
    return raw


def digest_channel(target: str, **settings: Any) -> dict[str, Any]:
    """An email digest channel to one target, UTM-tagged as a newsletter's would be."""
    return {
        "kind": "email",
        "mode": "digest",
        "utm": {"source": "newsletter", "medium": "email"},
        "targets": [target],
        **settings,
    }


def loopback_smtp(port: int, recipients: str, **settings: Any) -> dict[str, Any]:
    """An smtp target on a loopback sink (no TLS there, and no login)."""
    return {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "recipients": recipients,
        **settings,
    }
