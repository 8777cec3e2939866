"""`syndicate preview --serve`: a real server process on 127.0.0.1 that renders again on every edit."""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from syndicate.errors import ConfigError
from syndicate.serve import start_server

from .conftest import REPO, child_env

# The promise: an edit shows on reload within this many seconds.
WITHIN = 2.0


class _Server:
    """`syndicate preview --serve --port 0` in a subprocess; its output lines read from a thread."""

    def __init__(self, site, out):
        env = child_env(PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "preview", "--serve"]
            + ["--port", "0", "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for(r"at (http://127\.0\.0\.1:\d+/)", 30).group(1)

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def _wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.process.poll() is None, "\n".join(seen)
                continue
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} in {seen}")

    def page(self) -> str:
        with urllib.request.urlopen(self.url + "index.html", timeout=5) as response:
            return response.read().decode("utf-8")

    def until(self, text: str) -> float:
        """Seconds until the served page contains `text` (fails after WITHIN seconds)."""
        start = time.monotonic()
        while time.monotonic() - start < WITHIN:
            if text in self.page():
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on the served page within {WITHIN} s")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def served(email_site, tmp_path):
    """The email test site with its own LinkedIn template, served from a subprocess."""
    social = email_site.root / "mytemplates" / "social"
    social.mkdir(parents=True)
    shutil.copy(REPO / "templates" / "social" / "linkedin.txt.j2", social)
    email_site.data["templates"] = "mytemplates"
    email_site.write_config()
    server = _Server(email_site, tmp_path / "out")
    yield email_site, social / "linkedin.txt.j2", server
    server.stop()


def test_editing_a_template_content_or_config_changes_the_served_page(served):
    site, template, server = served
    assert "linkedin:harbour-economics" in server.page()
    assert "Saved at the helm" not in server.page()

    template.write_text(template.read_text(encoding="utf-8") + "\nSaved at the helm\n", encoding="utf-8")
    assert server.until("Saved at the helm") < WITHIN

    article = site.content / "harbour-economics.md"
    retitled = re.sub(
        r"^title: .*$",
        "title: 'Retitled Breakwater'",
        article.read_text(encoding="utf-8"),
        count=1,
        flags=re.M,
    )
    article.write_text(retitled, encoding="utf-8")
    server.until("Retitled Breakwater")

    site.data["site"]["name"] = "Renamed Weekly"
    site.write_config()
    server.until("Renamed Weekly: preview")
    assert server.stop() == 0


def test_a_template_error_shows_on_the_page_and_the_server_keeps_going(served):
    site, template, server = served
    good = template.read_text(encoding="utf-8")
    template.write_text(good + "\n{{ article.nonsense.deeper }}\n", encoding="utf-8")
    server.until("The preview could not be rendered")
    page = server.page()
    assert re.search(r"linkedin\.txt\.j2:\d+: .*nonsense", page), page
    server._wait_for(r"^error: .*linkedin\.txt\.j2", 5)

    template.write_text(good, encoding="utf-8")
    server.until("linkedin:harbour-economics")
    assert server.process.poll() is None
    assert server.stop() == 0
    remaining = []
    while not server.lines.empty():
        remaining.append(server.lines.get())
    assert "Traceback" not in "\n".join(remaining)


def test_a_port_in_use_is_a_config_error(tmp_path):
    first = start_server(tmp_path, 0)
    try:
        with pytest.raises(ConfigError, match=rf"--port: cannot listen on 127\.0\.0\.1:{first.server_port} "):
            start_server(tmp_path, first.server_port)
    finally:
        first.shutdown()
        first.server_close()
