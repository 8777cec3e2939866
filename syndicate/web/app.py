"""The readers' web service as an ASGI app (Starlette): `make_app(config)`.

Routes (all under `serve.public_url`, which the reverse proxy maps to this app):
- `GET /subscribe`, `POST /subscribe` (form or JSON): double opt-in. The answer is the same
  whatever the store knew of the address (no account enumeration); a filled honeypot gets that
  answer too and nothing is done; requests are rate-limited per client IP and per address.
- `GET /confirm/{token}`: the link of the confirmation email: a page with one button, which
  `POST`s to the same URL and subscribes the reader. A GET changes nothing: a mail scanner
  fetching the link of a confirmation someone else requested must not subscribe its owner.
- `POST /unsubscribe/{token}`: RFC 8058 one-click (`List-Unsubscribe=One-Click`) and the
  button of the page below; 200, no redirect, no cookie, idempotent.
- `GET /unsubscribe/{token}`: a page with one button. A GET never changes anything: mail
  scanners fetch links to look at them.
- `GET /archive/{channel}/{draft_key}`: an email as it went out, without reader data.
- `POST /webhooks/{provider}`: an ESP's bounce and complaint events (`serve.webhooks`).
- `GET /healthz`, `GET /style.css`.

Pages are the templates `web/*.html`, found like the email templates (the site's templates
folder first), autoescaped. Every answer carries strict security headers: no referrer (links
carry tokens), no framing, a CSP that allows no script.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import clock
from ..config import Config
from ..deliver import MailTargetSettings
from ..errors import ConfigError, SyndicateError
from ..feedback import ForgedWebhook
from ..recipients import check_address
from ..subscribers import Subscriber, SubscriberStore
from ..templating import get_template, render_template, search_path, site_view
from ..tokens import BadToken, read_token, signing_key
from ..webhooks import UnknownWebhook, receive_webhook
from .archive import archived_html
from .limits import RateLimit
from .mail import send_confirmation

__all__ = ["make_app"]

log = logging.getLogger("syndicate.web")

# A subscribe request is a few short fields: anything larger is refused unread.
MAX_BODY = 16 * 1024
# An ESP may batch events into one call (SendGrid does): room for a few thousand.
MAX_WEBHOOK_BODY = 4 * 1024 * 1024
NAME_CHARS = 100
HONEYPOT = "website"  # the hidden field only bots fill in
ONE_CLICK = ("List-Unsubscribe", "One-Click")
STYLE = "web/style.css"
SENT_MESSAGE = "Check your inbox: if the address can be subscribed, a confirmation link is on its way."

T = TypeVar("T")


class Web:
    """The app's state: the config, the subscriber store (opened on first use; thread-safe, each
    call takes its own connection) and the rate limits."""

    def __init__(self, config: Config, store: SubscriberStore | None = None) -> None:
        if config.serve is None:
            raise ConfigError("serve: is missing (expected a serve: section with public_url)")
        self.config = config
        self.serve = config.serve
        self.key = signing_key(config)
        self.by_ip = RateLimit(self.serve.rate_per_hour)
        self.by_address = RateLimit(self.serve.rate_per_hour)
        self._store = store
        self._owns_store = store is None
        self._lock = threading.Lock()
        self.subscribing = bool(self.serve.lists and self.serve.confirm_target)
        target = self.serve.confirm_target
        if target is not None:
            settings = config.targets.get(target)
            if settings is None:
                known = ", ".join(sorted(config.targets)) or "none defined"
                raise ConfigError(
                    f"serve.confirm_target: {target!r} is not a target (expected one of: {known})"
                )
            if not isinstance(settings, MailTargetSettings):
                raise ConfigError(
                    f"serve.confirm_target: {target!r} is {settings.what} (expected an smtp or outbox target)"
                )

    # -- the store, off the event loop -------------------------------------------------------

    def _call(self, action: Callable[[SubscriberStore], T]) -> T:
        with self._lock:
            if self._store is None:
                self._store = SubscriberStore.from_config(self.config)
            store = self._store
        return action(store)

    async def store(self, action: Callable[[SubscriberStore], T]) -> T:
        return await run_in_threadpool(self._call, action)

    def close(self) -> None:
        with self._lock:
            if self._store is not None and self._owns_store:
                self._store.close()
                self._store = None

    # -- pages ------------------------------------------------------------------------------

    def page(
        self,
        template_name: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        template = get_template(self.config, f"web/{template_name}", "html")
        body = render_template(
            template,
            {"site": site_view(self.config.site), "base": self.serve.public_url, **context},
            during=f"rendering the {template_name} page",
        )
        return HTMLResponse(body, status_code=status, headers=dict(headers or {}))

    def error(
        self, status: int, title: str, message: str, headers: Mapping[str, str] | None = None
    ) -> HTMLResponse:
        return self.page("error.html", status, headers, title=title, message=message)

    def not_found(self) -> HTMLResponse:
        return self.error(404, "Not found", "There is no page at this address.")

    # -- subscribe --------------------------------------------------------------------------

    async def subscribe_form(self, request: Request) -> Response:
        if not self.subscribing:
            return self.not_found()
        return self.page(
            "subscribe.html", lists=self.serve.lists, chosen=self.serve.lists[0], email="", name=""
        )

    async def subscribe(self, request: Request) -> Response:
        if not self.subscribing:
            return self.not_found()
        wants_json = _is_json(request)
        fields = await _read_fields(request, wants_json)
        if fields is None:
            return self._refuse(
                wants_json, 400, "The request could not be read (expected a form or a JSON object)."
            )
        now = clock.now()
        client = request.client.host if request.client else "unknown"
        if not self.by_ip.allow(client, now):
            return self._too_many(wants_json, self.by_ip.retry_after(client, now))
        if fields.get(HONEYPOT, "").strip():
            return self._sent(wants_json)  # a bot: the same answer, nothing done
        list_name = fields.get("list") or self.serve.lists[0]
        if list_name not in self.serve.lists:
            return self._refuse(wants_json, 400, "There is no such list here.", fields)
        if not fields.get("email", "").strip():
            return self._refuse(wants_json, 400, "Please enter your email address.", fields)
        try:
            email = check_address(fields["email"])
        except ValueError:
            message = "This is not a valid email address (expected one like name@example.com)."
            return self._refuse(wants_json, 400, message, fields)
        name = _clean_name(fields.get("name", ""))
        if not self.by_address.allow(email.lower(), now):
            return self._too_many(wants_json, self.by_address.retry_after(email.lower(), now))
        subscriber: Subscriber = await self.store(
            lambda s: s.request(list_name, email, name=name, source="web")
        )
        task = None
        if subscriber.status == "unconfirmed":
            task = BackgroundTask(
                send_confirmation, self.config, subscriber.id, subscriber.email, subscriber.name, list_name
            )
        response = self._sent(wants_json)
        response.background = task
        return response

    def _sent(self, wants_json: bool) -> Response:
        if wants_json:
            return JSONResponse({"status": "ok", "message": SENT_MESSAGE})
        return self.page("subscribe-sent.html", message=SENT_MESSAGE)

    def _refuse(
        self, wants_json: bool, status: int, message: str, fields: Mapping[str, str] | None = None
    ) -> Response:
        if wants_json:
            return JSONResponse({"status": "error", "message": message}, status_code=status)
        fields = fields or {}
        lists = self.serve.lists
        chosen = fields.get("list") if fields.get("list") in lists else lists[0]
        return self.page(
            "subscribe.html",
            status,
            lists=lists,
            chosen=chosen,
            email=fields.get("email", "")[:300],
            name=fields.get("name", "")[:NAME_CHARS],
            problem=message,
        )

    def _too_many(self, wants_json: bool, retry_after: int) -> Response:
        headers = {"Retry-After": str(retry_after)}
        message = "Too many requests: please try again later."
        if wants_json:
            return JSONResponse({"status": "error", "message": message}, status_code=429, headers=headers)
        return self.error(429, "Too many requests", message, headers)

    # -- confirm ----------------------------------------------------------------------------

    def _confirm_id(self, request: Request) -> str | Response:
        try:
            return read_token("confirm", request.path_params["token"], self.key, clock.now())
        except BadToken as exc:
            return self.error(
                400, "This link does not work", _sentence(str(exc)) + _ask_again(self.subscribing)
            )

    async def confirm_page(self, request: Request) -> Response:
        """One button, nothing done (a GET is what a link scanner makes); a link already used
        says so at once."""
        subscriber_id = self._confirm_id(request)
        if isinstance(subscriber_id, Response):
            return subscriber_id
        subscriber = await self.store(lambda s: s.get(subscriber_id))
        if subscriber is not None and subscriber.status == "subscribed":
            return self.page("confirm.html", list=subscriber.list)
        if subscriber is None or subscriber.status != "unconfirmed":
            return self.error(
                400, "This link does not work", "This link is no longer valid." + _ask_again(self.subscribing)
            )
        action = f"{self.serve.public_url}confirm/{request.path_params['token']}"
        return self.page("confirm-ask.html", action=action, list=subscriber.list)

    async def confirm(self, request: Request) -> Response:
        subscriber_id = self._confirm_id(request)
        if isinstance(subscriber_id, Response):
            return subscriber_id
        subscriber = await self.store(lambda s: s.confirm(subscriber_id))
        if subscriber is None or subscriber.status != "subscribed":
            return self.error(
                400, "This link does not work", "This link is no longer valid." + _ask_again(self.subscribing)
            )
        log.info("subscriber %s confirmed", subscriber_id)
        return self.page("confirm.html", list=subscriber.list)

    # -- unsubscribe ------------------------------------------------------------------------

    def _unsubscribe_id(self, request: Request) -> str | None:
        try:
            return read_token("unsubscribe", request.path_params["token"], self.key, clock.now())
        except BadToken:
            return None

    async def unsubscribe_page(self, request: Request) -> Response:
        """One button, nothing done: a GET is what a link scanner makes."""
        if self._unsubscribe_id(request) is None:
            return self._bad_unsubscribe()
        return self.page(
            "unsubscribe.html", action=f"{self.serve.public_url}unsubscribe/{request.path_params['token']}"
        )

    async def unsubscribe_help(self, request: Request) -> Response:
        return self.page("unsubscribe.html", action=None)

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058 one-click, and the page's button: unsubscribed, 200, whatever the state before."""
        subscriber_id = self._unsubscribe_id(request)
        if subscriber_id is None:
            return self._bad_unsubscribe()
        subscriber = await self.store(lambda s: s.get(subscriber_id))
        # bounced and complained stay as they are: they are ended already, and say more
        if subscriber is not None and subscriber.status in ("subscribed", "unconfirmed"):
            one_click = ONE_CLICK in await _read_pairs(request)
            reason = "one-click" if one_click else "unsubscribe page"
            await self.store(lambda s: s.set_status(subscriber_id, "unsubscribed", reason=reason))
            log.info("subscriber %s unsubscribed (%s)", subscriber_id, reason)
        return self.page("unsubscribe-done.html", list=subscriber.list if subscriber else None)

    def _bad_unsubscribe(self) -> Response:
        return self.error(
            400,
            "This link does not work",
            "This unsubscribe link is not valid. Use the unsubscribe link at the bottom of the email "
            "you received.",
        )

    # -- the rest ---------------------------------------------------------------------------

    async def archive(self, request: Request) -> Response:
        channel, draft_key = request.path_params["channel"], request.path_params["draft_key"]
        page = await run_in_threadpool(archived_html, self.config, channel, draft_key)
        if page is None:
            return self.not_found()
        return HTMLResponse(
            page, headers={"Content-Security-Policy": ARCHIVE_CSP, "Cache-Control": "public, max-age=300"}
        )

    async def style(self, request: Request) -> Response:
        for folder in search_path(self.config):
            path = folder / STYLE
            if path.is_file():
                return Response(
                    path.read_bytes(), media_type="text/css", headers={"Cache-Control": "public, max-age=300"}
                )
        return PlainTextResponse("", media_type="text/css")

    async def webhook(self, request: Request) -> Response:
        """An ESP's event webhook (serve.webhooks): verified by its provider's rule, then applied
        like any bounce or complaint (webhooks.py). 404 for a provider not configured, 403 for
        a forged or stale call, 200 with what it did otherwise."""
        provider = request.path_params["provider"]
        body = await _body(request, MAX_WEBHOOK_BODY)
        if body is None:
            return JSONResponse({"status": "error", "message": "too large"}, status_code=413)
        headers = dict(request.headers.items())
        try:
            report = await run_in_threadpool(receive_webhook, self.config, provider, headers, body)
        except UnknownWebhook:
            return JSONResponse({"status": "error", "message": "no such webhook"}, status_code=404)
        except ForgedWebhook as exc:
            log.warning("webhook %s refused: %s", provider, exc)
            return JSONResponse({"status": "error", "message": "not verified"}, status_code=403)
        log.info("webhook %s: %s", provider, report.summary())
        return JSONResponse({"status": "ok", "applied": report.applied, "unmatched": len(report.unmatched)})

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")


