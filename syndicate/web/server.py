"""Running the app: uvicorn on `serve.host:serve.port` (or `--host/--port`), until SIGINT/SIGTERM.

Behind a reverse proxy (which terminates https), `proxy_headers` makes uvicorn believe the
X-Forwarded-For / X-Forwarded-Proto of requests from `serve.trusted_proxies` only, so the rate
limits count the reader's address, not the proxy's."""

from __future__ import annotations

import contextlib
import threading
import time

import uvicorn

from ..config import Config
from ..errors import ConfigError
from .app import make_app


def server_config(config: Config, host: str | None, port: int | None, proxy_headers: bool) -> uvicorn.Config:
    if config.serve is None:
        raise ConfigError("serve: is missing (expected a serve: section with public_url)")
    serve = config.serve
    return uvicorn.Config(
        make_app(config),
        host=host or serve.host,
        port=serve.port if port is None else port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=list(serve.trusted_proxies) if proxy_headers else [],
        server_header=False,
        log_level="info",
        lifespan="on",
    )


def run(
    config: Config, host: str | None = None, port: int | None = None, proxy_headers: bool = False
) -> None:
    """Serve until stopped; a port that cannot be listened on is a ConfigError."""
    server = uvicorn.Server(server_config(config, host, port, proxy_headers))
    try:
        server.run()
    except SystemExit:  # uvicorn exits 1 when it cannot bind, after logging why
        if server.started:
            raise
    if not server.started:
        where = f"{server.config.host}:{server.config.port}"
        raise ConfigError(f"serve: cannot listen on {where} (in use, or not an address of this machine)")


# How long a server in a thread may take to start, and to finish its requests when stopped.
START_SECONDS = 30.0
STOP_SECONDS = 30.0


class ServerThread:
    """The app served from a thread of this process (`syndicate daemon --serve`, the tests):
    `start()` returns once it listens (ConfigError if it cannot), `stop()` once it has stopped.
    The thread installs no signal handler: the process's owner stops it."""

    def __init__(self, settings: uvicorn.Config) -> None:
        self.server = uvicorn.Server(settings)
        self.thread = threading.Thread(target=self._run, name="syndicate-serve", daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind, after logging why
            self.server.run()

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                where = f"{self.server.config.host}:{self.server.config.port}"
                raise ConfigError(
                    f"serve: cannot listen on {where} (in use, or not an address of this machine)"
                )
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(STOP_SECONDS)
