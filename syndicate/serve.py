"""`syndicate preview --serve`: the gallery on 127.0.0.1, rendered again when its sources change.

Content, templates and the config file are watched (watchfiles); each change renders every draft
and the gallery again, so a reload shows the edit. A mistake in them (a template error, bad YAML)
becomes the page's content instead of stopping the server. Ctrl-C stops it.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import watchfiles

from . import clock
from .config import Config, default_templates_dir, load_config
from .errors import ConfigError, SyndicateError
from .gallery import render_preview, write_error_page
from .state import state_path
from .timeshow import show_time

DEFAULT_PORT = 8000
# How often the main thread looks up from waiting, so Ctrl-C is handled promptly.
POLL_SECONDS = 0.2


class _Handler(SimpleHTTPRequestHandler):
    """Static files, never cached (a reload must show the latest render), without a log line per request."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


def start_server(folder: Path, port: int) -> ThreadingHTTPServer:
    """Serve `folder` on 127.0.0.1:`port` (0: any free port) from a daemon thread."""
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"--port: cannot listen on 127.0.0.1:{port} ({reason})") from None
    threading.Thread(target=server.serve_forever, name="preview-server", daemon=True).start()
    return server


def serve_preview(
    config_path: Path,
    paths: Sequence[str | os.PathLike[str]] | None,
    channel: str | None,
    out_dir: Path | None,
    port: int,
    echo: Callable[[str], object] = print,
    stop: threading.Event | None = None,
) -> None:
    """Render, serve and re-render on changes until Ctrl-C (or `stop` is set).

    The config must load at start (it says what to watch); later mistakes are shown on the page.
    """
    config = load_config(config_path)
    out = out_dir or state_path(config, "preview")
    out.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    changed = threading.Event()
    server = start_server(out, port)
    try:
        # Watching starts first: an edit made while the first render runs renders again.
        for folders, recursive in _watched(config, config_path):
            threading.Thread(
                target=_watch,
                args=(folders, recursive, config_path, out, changed, stop),
                name="preview-watch",
                daemon=True,
            ).start()
        _render(config_path, paths, channel, out, echo)
        echo(f"serving {out} at http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)")
        while not stop.is_set():
            if changed.wait(POLL_SECONDS):
                changed.clear()
                _render(config_path, paths, channel, out, echo)
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def _render(
    config_path: Path,
    paths: Sequence[str | os.PathLike[str]] | None,
    channel: str | None,
    out: Path,
    echo: Callable[[str], object],
) -> None:
    try:
        config = load_config(config_path)
        rendered = render_preview(config, paths, channel, out, clock.now())
    except SyndicateError as exc:
        write_error_page(out, str(exc))
        echo(f"error: {exc}")
        return
    echo(f"rendered {len(rendered.items)} draft(s) at {show_time(clock.now(), config.site.tz, to='second')}")


def _watched(config: Config, config_path: Path) -> list[tuple[list[Path], bool]]:
    """The folders to watch: content and templates with their subfolders; the config file's own folder."""
    trees = [config.content.dir, config.templates_dir, default_templates_dir()]
    trees = [p for p in dict.fromkeys(p.resolve() for p in trees) if p.is_dir()]
    return [(trees, True), ([config_path.resolve().parent], False)]


def _watch(
    folders: list[Path],
    recursive: bool,
    config_path: Path,
    out: Path,
    changed: threading.Event,
    stop: threading.Event,
) -> None:
    config_file = str(config_path.resolve())
    output = out.resolve()
    default = watchfiles.DefaultFilter()

    def wanted(change: watchfiles.Change, path: str) -> bool:
        if not default(change, path) or Path(path).is_relative_to(output):
            return False
        return recursive or path == config_file

    for _ in watchfiles.watch(
        *folders, watch_filter=wanted, stop_event=stop, recursive=recursive, raise_interrupt=False
    ):
        changed.set()
