"""ESP webhooks: one module per provider, each with a settings model and `verify_and_read`.

`ESP_READERS` maps a provider's name (as a config would spell it) to its pair, so the web
endpoint that receives webhooks needs no per-provider code: it validates the provider's settings
with `settings(**values)` and calls `read(settings, headers, raw_body, clock.now())`, answering
403 on ForgedWebhook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel

from .. import Feedback
from . import mailgun, postmark, sendgrid, ses

__all__ = ["ESP_READERS", "EspReader"]


class EspReader(NamedTuple):
    settings: type[BaseModel]
    read: Callable[[Any, Mapping[str, str], bytes, datetime], list[Feedback]]


ESP_READERS: dict[str, EspReader] = {
    "ses": EspReader(ses.SesSettings, ses.verify_and_read),
    "postmark": EspReader(postmark.PostmarkSettings, postmark.verify_and_read),
    "mailgun": EspReader(mailgun.MailgunSettings, mailgun.verify_and_read),
    "sendgrid": EspReader(sendgrid.SendgridSettings, sendgrid.verify_and_read),
}
