"""Shared fixtures: a site config in a temporary folder and a way to write articles into it."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import Any, TypeVar

import lxml.html
import pytest
import trustme
import yaml
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, make_url, text

from syndicate import clock
from syndicate.config import Config, config_from_dict
from syndicate.ledger import sqlite_url

from .helpers.pgserver import postgres_bin, throwaway_postgres

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# An article with markup, MJML and Jinja syntax in every field it has.
EVERY_FIELD = DATA / "email" / "hostile" / "every-field.md"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a `syndicate` process a test starts: this checkout on the path, and
    the clock seam at the instant the test has reached, so parent and child agree on "now"."""
    return clock.child_env({**os.environ, "PYTHONPATH": str(REPO), **extra})


@pytest.fixture(autouse=True)
def _children_start_at_the_seam(monkeypatch) -> None:
    """A process started by a test with the plain environment still starts at this process's
    instant (not at the one the suite was started with)."""
    if os.environ.get(clock.NOW_ENV):
        monkeypatch.setenv(clock.NOW_ENV, clock.now().isoformat())


@pytest.fixture
def clock_at(monkeypatch):
    """`clock_at(moment)` moves this process's clock (the `SYNDICATE_NOW` seam) to `moment`, and
    runs on from there; afterwards the clock carries on from where it was, as if never moved."""
    seam_was = os.environ.get(clock.NOW_ENV)
    before, started = clock.now(), time.monotonic()

    def move(moment) -> None:
        monkeypatch.setenv(clock.NOW_ENV, moment.isoformat())
        clock.reset()

    yield move
    if seam_was:
        os.environ[clock.NOW_ENV] = (before + timedelta(seconds=time.monotonic() - started)).isoformat()
    else:
        os.environ.pop(clock.NOW_ENV, None)
    clock.reset()


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


def assert_inert(html: str) -> lxml.html.HtmlElement:
    """Markup from article fields arrived as text: no script, no handler, no element it named."""
    page = lxml.html.fromstring(html)
    assert page.xpath("//script | //svg | //*[starts-with(local-name(), 'mj-')]") == []
    assert page.xpath("//@*[starts-with(name(), 'on')]") == []
    assert all(src.startswith("https://") for src in page.xpath("//img/@src"))
    assert "<mj-" not in html
    return page


def loopback_smtp(port: int, recipients: list[str] | str | Path, **options) -> dict:
    """An smtp target's config for a sink on 127.0.0.1 (plain, no login unless `options` say)."""
    recipients = str(recipients) if isinstance(recipients, Path) else recipients
    return {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "recipients": recipients,
        **options,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """An aiosmtpd handler that keeps every accepted message and can be told to misbehave.

    `rcpt_reply(address, attempt)` may return a reply (e.g. "450 ...") instead of accepting,
    `data_reply(address, attempt)` the same for the end of the data (one recipient per message),
    `stall(command, address, attempt)` seconds to say nothing before answering RCPT, or the end
    of the data (the message already kept);
    `close_after` drops each connection after that many accepted messages, as relays do.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, bytes]] = []
        self.envelope_senders: dict[str, str] = {}  # recipient -> MAIL FROM of its latest message
        self.arrivals: list[tuple[float, bytes]] = []  # (clock instant, message) as each lands
        self.attempts: Counter[str] = Counter()
        self.rsets = 0
        self.connections = 0
        self.rcpt_reply = None
        self.data_reply = None
        self.stall = None
        self.close_after: int | None = None
        self.ehlo_names: list[str] = []  # the name each connection's EHLO gave, in order

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.ehlo_names.append(hostname)
        session.accepted = getattr(session, "accepted", 0)
        with self.lock:
            self.connections += 1
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.attempts[address] += 1
            attempt = self.attempts[address]
        if self.stall:
            await asyncio.sleep(self.stall("RCPT", address, attempt))
        reply = self.rcpt_reply(address, attempt) if self.rcpt_reply else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        with self.lock:
            self.rsets += 1
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        address = envelope.rcpt_tos[0]
        if self.data_reply:
            reply = self.data_reply(address, self.attempts[address])
            if reply:
                return reply
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, envelope.original_content))
                self.envelope_senders[rcpt] = envelope.mail_from
            self.arrivals.append((clock.now().timestamp(), envelope.original_content))
        session.accepted = getattr(session, "accepted", 0) + 1
        if self.close_after and session.accepted % self.close_after == 0:
            asyncio.get_running_loop().call_soon(server.transport.close)
        if self.stall:  # kept, but the reply is late: the worst case for a client that gives up
            await asyncio.sleep(self.stall("DATA", address, self.attempts[address]))
        return "250 Message accepted for delivery"

    def copies(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.received)


@contextmanager
def running_sink(handler: SmtpSink, port: int | None = None, **smtp_options) -> Iterator[Controller]:
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **smtp_options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    """A plain loopback SMTP server: (handler, port)."""
    sink = SmtpSink()
    with running_sink(sink) as controller:
        yield sink, controller.port


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, Path]:
    """A private CA no trust store knows, a server context for 127.0.0.1 and the CA's PEM file."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, ca_file


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose server takes the connection and never says a word: a stalled relay."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


SMALL_DISK = 128 * 1024


class SmallDisk:
    """A folder where writes stop at SMALL_DISK bytes, for `syndicate` processes started by `run()`.

    A tmpfs of that size where the tests may mount one (root): ENOSPC once it is full. Elsewhere
    RLIMIT_FSIZE on the process: EFBIG for any file growing past the size. `grow()` makes room,
    as a user would before running again.
    """

    def __init__(self, folder: Path, mounted: bool) -> None:
        self.folder = folder
        self.mounted = mounted
        self.capped = True
        self.size = SMALL_DISK

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        limit = self.size if self.capped and not self.mounted else None
        return subprocess.run(
            [sys.executable, "-m", "syndicate", *args],
            env=child_env(PYTHONDONTWRITEBYTECODE="1"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))) if limit else None,
        )

    def resize(self, size: int) -> None:
        """Writes stop at `size` bytes instead (a ledger needs room for its tables first)."""
        self.size = size
        if self.mounted:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(self.folder)], check=True)

    def grow(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.folder)], check=True)
        self.capped = False


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(folder)]
    mounted = os.geteuid() == 0 and subprocess.run(mount, capture_output=True, check=False).returncode == 0
    try:
        yield SmallDisk(folder, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)


