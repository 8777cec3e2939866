"""The `threads` target: a social post published on Threads (Meta) through the Threads API.

Publishing is Meta's documented two steps. `POST /{user_id}/threads` creates a media container
(`media_type=TEXT` with `text`, the article link as `link_attachment` so the preview card shows
it; or `media_type=IMAGE` with `image_url`, the article's hero image when its URL is https, since
Threads fetches the image itself from a public server, and `alt_text`, the article's description
of that image, when it has one). Meta's Threads accessibility guide takes `alt_text` on the
container of an image or a video only ("not available for text-only posts"), so a TEXT container
with its link attachment never carries one; it states no length limit, so the text is kept to
X's 1000 characters (cut at a word boundary), a bound any screen reader user is served well by.
`POST /{user_id}/threads_publish` with
`creation_id` then publishes it and answers the post's id. The token goes as the documented
`access_token` parameter: in the form body of a POST, in the query of a GET (never in a result:
problems name exception types only, as http_post does).

A container publishes nothing, so creating it is wrapped in `not_handed()`: a crash or a lost
answer then leaves the message pending (`retry`), never in doubt; only the publish hands the post
over. The container id is kept in the state folder's uploads.json per message (its ledger key and
content hash), so a later attempt publishes the same container instead of making a second one.
Before publishing, the container's documented status (`GET /{container_id}?fields=status`) is
asked: FINISHED is published, IN_PROGRESS is waited for a little (then `retry`), EXPIRED (never
published within 24 h) makes a new container, so does a remembered one in ERROR (an image Threads
could not fetch then may be there now), a new one in ERROR fails with Meta's reason, PUBLISHED means
an earlier publish went out though its answer was lost: the message is `sent`, not published
again. That status, not a search of the account's recent posts by text, settles a lost answer:
it speaks of this very container, while the same words may have been posted by hand. A publish
whose answer is lost is asked about at once the same way; when that cannot be told either, it is
`unknown`, and a resend (`schedule.unknown: resend`) asks again before anything goes out.

Threads allows 250 API posts per profile in a moving 24 hours and enforces it on the publish. So
before publishing, `GET /{user_id}/threads_publishing_limit?fields=quota_usage,config` is read;
with the quota used up the message stays `retry`, nothing posted, with one line saying by when a
slot frees at the latest. Meta's throttling answers (HTTP 429, or the Graph codes 4, 17, 32, 613
that Meta sends with a 400 or 403) are retried by http_post with its backoff and Retry-After; an
expired or invalid token (OAuthException 190) fails with one line naming what to renew.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlencode, urlsplit

import requests
from pydantic import Field, SecretStr, field_validator

from .. import clock
from ..validation import short
from . import Message, MessageKey, Result, not_handed, social_payload
from .http_post import HttpConnection, HttpDelivery, HttpSettings, _verify, http_session
from .media import UPLOADS_FILE, UploadCache, alt_text

if TYPE_CHECKING:
    from ..config import Config

THREADS_API_URL = "https://graph.threads.net/v1.0"
# Meta's own `error.message` is quoted in results up to this many characters.
ERROR_CHARS = 300
# Graph API error codes that mean "too many calls" (sent with HTTP 400/403, not 429).
THROTTLE_CODES = frozenset({4, 17, 32, 613})
EXPIRED_TOKEN = 190
# The longest alt text sent: Meta documents none for `alt_text`, so X's 1000 characters, cut at a
# word boundary beyond that (a description longer than that helps no one listening to it).
ALT_TEXT_CHARS = 1000
# A container still IN_PROGRESS is asked after this many times, this far apart, then left for a
# later run (Meta suggests about 30 s before publishing media, and polling once a minute).
STATUS_POLLS = 6
STATUS_POLL_SECONDS = 10.0
RENEW = (
    "renew the long-lived Threads user access token in token (threads_basic and "
    "threads_content_publish; it lasts 60 days unless refreshed)"
)


class ThreadsSettings(HttpSettings):
    """`type: threads`: publishes as the Threads user `user_id` with `token`, through the Threads
    API at `url` (its versioned root)."""

    type: Literal["threads"]
    url: str = THREADS_API_URL
    user_id: str
    token: SecretStr | None = Field(default=None, validate_default=True)
    # Whether a post with an https hero image is an IMAGE post (Threads fetches the image).
    image: bool = True
    what: ClassVar[str] = "a threads target, which posts to Threads"
    takes_email: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = frozenset({"threads"})

    @field_validator("url")
    @classmethod
    def _root(cls, value: str) -> str:
        """The API paths are added to it: a root without query or fragment."""
        parts = urlsplit(value)
        if parts.query or parts.fragment:
            raise ValueError(f"has a query or fragment ({short(value)}; expected e.g. {THREADS_API_URL})")
        return value.rstrip("/")

    @field_validator("user_id", mode="before")
    @classmethod
    def _user_id(cls, value: Any) -> str:
        text = str(value).strip() if isinstance(value, str | int) else ""
        if not text.isdigit():
            raise ValueError(
                f'{short(str(value))} is not a Threads user id (expected digits, e.g. "1234567890")'
            )
        return text

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr:
        if value is None or not value.get_secret_value():
            raise ValueError(
                "is missing or empty (expected a Threads user access token, e.g. ${THREADS_TOKEN})"
            )
        return value

    def secret(self) -> str:
        assert self.token is not None  # the validator requires it
        return self.token.get_secret_value()

    def connect(self, name: str, config: Config) -> ThreadsDelivery:
        from ..state import state_path  # state imports config, which finds this module

        delivery = ThreadsDelivery(name, self)
        delivery.uploads = UploadCache(state_path(config, UPLOADS_FILE))
        return delivery


class ThreadsDelivery(HttpDelivery):
    settings: ThreadsSettings
    uploads: UploadCache

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[ThreadsConnection]:
        with http_session() as session:
            session.hooks["response"].append(_throttling_as_429)
            yield ThreadsConnection(self, session, stop)


def _throttling_as_429(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """Meta says "too many calls" with a Graph error code in a 400/403: make it the 429 that
    http_post retries with its backoff (and Retry-After, when Meta sends one)."""
    if response.status_code in (400, 403) and _error(response).get("code") in THROTTLE_CODES:
        response.reason = f"Too Many Requests (Graph error code {_error(response)['code']})"
        response.status_code = 429
    return response


class ThreadsConnection(HttpConnection):
    delivery: ThreadsDelivery
    # Why the container last asked after is ERROR (Meta's `error_message`), for the result.
    reason: str = ""

    def send(self, message: Message) -> Result:
        d = self.delivery
        key = message.key
        payload = social_payload(message, d.name, "a threads target")
        if isinstance(payload, Result):
            return payload
        slot = _slot(message)
        container = d.uploads.get(d.name, slot) or ""
        status = self._status(key, container) if container else None
        if isinstance(status, Result):
            return status
        if status in ("EXPIRED", "ERROR", "UNKNOWN_CONTAINER"):
            d.uploads.put(d.name, slot, "")  # nothing was published from it: make a new one
            container = ""  # (an earlier ERROR, say an image Threads could not fetch, may pass now)
        if not container:
            made = self._create(key, payload)
            if isinstance(made, Result):
                return made
            container = made
            d.uploads.put(d.name, slot, container)
            status = self._status(key, container)
            if isinstance(status, Result):
                return status
        if status == "PUBLISHED":
            d.uploads.put(d.name, slot, "")
            return Result(
                key,
                "sent",
                f"container {container} was published by an earlier attempt (its answer was lost)",
            )
        if status == "IN_PROGRESS":
            status = self._finished(key, container)
            if isinstance(status, Result):
                return status
        if status == "ERROR":  # a container just made that Threads could not make into a post
            d.uploads.put(d.name, slot, "")
            return Result(key, "failed", f"Threads could not make the post ({self.reason}); nothing posted")
        if status != "FINISHED":
            return Result(key, "retry", f"the Threads container is {status}; nothing posted")
        quota = self._quota(key)
        if quota is not None:
            return quota
        return self._publish(key, slot, container)

    # -- the requests ----------------------------------------------------------------------

    def _create(self, key: MessageKey, payload: dict[str, Any]) -> str | Result:
        """The id of a new media container for the post (which publishes nothing yet)."""
        d = self.delivery
        fields: list[tuple[str, str]] = []
        image = str(payload.get("image") or "")
        if d.settings.image and urlsplit(image).scheme == "https":
            fields += [("media_type", "IMAGE"), ("image_url", image)]
            alt = alt_text(payload.get("article"), ALT_TEXT_CHARS)
            if alt:  # Meta takes alt_text on image and video containers, not on text posts
                fields.append(("alt_text", alt))
        else:
            fields.append(("media_type", "TEXT"))
        fields.append(("text", str(payload["text"])))
        link = str(payload.get("link") or "")
        if fields[0][1] == "TEXT" and urlsplit(link).scheme in ("http", "https"):
            fields.append(("link_attachment", link))
        url = f"{d.settings.url}/{d.settings.user_id}/threads"
        with not_handed():  # a container publishes nothing: a crash now leaves the post pending
            answer = self._post_form(key, url, fields)
        if isinstance(answer, Result):  # a second container costs nothing: never `unknown`
            return Result(key, "retry", f"creating the Threads container: {answer.detail}; nothing posted")
        if not 200 <= answer.status_code < 300:
            return self._refused(key, answer, "the container")
        container = str(_json(answer).get("id") or "")
        if not container:
            return Result(key, "retry", "Threads answered the container without an id; nothing posted")
        return container

    def _publish(self, key: MessageKey, slot: str, container: str) -> Result:
        """Publish the container: the one request that hands the post over."""
        d = self.delivery
        url = f"{d.settings.url}/{d.settings.user_id}/threads_publish"
        answer = self._post_form(key, url, [("creation_id", container)])
        if isinstance(answer, Result):
            if answer.outcome != "unknown":
                return answer
            status = self._status(key, container)  # did it go out? the container says
            if status == "PUBLISHED":
                d.uploads.put(d.name, slot, "")
                return Result(key, "sent", f"container {container} published (its answer was lost)")
            return Result(
                key,
                "unknown",
                f"{answer.detail} (container {container} is remembered: a resend asks Threads whether "
                "it was published before publishing anything)",
            )
        if 200 <= answer.status_code < 300:
            d.uploads.put(d.name, slot, "")
            post = str(_json(answer).get("id") or f"HTTP {answer.status_code}")
            return Result(key, "sent", post)
        return self._refused(key, answer, "the post")

    def _status(self, key: MessageKey, container: str) -> str | Result:
        """The container's documented status (FINISHED, IN_PROGRESS, PUBLISHED, EXPIRED, ERROR), or
        UNKNOWN_CONTAINER when Threads no longer knows it; a `Result` when it cannot be asked. Why
        an ERROR container failed is kept in `self.reason`."""
        answer = self._get(key, container, {"fields": "status,error_message"})
        if isinstance(answer, Result):
            return answer
        if answer.status_code in (400, 404) and _error(answer).get("code") == 100:
            return "UNKNOWN_CONTAINER"  # Graph's "object does not exist": nothing published from it
        if answer.status_code != 200:
            return self._refused(key, answer, "the container's status", retry=True)
        found = _json(answer)
        said = str(found.get("error_message") or "no reason given")
        self.reason = _clean(said, self.delivery.settings.secret())
        return str(found.get("status") or "UNKNOWN_STATUS")

    def _finished(self, key: MessageKey, container: str) -> str | Result:
        """Ask after a container still IN_PROGRESS a few times; `retry` when it takes longer (it
        is remembered: the next run publishes it once ready)."""
        for _ in range(STATUS_POLLS):
            if not self._wait(STATUS_POLL_SECONDS):
                return Result(
                    key, "retry", "stopped while Threads was processing the container; nothing posted"
                )
            status = self._status(key, container)
            if status != "IN_PROGRESS":
                return status
        waited = STATUS_POLLS * STATUS_POLL_SECONDS
        return Result(
            key, "retry", f"Threads was still processing the container after {waited:g} s; nothing posted"
        )

    def _quota(self, key: MessageKey) -> Result | None:
        """`retry` when the profile's publishing quota is used up (never post past it), or when it
        cannot be read; None when there is room."""
        d = self.delivery
        answer = self._get(
            key, f"{d.settings.user_id}/threads_publishing_limit", {"fields": "quota_usage,config"}
        )
        if isinstance(answer, Result):
            return Result(
                key, "retry", f"the publishing quota could not be read ({answer.detail}); nothing posted"
            )
        if answer.status_code != 200:
            return self._refused(key, answer, "the publishing quota", retry=True)
        try:
            [limit] = _json(answer)["data"]
            usage = int(limit["quota_usage"])
            total = int(limit["config"]["quota_total"])
            window = timedelta(seconds=int(limit["config"]["quota_duration"]))
        except (KeyError, TypeError, ValueError):
            return Result(
                key, "retry", "Threads answered the publishing quota in an unknown shape; nothing posted"
            )
        if usage < total:
            return None
        by = (clock.now() + window).astimezone(UTC)
        hours = f"{window.total_seconds() / 3600:g} h"
        return Result(
            key,
            "retry",
            f"the Threads publishing quota of targets.{d.name} is used up ({usage} of {total} posts in "
            f"{hours}): a post frees when the oldest turns {hours} old, by {by:%Y-%m-%d %H:%M} UTC at "
            "the latest; nothing posted",
        )

    def _post_form(
        self, key: MessageKey, url: str, fields: list[tuple[str, str]]
    ) -> requests.Response | Result:
        """A form POST through http_post (retries, Retry-After, lost answers), the token in the body."""
        body = urlencode([*fields, ("access_token", self.delivery.settings.secret())]).encode("utf-8")
        return self.post(key, body, lambda: {"Content-Type": "application/x-www-form-urlencoded"}, url=url)

    def _get(self, key: MessageKey, path: str, params: dict[str, str]) -> requests.Response | Result:
        """A read (a status, the quota), never handing the post over; asked again once on a
        connection failure or a 5xx/429, as a read is harmless to repeat."""
        settings = self.delivery.settings
        url = f"{settings.url}/{path}"
        problem = ""
        for attempt in range(2):
            if attempt and not self._wait(1.0):
                break
            try:
                with not_handed():
                    answer = self.session.get(
                        url,
                        params={**params, "access_token": settings.secret()},
                        timeout=settings.timeout,
                        verify=_verify(settings),
                        allow_redirects=False,
                    )
            except requests.RequestException as exc:
                problem = f"cannot reach Threads ({type(exc).__name__})"  # never the URL: it holds the token
                continue
            if answer.status_code == 429 or answer.status_code >= 500:
                problem = f"HTTP {answer.status_code} {answer.reason or ''}".strip()
                continue
            return answer
        return Result(key, "retry", problem or "stopped")

    def _refused(
        self, key: MessageKey, answer: requests.Response, what: str, *, retry: bool = False
    ) -> Result:
        """One line for Meta's refusal: the token to renew on code 190, else Meta's own message."""
        d = self.delivery
        error = _error(answer)
        said = _clean(str(error.get("message") or ""), d.settings.secret())
        if error.get("code") == EXPIRED_TOKEN or answer.status_code == 401:
            return Result(
                key,
                "failed",
                f"targets.{d.name}: Threads refused the access token (OAuthException {error.get('code', 190)}"
                f"{': ' + said if said else ''}): {RENEW}",
            )
        problem = f"Threads refused {what} (HTTP {answer.status_code}"
        problem += f", code {error['code']})" if "code" in error else ")"
        return Result(key, "retry" if retry else "failed", f"{problem}: {said}" if said else problem)


def _slot(message: Message) -> str:
    """The uploads.json entry of this message's container: its ledger key, content and resend."""
    return f"container {message.key.digest()} {message.content_hash} {message.fresh_id}".rstrip()


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _error(answer: requests.Response) -> dict[str, Any]:
    """Graph's `{"error": {"message", "type", "code", ...}}`, or {}."""
    error = _json(answer).get("error")
    return error if isinstance(error, dict) else {}


def _clean(text: str, secret: str) -> str:
    """Meta's words on one short line, the token cut out."""
    if secret:
        text = text.replace(secret, "[token]")
    return " ".join(text.split())[:ERROR_CHARS]
