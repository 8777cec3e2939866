"""HTTP POSTs for the webhook-shaped targets (webhook, slack, discord, linkedin), retried alike.

Connection errors, 5xx and 429 are retried with exponential backoff and jitter (Retry-After
honoured, capped); any other answer is final and left to the target to read. An untrusted TLS
certificate is not retried. Problems name the exception type or status only, never the URL or
headers: both may hold secrets. (Plain http is refused when the config is read.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime

import requests

from .. import __version__, clock
from ..config import WebhookTarget
from ..errors import DeliveryError
from . import Pacing

MAX_WAIT = 300.0


class HttpDelivery:
    """What every webhook-shaped target shares: its settings, one try per message as the
    dispatch loop sees it (the retries happen inside `post_with_retries`), a checked `ca_file`."""

    def __init__(
        self, name: str, settings: WebhookTarget, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.name = name
        self.settings = settings
        self.sleep = sleep
        self.pacing = Pacing(max_attempts=1)
        if settings.verify_tls and settings.ca_file is not None and not settings.ca_file.is_file():
            # A mistake to name at once, not an error on every POST.
            raise DeliveryError(
                f"targets.{name}.ca_file: {settings.ca_file} is not a file (expected a PEM CA certificate)"
            )


class HttpConnection:
    """One `requests` session of a target, for a whole batch."""

    def __init__(self, delivery: HttpDelivery, session: requests.Session) -> None:
        self.delivery = delivery
        self.session = session


def _verify(settings: WebhookTarget) -> bool | str:
    """requests' `verify`: the system CAs, the target's own CA file, or (opted out) nothing."""
    if settings.verify_tls and settings.ca_file is not None:
        return str(settings.ca_file)
    return settings.verify_tls


@contextmanager
def http_session() -> Iterator[requests.Session]:
    """One keep-alive session per batch."""
    with requests.Session() as session:
        session.headers["User-Agent"] = f"syndicate/{__version__}"
        yield session


def post_with_retries(
    session: requests.Session,
    settings: WebhookTarget,
    body: bytes,
    headers: Callable[[], dict[str, str]],
    sleep: Callable[[float], None],
) -> requests.Response | str:
    """The receiver's final answer, or (as a string) why none came after all the retries.

    `headers` is called before each attempt, so per-attempt values (a signature timestamp) stay fresh.
    """
    problem, wait = "", 0.0
    for attempt in range(settings.retries + 1):
        if attempt:
            sleep(wait)
        wait = _backoff(attempt)
        try:
            response = session.post(
                settings.url,
                data=body,
                headers=headers(),
                timeout=settings.timeout,
                verify=_verify(settings),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError:
            # Not retried: a certificate that is not trusted now will not be in a few seconds.
            return (
                "TLS certificate not trusted (expected one the system trusts, or ca_file "
                "naming its CA; verify_tls: false only for a test server)"
            )
        except requests.RequestException as exc:
            problem = f"cannot reach the receiver ({type(exc).__name__})"
            continue
        status = response.status_code
        if status != 429 and status < 500:
            return response
        problem = f"HTTP {status} {response.reason or ''}".strip()
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            wait = retry_after
    return f"{problem} after {settings.retries + 1} attempts"


def _backoff(attempt: int) -> float:
    return min(2.0**attempt, 60.0) * random.uniform(0.5, 1.0)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - clock.now().timestamp(), 0.0), MAX_WAIT)
