"""The `mastodon` target: a social post as a status on a Mastodon server, its hero image attached.

Per post: the hero image is fetched from the article's site (no token sent there), uploaded to
`POST /api/v2/media` with its alt text, and, when the server answers 202 (still processing),
polled at `GET /api/v1/media/:id` until it has a `url`; then `POST /api/v1/statuses` carries the
text, visibility, language and the media id, with an `Idempotency-Key` made from the ledger key
and the content hash. Mastodon keeps that key an hour and answers a repeat with the status it
already made, so a post whose answer was lost (`unknown`) can be sent again without a double.

Both POSTs go through `http_post` (its retries, Retry-After, and the `unknown` rule for a lost
answer); Mastodon tells a rate limit with `X-RateLimit-Reset` (an ISO 8601 time) rather than
Retry-After, so a response hook turns one into the other before `http_post` reads it. Mastodon.py
is not used: its requests go out through its own session, past `http_post`'s watched connections,
so a lost answer could not be told from a refused connection nor `handed()` be reported.

An image that cannot be fetched, is not an image, or that Mastodon refuses or does not finish
processing in time is left out and said in the result: the post (whose link card shows the
article anyway) matters more than its picture, and a broken image URL on the site would
otherwise hold the post back for good. A server failing (5xx, 429 after the retries) or a lost
answer to the upload leaves the whole message `retry`: nothing was posted, so the next run may.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlencode, urlsplit

import requests
from pydantic import Field, SecretStr, field_validator
from urllib3 import encode_multipart_formdata

from ..validation import short
from . import Message, MessageKey, Result, not_handed, social_payload
from .http_post import HttpConnection, HttpDelivery, HttpSettings, _verify, http_session, reset_as_retry_after
from .media import UPLOADS_FILE, ImageUnavailable, UploadCache, fetch_image
from .replies import PostedParts, parts_of, post_thread

if TYPE_CHECKING:
    from ..config import Config

# Mastodon's own `error` text is quoted in results up to this many characters.
ERROR_CHARS = 300
# The largest hero image fetched and uploaded (Mastodon's default limit for images is 16 MB).
MAX_IMAGE_BYTES = 16 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic"})
# How often, and how far apart, an upload still processing (202) is asked after: a minute at most.
MEDIA_POLLS = 30
MEDIA_POLL_SECONDS = 2.0
RENEW = "create a new access token with write:statuses and write:media"


class MastodonSettings(HttpSettings):
    """`type: mastodon`: posts to the server at `url` (its address, e.g. https://mastodon.social)
    with `token`, as `visibility`, in `language` (else the article's, when it gives one)."""

    type: Literal["mastodon"]
    token: SecretStr | None = Field(default=None, validate_default=True)
    visibility: Literal["public", "unlisted", "private"] = "public"
    language: str | None = None
    what: ClassVar[str] = "a mastodon target, which posts to Mastodon"
    takes_email: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = frozenset({"mastodon"})

    @field_validator("url")
    @classmethod
    def _server(cls, value: str) -> str:
        """The API paths are added to it, so it is the server's address without a path."""
        parts = urlsplit(value)
        if parts.path.strip("/") or parts.query or parts.fragment:
            extra = short(value[len(f"{parts.scheme}://{parts.netloc}") :])
            raise ValueError(
                f"has more than the server's address ({extra}; expected e.g. https://mastodon.social)"
            )
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr:
        if value is None or not value.get_secret_value():
            raise ValueError("is missing or empty (expected an access token, e.g. ${MASTODON_TOKEN})")
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip().lower()
        if not re.fullmatch(r"[a-z]{2,3}", text):
            raise ValueError(f"{short(value)} is not an ISO 639 language code (expected e.g. en or de)")
        return text

    def connect(self, name: str, config: Config) -> MastodonDelivery:
        from ..state import state_path  # state imports config, which finds this module

        delivery = MastodonDelivery(name, self)
        delivery.uploads = UploadCache(state_path(config, UPLOADS_FILE))
        return delivery


class MastodonDelivery(HttpDelivery):
    settings: MastodonSettings
    # Where a thread's parts already posted are kept (replies.PostedParts); None: nowhere.
    uploads: UploadCache | None = None

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[MastodonConnection]:
        with http_session() as session:
            assert self.settings.token is not None  # config requires it for mastodon targets
            session.headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
            session.hooks["response"].append(reset_as_retry_after("X-RateLimit-Reset"))
            yield MastodonConnection(self, session, stop)


@dataclass(frozen=True)
class _Left:
    """An image left out of a post, and why (said in the result's detail)."""

    why: str


class MastodonConnection(HttpConnection):
    """One batch's session; `send` makes the upload, the polls and the status of one post, each
    POST through `http_post` (retries, lost answers) at its own API path of the server."""

    delivery: MastodonDelivery

    def send(self, message: Message) -> Result:
        d = self.delivery
        payload = social_payload(message, d.name, "a mastodon target")
        if isinstance(payload, Result):
            return payload
        article = payload.get("article") or {}
        notes: list[str] = []
        media_ids: list[str] = []
        if payload.get("image"):
            got = self._attach(message.key, str(payload["image"]), article.get("hero_alt"))
            if isinstance(got, Result):
                return got
            if isinstance(got, _Left):
                notes.append(f"posted without the image: {got.why}")
            else:
                media_ids.append(got)
        language = d.settings.language or _language_of(article.get("lang"))
        parts = parts_of(payload)
        if parts is not None:

            def part(index: int, composed: dict[str, Any], refs: list[str]) -> str | Result:
                return self._status(
                    message,
                    index,
                    str(composed["text"]),
                    media_ids if index == 0 else [],
                    refs[-1] if refs else None,
                    language,
                )

            result = post_thread(message, parts, PostedParts(d.uploads, d.name, message), part)
            return Result(result.key, result.outcome, "; ".join([result.detail, *notes]))
        made = self._status(message, 0, str(payload["text"]), media_ids, None, language)
        if isinstance(made, Result):
            return made
        return Result(message.key, "sent", "; ".join([made, *notes]))

    def _status(
        self,
        message: Message,
        index: int,
        text: str,
        media_ids: list[str],
        reply_to: str | None,
        language: str | None,
    ) -> str | Result:
        """One `POST /api/v1/statuses`: the status's id (and url, after a space), or the Result
        that stops the post. Part `index` of a thread has its own Idempotency-Key."""
        d = self.delivery
        fields = [("status", text), ("visibility", d.settings.visibility)]
        if language:
            fields.append(("language", language))
        if reply_to:
            fields.append(("in_reply_to_id", reply_to.split(" ")[0]))
        fields.extend(("media_ids[]", media_id) for media_id in media_ids)
        key = idempotency_key(message) + (f"-{index + 1}" if index else "")
        answer = self.post(
            message.key,
            urlencode(fields).encode("utf-8"),
            lambda: {"Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": key},
            url=self._url("/api/v1/statuses"),
        )
        if isinstance(answer, Result):
            if answer.outcome == "unknown":
                return Result(
                    message.key,
                    "unknown",
                    f"{answer.detail} (a resend within the hour carries the same Idempotency-Key: "
                    "Mastodon answers it with the status it made, not a second one)",
                )
            return answer
        status = answer.status_code
        if 200 <= status < 300:
            made = _json(answer)
            return " ".join(str(made[k]) for k in ("id", "url") if made.get(k)) or f"HTTP {status}"
        return Result(message.key, "failed", self._refused(answer, "the status"))

    def _attach(self, key: MessageKey, url: str, alt: str | None) -> str | _Left | Result:
        """The media id of the uploaded image, ready to attach; `_Left` when the post goes without
        it; a `Result` when the message should not go now (the server failing, the token refused)."""
        fetched = self._fetch(url)
        if isinstance(fetched, _Left):
            return fetched
        data, content_type = fetched
        name = urlsplit(url).path.rsplit("/", 1)[-1] or "image"
        parts: list[tuple[str, Any]] = [("file", (name, data, content_type))]
        if alt:
            parts.append(("description", alt))
        body, multipart = encode_multipart_formdata(parts)
        with not_handed():  # an upload alone publishes nothing: the message is not in doubt yet
            answer = self.post(key, body, lambda: {"Content-Type": multipart}, url=self._url("/api/v2/media"))
        if isinstance(answer, Result):
            if answer.outcome == "unknown":  # an unattached upload is removed by Mastodon later
                return Result(key, "retry", f"the image upload: {answer.detail}; nothing posted")
            return Result(key, answer.outcome, f"the image upload: {answer.detail}")
        if answer.status_code in (401, 403):
            return Result(key, "failed", self._refused(answer, "the image"))
        if answer.status_code not in (200, 202):
            return _Left(self._refused(answer, "the image"))
        media = _json(answer)
        media_id = str(media.get("id") or "")
        if not media_id:
            return _Left(f"the upload's answer (HTTP {answer.status_code}) has no media id")
        if answer.status_code == 200 and media.get("url"):
            return media_id
        return self._processed(key, media_id)

    def _processed(self, key: MessageKey, media_id: str) -> str | _Left | Result:
        """`media_id` once Mastodon has processed it (its `url` set), asked after a bounded number
        of times: a status naming an upload still processing is refused (422)."""
        settings = self.delivery.settings
        for _ in range(MEDIA_POLLS):
            if not self._wait(MEDIA_POLL_SECONDS):
                return Result(key, "retry", "stopped while the image was processing; nothing posted")
            try:
                with not_handed():
                    answer = self.session.get(
                        f"{settings.url}/api/v1/media/{media_id}",
                        timeout=settings.timeout,
                        verify=_verify(settings),
                        allow_redirects=False,
                    )
            except requests.RequestException:
                continue  # a read: asking again is harmless
            if answer.status_code == 200 and _json(answer).get("url"):
                return media_id
            if answer.status_code not in (200, 206, 429) and answer.status_code < 500:
                return _Left(self._refused(answer, "the image"))
        waited = MEDIA_POLLS * MEDIA_POLL_SECONDS
        return _Left(f"Mastodon was still processing it after {waited:g} s")

    def _fetch(self, url: str) -> tuple[bytes, str] | _Left:
        """The hero image's bytes and type (media.py's rules: no token sent to the site), an
        image type Mastodon takes, at most MAX_IMAGE_BYTES, within the timeout."""
        settings = self.delivery.settings
        try:
            image = fetch_image(
                url,
                max_bytes=MAX_IMAGE_BYTES,
                timeout=settings.timeout,
                verify=_verify(settings),
                types=IMAGE_TYPES,
            )
        except ImageUnavailable as exc:
            return _Left(str(exc))
        return image.data, image.content_type

    def _refused(self, answer: requests.Response, what: str) -> str:
        """One line for a 4xx: the token to renew on 401/403, else Mastodon's own `error`."""
        name, status = self.delivery.name, answer.status_code
        if status in (401, 403):
            return f"targets.{name}: the token was refused ({status}): {RENEW}"
        said = str(_json(answer).get("error") or "")
        token = self.delivery.settings.token
        if token is not None and token.get_secret_value():
            said = said.replace(token.get_secret_value(), "[token]")
        said = " ".join(said.split())[:ERROR_CHARS]
        problem = f"Mastodon refused {what} (HTTP {status} {answer.reason or ''}".rstrip() + ")"
        return f"{problem}: {said}" if said else problem

    def _url(self, path: str) -> str:
        return self.delivery.settings.url + path


def idempotency_key(message: Message) -> str:
    """The same for every send of the same post (any run, any process): its ledger key and
    content hash. A deliberate `--resend` (`fresh_id`) gets a new one, or Mastodon would answer it
    with the first status."""
    k = message.key
    parts = (k.channel, k.target, k.draft_key, k.recipient, message.content_hash, message.fresh_id)
    return "syndicate-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def _language_of(tag: Any) -> str | None:
    """Mastodon's `language` (ISO 639) from a BCP 47 tag: its primary subtag (en-GB: en)."""
    if not isinstance(tag, str):
        return None
    primary = tag.split("-")[0].strip().lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