HANG_UP = None  # a scripted reply: read the request, then close the connection without a word


class Receiver(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records each POST and answers from a script, then 200.

    A scripted reply is (status, headers) or (status, headers, body bytes), or HANG_UP. With
    `tls`, it is https; `port` 0 is any free one. `delay` seconds pass between recording a
    request and answering it (a receiver slower than the client's timeout keeps the request
    and the client never hears back); `answered` counts the answers written.
    """

    def __init__(self, tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _ReceiverHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.arrivals: list[tuple[float, bytes]] = []  # (clock instant, body) as each lands
        self.methods: list[str] = []
        self.replies: deque[tuple | None] = deque()
        self.delay = 0.0
        self.answered = 0
        self.released = threading.Event()  # set when the server stops: delayed answers go at once

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}/hooks/abc"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.methods.append(self.command)
        self.server.requests.append((self.path, dict(self.headers), body))
        self.server.arrivals.append((clock.now().timestamp(), body))
        reply = self.server.replies.popleft() if self.server.replies else (200, {})
        if reply is HANG_UP:
            self.close_connection = True
            return
        if self.server.delay:
            self.server.released.wait(self.server.delay)
        status, headers, *rest = reply
        answer = rest[0] if rest else b""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            self.wfile.flush()
        except OSError:  # the client gave up waiting and hung up
            self.close_connection = True
            return
        self.server.answered += 1

    def log_message(self, *args) -> None:
        pass


ServerT = TypeVar("ServerT", bound=BaseServer)


@contextmanager
def serving(server: ServerT) -> Iterator[ServerT]:
    """`server` (a socketserver) answering in a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        if isinstance(server, Receiver):
            server.released.set()  # a reply held back lets go, so shutdown() does not wait for it
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver()) as server:
        yield server


@pytest.fixture
def tls_receiver(tls) -> Iterator[Receiver]:
    """The receiver over https, its certificate from the private CA of `tls`."""
    with serving(Receiver(tls[0])) as server:
        yield server


# Headless Chromium as the browser tests run it: Debian's package, no network but loopback
# (remote images fail at once instead of waiting), a fresh profile per call.
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_BINARY = Path("/usr/bin/chromium")
needs_chromedriver = pytest.mark.skipif(
    not (CHROMEDRIVER.exists() and CHROMIUM_BINARY.exists()),
    reason="chromium and its driver are not installed (apt-get install chromium chromium-driver)",
)


@contextmanager
def chromium_driver(profile: Path, width: int, height: int) -> Iterator[Any]:
    """Debian's headless chromium driven by selenium through Debian's chromedriver (never one
    Selenium Manager would download), a window of `width` x `height`, quit when the block ends."""
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM_BINARY)
    for flag in CHROMIUM_FLAGS:
        options.add_argument("--headless=new" if flag == "--headless" else flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)


def chromium(profile: Path, *args: str) -> str:
    """Run chromium with the flags above and `args`; its stdout (e.g. --dump-dom)."""
    command = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package, which `.ci/run`
    installs); skipped where it is not installed. As root it runs as the `postgres` user."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with throwaway_postgres(bin_dir, "fsync=off") as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> Iterator[str]:
    """A new, empty ledger database: a SQLite file, or a database of its own on the
    `postgres_url` server (skipped where PostgreSQL is not installed)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "ledger.sqlite")
        return
    with own_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database of its own on the `postgres_url` server: one test's ledger, store,
    job store and queue."""
    with own_database(postgres_url) as url:
        yield url


@contextmanager
def own_database(server: str) -> Iterator[str]:
    """A database made on `server` for the block, dropped after it (its connections ended)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
