"""Shared fixtures: a site config in a temporary folder and a way to write articles into it."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from syndicate.config import Config, config_from_dict

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def base_config_dict() -> dict:
    return {
        "site": {
            "name": "Test Weekly",
            "base_url": "https://example.com/articles/",
            "timezone": "Europe/London",
            "sender": "Test Weekly <news@example.com>",
            "postal_address": "1 Example Street, London",
            "unsubscribe_url": "https://example.com/unsubscribe",
        },
        "content": {"dir": "content"},
        "channels": {
            "weekly": {"kind": "email", "mode": "digest", "targets": ["mail-outbox"]},
            "linkedin": {"kind": "social", "network": "linkedin", "targets": ["social-outbox"]},
        },
        "targets": {
            "mail-outbox": {"type": "outbox", "dir": "outbox/email", "recipients": ["a@example.com"]},
            "social-outbox": {"type": "outbox", "dir": "outbox/social"},
        },
    }


@pytest.fixture
def site(tmp_path: Path):
    """A folder with content/ and a config.yaml; `site.config()` re-reads it after edits."""

    class Site:
        root = tmp_path
        content = tmp_path / "content"
        config_path = tmp_path / "config.yaml"
        data = base_config_dict()

        def write_config(self, data: dict | None = None) -> Path:
            self.config_path.write_text(yaml.safe_dump(data or self.data), encoding="utf-8")
            return self.config_path

        def config(self) -> Config:
            return config_from_dict(self.data, self.config_path)

        def article(self, name: str, text: str) -> Path:
            path = self.content / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
            return path

    s = Site()
    s.data = base_config_dict()
    s.content.mkdir()
    s.write_config()
    return s


@pytest.fixture
def email_site(site):
    """The site holding tests/data/email/articles: a weekly digest, a single-article and a social channel."""
    for path in (DATA / "email" / "articles").glob("*.md"):
        shutil.copy(path, site.content / path.name)
    site.data["site"]["unsubscribe_mailto"] = "unsubscribe@example.com"
    site.data["channels"] = {
        "weekly": {
            "kind": "email",
            "mode": "digest",
            "schedule": {"every": "week", "weekday": "mon", "at": "08:00"},
            "utm": {"source": "newsletter", "medium": "email"},
            "targets": ["mail-outbox"],
        },
        "letters": {"kind": "email", "mode": "single", "targets": ["mail-outbox"]},
        "linkedin": {"kind": "social", "network": "linkedin", "targets": ["social-outbox"]},
    }
    site.write_config()
    return site
