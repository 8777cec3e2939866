"""ESP event webhooks as `syndicate serve` receives them: verified by the provider's own rule,
then applied like any other bounce or complaint (intake.py).

Each provider is one module under feedback/esp/ with its settings and its check; this only looks
the provider up in `serve.webhooks`, so adding one touches nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from . import clock
from .config import Config
from .errors import ConfigError, SyndicateError
from .feedback.esp import ESP_READERS
from .intake import IntakeReport, apply_feedback

__all__ = ["UnknownWebhook", "receive_webhook"]


class UnknownWebhook(SyndicateError):
    """A provider this site has not configured (the endpoint answers 404)."""


def receive_webhook(config: Config, provider: str, headers: Mapping[str, str], body: bytes) -> IntakeReport:
    """Verify and apply one webhook call. ForgedWebhook (403) when its signature, credentials or
    age fail the provider's check; UnknownWebhook (404) for a provider not in serve.webhooks."""
    values = config.serve.webhooks.get(provider) if config.serve is not None else None
    reader = ESP_READERS.get(provider)
    if values is None or reader is None:
        raise UnknownWebhook(f"no webhook for {provider!r} here")
    settings = check_settings(provider, values)
    return apply_feedback(config, reader.read(settings, headers, body, clock.now()))


def check_settings(provider: str, values: Mapping[str, object]) -> object:
    """The provider's settings model, or a ConfigError naming the key (`serve.webhooks.<p>`)."""
    reader = ESP_READERS.get(provider)
    if reader is None:
        known = ", ".join(sorted(ESP_READERS))
        raise ConfigError(f"serve.webhooks.{provider}: no such provider (expected one of: {known})")
    try:
        return reader.settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"serve.webhooks.{provider}.{where}: {first['msg']}") from None
