"""HTTP POSTs for the webhook-shaped targets (webhook, slack, discord, linkedin), retried alike.

A failure to connect (before the request went out), 5xx and 429 are retried with exponential
backoff and jitter (Retry-After honoured, capped); any other answer is final and left to the
target to read. An untrusted TLS
certificate is not retried. Problems name the exception type or status only, never the URL or
headers: both may hold secrets. (Plain http is refused when the config is read.)

A POST whose answer is lost is never retried: the receiver may have acted on it, and a second
POST could publish the post twice. It is `unknown`, like an SMTP message whose reply was lost
after the data, and `schedule.unknown` decides on the next run (`skip`, the default: never sent
again). requests (over urllib3, with its default of no retries after a request was sent) tells
the two cases apart like this:

- not sent, retried: `ConnectionError` or `ConnectTimeout` wrapping urllib3's `MaxRetryError`,
  which urllib3 raises only for a failed connection attempt (refused, unreachable, DNS, connect
  timeout, proxy); `SSLError` (urllib3 reports the handshake this way, and so, rarely, a TLS
  failure later on: those are taken as not sent); errors building the request (`InvalidURL`).
- may have been sent, `unknown`: `ReadTimeout` (the request was written and no answer came
  within `timeout`); `ConnectionError` wrapping urllib3's `ProtocolError` (the connection reset
  or closed after it was established: `RemoteDisconnected`, `ConnectionResetError`, a write
  that timed out part-way); `ChunkedEncodingError` and `ContentDecodingError` (the answer broke
  off). A reset while the body was still being written also lands here, as does a pooled
  keep-alive connection the receiver closed just as it was reused: counted as maybe sent, so
  never a duplicate, at the price of an `unknown` where a retry would have been safe.

A wait before a retry ends when the run is asked to stop (Ctrl-C): the message is then `retry`,
never sent by that attempt, so safe to send on the next run. A second Ctrl-C cuts a POST in
progress short. Its connections (urllib3's, through a requests adapter) note when the first
byte of the request is about to be written: cut before (connecting to a host that does not
answer, the TLS handshake), it is `retry`; cut after, the receiver may have it: `unknown`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3
from pydantic import Field, ValidationInfo, field_validator
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError

from .. import __version__, clock
from ..errors import DeliveryError
from ..retry import Backoff
from ..stopping import StoppedAtOnce, cuttable
from ..validation import check_http_url, is_internal, is_loopback
from . import MessageKey, Pacing, Result, TargetSettings, handed

MAX_WAIT = 300.0  # the longest a receiver's Retry-After may hold a message
# A second after the first failure, doubling up to a minute, jittered down to half so the
# connections of a batch refused together spread out; a Retry-After wins, up to MAX_WAIT.
BACKOFF = Backoff(first=1.0, cap=60.0, jitter=(0.5, 1.0), asked_cap=MAX_WAIT)
# Failures after which the receiver may hold the request (see the module docstring).
_MAYBE_SENT = (
    requests.exceptions.ReadTimeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class HttpSettings(TargetSettings):
    """What every target that POSTs to a URL is configured with (webhook, slack, discord,
    linkedin, and third-party HTTP targets): where, and how long and how often to try."""

    # Before url: its validator reads it. Plain http is allowed for loopback hosts, or with this.
    local: bool = False
    url: str
    timeout: float = Field(default=10.0, gt=0, le=3600)
    retries: int = Field(default=5, ge=0, le=100)
    verify_tls: bool = True
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        """Plain http would carry tokens and signed bodies in the clear, unless it never leaves the host."""
        parts = urlsplit(check_http_url(value))
        if parts.scheme != "https" and not info.data.get("local") and not is_loopback(parts.hostname):
            raise ValueError(
                "is not https (expected https://..., or local: true for a plain-http receiver "
                "on a trusted network; 127.0.0.1, ::1 and localhost need neither)"
            )
        if not info.data.get("local") and is_internal(parts.hostname):
            raise ValueError(
                "points at a private, link-local or cloud-metadata address (expected a public "
                "receiver, or local: true for one on your own network)"
            )
        return value


class HttpDelivery:
    """What every webhook-shaped target shares: its settings, one try per message as the
    dispatch loop sees it (the retries happen inside `HttpConnection.post`), a checked `ca_file`.

    `sleep`, when given, replaces the wait between attempts (tests record the waits with it);
    otherwise the connection waits on the run's stop event."""

    def __init__(
        self, name: str, settings: HttpSettings, sleep: Callable[[float], None] | None = None
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

    def __init__(
        self, delivery: HttpDelivery, session: requests.Session, stop: threading.Event | None = None
    ) -> None:
        self.delivery = delivery
        self.session = session
        self.stop = stop or threading.Event()

    def post(
        self,
        key: MessageKey,
        body: bytes,
        headers: Callable[[], dict[str, str]],
        url: str | None = None,
    ) -> requests.Response | Result:
        """The receiver's final answer, or the message's `Result` when none came: `retry` after
        all the retries or when the run stopped before the next, `unknown` when the request went
        out and its answer was lost (or a second Ctrl-C cut the wait for it short).

        `headers` is called before each attempt, so per-attempt values (a signature timestamp)
        stay fresh. `url` is another endpoint of the same service (an upload before the post).
        """
        settings = self.delivery.settings
        problem, delay = "", 0.0
        for attempt in range(settings.retries + 1):
            if attempt and not self._wait(delay):
                return Result(key, "retry", f"{problem} after {attempt} attempts (stopped before the next)")
            delay = BACKOFF.delay(attempt + 1)
            fresh = headers()
            _attempt.phase = "not sent"
            try:
                with cuttable(self.stop):
                    response = self.session.post(
                        url or settings.url,
                        data=body,
                        headers=fresh,
                        timeout=settings.timeout,
                        verify=_verify(settings),
                        allow_redirects=False,
                    )
            except StoppedAtOnce as exc:
                if _attempt.phase == "not sent":
                    return Result(key, "retry", f"not sent: {exc}")
                return Result(
                    key, "unknown", "stopped at once while it was going out: the receiver may have it"
                )
            except requests.exceptions.SSLError:
                # Not retried: a certificate that is not trusted now will not be in a few seconds.
                return Result(
                    key,
                    "retry",
                    "TLS certificate not trusted (expected one the system trusts, or ca_file "
                    "naming its CA; verify_tls: false only for a test server)",
                )
            except requests.RequestException as exc:
                if _maybe_sent(exc):
                    how = _lost(exc, settings)
                    return Result(
                        key,
                        "unknown",
                        f"no answer after the request was sent ({how}): the receiver may have it",
                    )
                problem = f"cannot reach the receiver ({type(exc).__name__})"
                continue
            status = response.status_code
            if status != 429 and status < 500:
                return response
            problem = f"HTTP {status} {response.reason or ''}".strip()
            asked = _retry_after(response.headers.get("Retry-After"))
            if asked is not None:
                delay = BACKOFF.delay(attempt + 1, retry_after=asked)
        return Result(key, "retry", f"{problem} after {settings.retries + 1} attempts")

    def _wait(self, seconds: float) -> bool:
        """Wait before the next attempt; False when the run is stopping, so there is none."""
        if self.delivery.sleep is not None:
            self.delivery.sleep(seconds)
        else:
            self.stop.wait(seconds)
        return not self.stop.is_set()


def reset_as_retry_after(header: str) -> Callable[..., requests.Response]:
    """A response hook for a service whose 429 says when its limit resets in `header` (Unix
    seconds, or an ISO 8601 time with its offset) and often no Retry-After: the wait until then,
    on syndicate's clock, becomes the Retry-After that `post` honours (capped there)."""

    def hook(response: requests.Response, *args: object, **kwargs: object) -> requests.Response:
        if response.status_code != 429 or response.headers.get("Retry-After"):
            return response
        reset = response.headers.get(header, "").strip()
        if reset.isdigit():
            seconds = int(reset) - clock.now().timestamp()
        else:
            try:
                when = datetime.fromisoformat(reset)
            except ValueError:
                return response
            if when.tzinfo is None:
                return response
            seconds = (when - clock.now()).total_seconds()
        response.headers["Retry-After"] = str(max(0, math.ceil(seconds)))
        return response

    return hook


def _verify(settings: HttpSettings) -> bool | str:
    """requests' `verify`: the system CAs, the target's own CA file, or (opted out) nothing."""
    if settings.verify_tls and settings.ca_file is not None:
        return str(settings.ca_file)
    return settings.verify_tls


@contextmanager
def http_session() -> Iterator[requests.Session]:
    """One keep-alive session per batch, over connections that say when a request goes out."""
    with requests.Session() as session:
        session.headers["User-Agent"] = f"syndicate/{__version__}"
        for prefix in ("http://", "https://"):
            session.mount(prefix, _WatchedAdapter())
        yield session


# How far the POST this thread is making has got, for a second Ctrl-C to judge: "not sent"
# until the first byte of the request is about to be written, "sent" from then on, "unsure"
# where the connection is not one of ours (a SOCKS proxy's).
_attempt = threading.local()


class _Watched:
    """A urllib3 connection that notes when it starts writing the request: every write goes
    through http.client's `send()`, which connects first when it has to."""

    sock: object
    connect: Callable[[], None]

    def send(self, data: bytes) -> None:
        if self.sock is None:
            self.connect()  # nothing of the request has gone out while connecting
        _attempt.phase = "sent"
        super().send(data)  # type: ignore[misc]

    def getresponse(self):
        handed()  # the request is all written: from here the receiver may act on it
        return super().getresponse()


class _WatchedHttpConnection(_Watched, urllib3.connection.HTTPConnection):  # type: ignore[misc]
    pass


class _WatchedHttpsConnection(_Watched, urllib3.connection.HTTPSConnection):  # type: ignore[misc]
    pass


class _WatchedHttpPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHttpConnection


class _WatchedHttpsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHttpsConnection


_WATCHED_POOLS = {"http": _WatchedHttpPool, "https": _WatchedHttpsPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' own adapter (same pooling, no retries), over `_Watched` connections."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager keeps its own connections
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager

    def send(self, request, **kwargs):
        proxy = select_proxy(request.url, kwargs.get("proxies"))
        if proxy and not proxy.lower().startswith(("http:", "https:")):
            _attempt.phase = "unsure"
        return super().send(request, **kwargs)


def _maybe_sent(exc: requests.RequestException) -> bool:
    """Whether the receiver may have the request despite `exc` (the rule in the module docstring)."""
    cause = exc.args[0] if exc.args else None
    return isinstance(exc, _MAYBE_SENT) or isinstance(cause, ProtocolError)


def _lost(exc: requests.RequestException, settings: HttpSettings) -> str:
    """How the answer was lost, by exception type only (their messages hold the URL)."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"ReadTimeout: none within {settings.timeout:g} s"
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, ProtocolError) and len(cause.args) > 1 and isinstance(cause.args[1], BaseException):
        return type(cause.args[1]).__name__  # RemoteDisconnected, ConnectionResetError, ...
    return type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (seconds or an HTTP date); `BACKOFF` caps them."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - clock.now().timestamp()
