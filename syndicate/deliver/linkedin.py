"""The `linkedin` target: a social post as an article share through the LinkedIn Posts API.

One POST per post to /rest/posts with a Bearer token, the `LinkedIn-Version` and Rest.li 2.0
headers; the commentary is little text (reserved characters escaped, hashtags as templates) so
LinkedIn neither cuts the post short nor drops its tags. LinkedIn answers 201 with the new post's
URN in `x-restli-id`. Retries are the webhook's (`http_post`), and so is the rule for a lost
answer (`unknown`, never posted again by default); the token never reaches a message.

The Posts API does not scrape the link: an article share shows an image only when the post
names one uploaded through the Images API (initializeUpload, then a PUT of the bytes to the URL
it gives) as `content.article.thumbnail`. The hero image is uploaded before the post, once per
target and image (the URN is kept in the state folder's uploads.json, so a post retried on a
later run does not upload again). An upload that fails for a while leaves the message `retry`
with nothing posted; a hero image that cannot be had posts the share without a thumbnail.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
from pydantic import Field, SecretStr, field_validator

from ..compose.littletext import little_text
from ..validation import is_loopback, short
from . import Message, MessageKey, Result, not_handed, social_payload
from .http_post import HttpConnection, HttpDelivery, HttpSettings, _verify, http_session
from .media import UPLOADS_FILE, ImageUnavailable, UploadCache, fetch_image

if TYPE_CHECKING:
    from ..config import Config

LINKEDIN_POSTS_URL = "https://api.linkedin.com/rest/posts"

RESTLI_PROTOCOL = "2.0.0"
# LinkedIn's error `message` is quoted in results up to this many characters.
MESSAGE_CHARS = 300


class LinkedInDelivery(HttpDelivery):
    settings: LinkedInSettings
    uploads: UploadCache

    @property
    def images_url(self) -> str:
        """The Images API beside the Posts API: .../rest/images for .../rest/posts."""
        return self.settings.url.rsplit("/", 1)[0] + "/images"

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[LinkedInConnection]:
        with http_session() as session:
            assert self.settings.token is not None  # config requires it for linkedin targets
            session.headers.update(
                {
                    "Authorization": f"Bearer {self.settings.token.get_secret_value()}",
                    "LinkedIn-Version": self.settings.linkedin_version,
                    "X-Restli-Protocol-Version": RESTLI_PROTOCOL,
                }
            )
            yield LinkedInConnection(self, session, stop)


class LinkedInConnection(HttpConnection):
    delivery: LinkedInDelivery

    def send(self, message: Message) -> Result:
        d = self.delivery
        payload = social_payload(message, d.name, "a linkedin target", ("text", "link"))
        if isinstance(payload, Result):
            return payload
        thumbnail = self._thumbnail(message.key, payload)
        if isinstance(thumbnail, Result):
            return thumbnail
        urn, note = thumbnail
        body = json.dumps(post_body(payload, d.settings.author or "", urn), ensure_ascii=False).encode(
            "utf-8"
        )
        # The Posts API documents no idempotency key (no header, no client-chosen id): a POST
        # whose answer is lost cannot be checked or safely repeated, so it is left `unknown`.
        answer = self.post(message.key, body, lambda: {"Content-Type": "application/json"})
        if isinstance(answer, Result):
            return answer
        status = answer.status_code
        if 200 <= status < 300:
            sent = answer.headers.get("x-restli-id") or f"HTTP {status}"
            return Result(message.key, "sent", f"{sent}; {note}" if note else sent)
        return self._refused(message.key, answer)

    def _refused(self, key: MessageKey, answer: requests.Response) -> Result:
        d = self.delivery
        status = answer.status_code
        said = _linkedin_message(answer, d.settings.token.get_secret_value() if d.settings.token else "")
        if status in (401, 403):
            problem = (
                f"HTTP {status}: LinkedIn refused the access token of targets.{d.name} "
                "(expired, revoked or without the w_member_social / w_organization_social scope)"
            )
        elif status == 426:
            problem = (
                f"HTTP 426: LinkedIn-Version {d.settings.linkedin_version} is no longer served "
                f"(set targets.{d.name}.linkedin_version to a recent YYYYMM)"
            )
        else:
            problem = f"HTTP {status} {answer.reason or ''}".strip()
        return Result(key, "failed", f"{problem}: {said}" if said else problem)

    def _thumbnail(self, key: MessageKey, payload: dict[str, Any]) -> tuple[str | None, str] | Result:
        """(the image URN for the share's card, or None; a note for the result), or the message's
        Result when the upload must wait for a later run (nothing is posted then)."""
        d = self.delivery
        image_url = payload.get("image")
        if not image_url or not d.settings.thumbnail:
            return None, ""
        cached = d.uploads.get(d.name, image_url)
        if cached is not None:
            return cached, ""
        try:
            image = fetch_image(image_url, timeout=d.settings.timeout, max_bytes=d.settings.max_image_bytes)
        except ImageUnavailable as exc:
            return None, f"no thumbnail: {exc}"
        init = json.dumps({"initializeUploadRequest": {"owner": d.settings.author}}).encode("utf-8")
        where = f"{d.images_url}?action=initializeUpload"
        with not_handed():  # an upload publishes nothing: a crash now leaves the share pending
            answer = self.post(key, init, lambda: {"Content-Type": "application/json"}, url=where)
        if isinstance(answer, Result):  # an upload reserved twice costs nothing: never `unknown`
            return Result(key, "retry", f"thumbnail upload not started ({answer.detail}); nothing posted")
        if not 200 <= answer.status_code < 300:
            return self._refused(key, answer)
        try:
            value = answer.json()["value"]
            upload_url, urn = str(value["uploadUrl"]), str(value["image"])
        except (ValueError, KeyError, TypeError):
            return Result(
                key, "retry", "thumbnail upload: LinkedIn's answer had no uploadUrl; nothing posted"
            )
        parts = urlsplit(upload_url)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
            return Result(key, "failed", "thumbnail upload: LinkedIn gave an upload URL that is not https")
        try:
            with not_handed():
                put = self.session.put(
                    upload_url,
                    data=image.data,
                    headers={"Content-Type": image.content_type},
                    timeout=d.settings.timeout,
                    verify=_verify(d.settings),
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            return Result(key, "retry", f"thumbnail upload failed ({type(exc).__name__}); nothing posted")
        if put.status_code in (401, 403):
            return self._refused(key, put)
        if not 200 <= put.status_code < 300:
            return Result(key, "retry", f"thumbnail upload: HTTP {put.status_code}; nothing posted")
        d.uploads.put(d.name, image_url, urn)
        return urn, ""


def post_body(post: dict[str, Any], author: str, thumbnail: str | None = None) -> dict[str, Any]:
    """The Posts API request for a `SocialPost.as_dict()`: an article share with little-text
    commentary, its card showing `thumbnail` (an image URN from the Images API) when given."""
    article = post.get("article") or {}
    content: dict[str, Any] = {"source": post["link"], "title": str(article.get("title") or post["link"])}
    if article.get("description"):
        content["description"] = str(article["description"])
    if thumbnail:
        content["thumbnail"] = thumbnail
        if article.get("hero_alt"):
            content["thumbnailAltText"] = str(article["hero_alt"])
    return {
        "author": author,
        "commentary": little_text(post["text"], post.get("hashtags") or ()),
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "content": {"article": content},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


def _linkedin_message(response: requests.Response, token: str) -> str:
    """LinkedIn's own `message` from an error body, on one line, short, and never with the token."""
    try:
        said = response.json().get("message")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(said, str):
        return ""
    if token:
        said = said.replace(token, "[token]")
    return " ".join(said.split())[:MESSAGE_CHARS]


class LinkedInSettings(HttpSettings):
    """`type: linkedin`: posts as `author` with `token`, to the Posts API unless `url` says otherwise."""

    type: Literal["linkedin"]
    url: str = LINKEDIN_POSTS_URL
    token: SecretStr | None = Field(default=None, validate_default=True)
    author: str | None = Field(default=None, validate_default=True)
    # The Posts API version (YYYYMM) sent as LinkedIn-Version; LinkedIn retires versions after a year.
    linkedin_version: str = "202610"
    # Whether a share's card shows the article's hero image (uploaded through the Images API,
    # which needs the same w_member_social / w_organization_social permission as posting).
    thumbnail: bool = True
    # The largest hero image uploaded as a share's thumbnail; a larger one is posted without.
    max_image_bytes: int = Field(default=8 * 1024 * 1024, gt=0, le=100 * 1024 * 1024)
    what: ClassVar[str] = "a linkedin target, which posts to LinkedIn"
    takes_email: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = frozenset({"linkedin"})

    @field_validator("linkedin_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> str:
        text = str(value).strip()
        if not re.fullmatch(r"20\d{2}(0[1-9]|1[0-2])", text):
            raise ValueError(f"{short(value)} is not a LinkedIn API version (expected YYYYMM, e.g. 202610)")
        return text

    @field_validator("author")
    @classmethod
    def _author(cls, value: str | None) -> str:
        if value is None or not re.fullmatch(r"urn:li:(person|organization):\S+", value):
            what = "is missing" if value is None else f"{short(value)} is not an author URN"
            raise ValueError(f"{what} (expected urn:li:person:<id> or urn:li:organization:<id>)")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr:
        if value is None or not value.get_secret_value():
            raise ValueError("is missing or empty (expected an access token, e.g. ${LINKEDIN_TOKEN})")
        return value

    def connect(self, name: str, config: Config) -> LinkedInDelivery:
        from ..state import state_path  # state imports config, which finds this module

        delivery = LinkedInDelivery(name, self)
        delivery.uploads = UploadCache(state_path(config, UPLOADS_FILE))
        return delivery
