"""What the `syndicate serve` tests share: the app in a real uvicorn server on a free loopback
port (a thread of this process, so the clock seam moves it too), a site whose confirmation
target is a real aiosmtpd server, and reading the confirmation link out of what it received."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from syndicate.config import Config
from syndicate.web.server import ServerThread, server_config

from .conftest import SmtpSink, free_port, loopback_smtp

SECRET = "test-unsubscribe-secret-0123456789"
LINK = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class Served:
    url: str  # the public_url: http://127.0.0.1:PORT/
    config: Config
    sink: SmtpSink


def serve_config(site, smtp_port: int, public_port: int, **serve: object) -> Config:
    """`site`'s config with a serve: section for 127.0.0.1:`public_port` and a confirm target mailing
    through the SMTP server on `smtp_port`."""
    site.data["site"]["unsubscribe_secret"] = SECRET
    site.data["targets"]["confirm-mail"] = loopback_smtp(smtp_port, [])
    site.data["serve"] = {
        "public_url": f"http://127.0.0.1:{public_port}/",
        "lists": ["weekly", "monthly"],
        "confirm_target": "confirm-mail",
        "rate_per_hour": 50,
        **serve,
    }
    site.write_config()
    return site.config()


@contextmanager
def running(config: Config, port: int, proxy_headers: bool = False) -> Iterator[str]:
    """`make_app(config)` served by uvicorn (as `syndicate serve` configures it) on 127.0.0.1:`port` until the block ends."""
    settings = server_config(config, "127.0.0.1", port, proxy_headers)  # as `syndicate serve` runs it
    settings.log_level = "warning"
    server = ServerThread(settings).start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.stop()


@contextmanager
def served(
    site, smtp: tuple[SmtpSink, int], proxy_headers: bool = False, **serve: object
) -> Iterator[Served]:
    sink, smtp_port = smtp
    port = free_port()
    config = serve_config(site, smtp_port, port, **serve)
    with running(config, port, proxy_headers) as url:
        yield Served(url, config, sink)


def wait_for_mail(sink: SmtpSink, count: int = 1, timeout: float = 20) -> list[tuple[str, EmailMessage]]:
    """The first `count` messages the sink accepted (waiting for them: they go out after the
    answer), parsed."""
    deadline = time.monotonic() + timeout
    while True:
        with sink.lock:
            received = list(sink.received)
        if len(received) >= count:
            return [(rcpt, _parse(data)) for rcpt, data in received[:count]]
        assert time.monotonic() < deadline, f"expected {count} message(s), got {len(received)}"
        time.sleep(0.05)


def _parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def links_in(message: EmailMessage) -> list[str]:
    return LINK.findall(text_of(message))


def confirm_link(message: EmailMessage) -> str:
    found = [link for link in links_in(message) if "/confirm/" in link]
    assert len(found) == 1, links_in(message)
    return found[0]
