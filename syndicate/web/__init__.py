"""`syndicate serve`: the readers' web service (subscribe with double opt-in, RFC 8058
one-click unsubscribe, the web archive). `make_app(config)` is the ASGI app; `server.run`
serves it with uvicorn."""

from __future__ import annotations

from .app import make_app

__all__ = ["make_app"]
