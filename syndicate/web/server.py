"""Running the app: uvicorn on `serve.host:serve.port` (or `--host/--port`), until SIGINT/SIGTERM.

Behind a reverse proxy (which terminates https), `proxy_headers` makes uvicorn believe the
X-Forwarded-For / X-Forwarded-Proto of requests from `serve.trusted_proxies` only, so the rate
limits count the reader's address, not the proxy's."""

from __future__ import annotations

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