def make_app(config: Config, store: SubscriberStore | None = None) -> Starlette:
    """The app for `config` (which must have a `serve:` section); `store` overrides the one
    `SubscriberStore.from_config(config)` opens on first use."""
    web = Web(config, store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            web.close()

    routes = [
        Route("/subscribe", web.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.subscribe, methods=["POST"]),
        Route("/confirm/{token}", web.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", web.confirm, methods=["POST"]),
        Route("/unsubscribe", web.unsubscribe_help, methods=["GET"]),
        Route("/unsubscribe/{token}", web.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", web.unsubscribe, methods=["POST"]),
        Route("/archive/{channel}/{draft_key:path}", web.archive, methods=["GET"]),
        Route("/webhooks/{provider}", web.webhook, methods=["POST"]),
        Route("/healthz", web.healthz, methods=["GET"]),
        Route("/style.css", web.style, methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return web.not_found()

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return web.error(405, "Not allowed", "This page does not take that kind of request.")

    async def failed(request: Request, exc: Exception) -> Response:
        """A store that cannot be reached, a broken template: logged, and a page that says so."""
        log.error("%s %s: %s", request.method, request.url.path, exc)
        message = "Something went wrong on our side. Please try again later."
        try:
            return web.error(503, "Not available", message)
        except SyndicateError:  # error.html itself is broken
            return PlainTextResponse(message, status_code=503)

    handlers = {404: not_found, 405: not_allowed, SyndicateError: failed}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.web = web
    app.add_middleware(SecurityHeaders, public_url=config.serve.public_url if config.serve else "")
    return app


# Pages: no script at all, styles from this origin only, forms posting here only.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'{origin}; img-src 'self' data:; "
    "form-action 'self'{origin}; base-uri 'none'; frame-ancestors 'none'"
)
# An archived email: its own inline styles and https images and fonts, still no script, no form.
ARCHIVE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline' https:; img-src https: data:; font-src https:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds the security headers to every answer (a route's own CSP or Cache-Control wins)."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        parts = urlsplit(public_url)
        origin = f" {parts.scheme}://{parts.netloc}" if parts.netloc else ""
        self.headers = {
            b"content-security-policy": PAGE_CSP.format(origin=origin).encode("ascii"),
            b"x-content-type-options": b"nosniff",
            b"referrer-policy": b"no-referrer",
            b"x-frame-options": b"DENY",
            b"cross-origin-opener-policy": b"same-origin",
            b"cache-control": b"no-store",
        }
        if parts.scheme == "https":
            self.headers[b"strict-transport-security"] = b"max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers.items() if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def _body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The body, or None when it is (or says it is) larger than `limit`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_fields(request: Request, wants_json: bool) -> dict[str, str] | None:
    """A subscribe request's fields as strings (the first of each name), or None if unreadable."""
    if wants_json:
        body = await _body(request)
        if body is None:
            return None
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        return {str(k): v for k, v in data.items() if isinstance(v, str)}
    pairs = await _read_pairs(request)
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


async def _read_pairs(request: Request) -> list[tuple[str, str]]:
    """The (name, value) pairs of a urlencoded or multipart form body; [] for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            return []
        try:
            form = await request.form(max_files=0, max_fields=50, max_part_size=MAX_BODY)
        except Exception:  # a malformed multipart body: no fields  # noqa: BLE001
            return []
        return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    body = await _body(request)
    if body is None:
        return []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return []
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=50)
    except ValueError:  # more fields than any form of ours has
        return []


def _clean_name(name: str) -> str:
    """A name as a header and a page may show it: one line, printable, at most NAME_CHARS."""
    return " ".join("".join(c if c.isprintable() else " " for c in name).split())[:NAME_CHARS]


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""


def _ask_again(subscribing: bool) -> str:
    return " You can ask for a new one on the subscribe page." if subscribing else ""
