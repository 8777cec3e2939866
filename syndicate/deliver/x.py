"""The `x` target: a social post as a post on X (Twitter) through the X API v2.

One `POST /2/tweets` per post with the JSON body `{"text": ...}` (the composed text already holds
the link and is within X's 280 weighted characters), plus `{"media": {"media_ids": [...]}}` when
the hero image was uploaded. X answers 201 with `{"data": {"id": ..., "text": ...}}`.

Credentials, exactly one of two kinds: an OAuth 2.0 user-context access token (`token`: a Bearer
header; scopes tweet.write, and media.write for images) or OAuth 1.0a user context (the app's
`consumer_key`/`consumer_secret` and the account's `access_token`/`access_secret`), each request
signed with HMAC-SHA1 here, with a fresh nonce and timestamp per attempt. tweepy was considered
and not used: its client sends through its own requests/oauthlib session with its own sleeping
on 429 (time.sleep, the wall clock) and a fixed https://api.x.com host, so neither http_post's
rule for a lost answer (`unknown`, never re-sent; `handed()` for the ledger) nor its Retry-After
handling and Ctrl-C cuts would hold, and a loopback test server could not stand in for X. The
signature is a few lines of hmac/hashlib over the same `HttpConnection.post` every target uses.

X documents no idempotency key for `POST /2/tweets`: an answer lost after the request went out
is `unknown` (never retried blindly; `schedule.unknown` decides). X refuses an exact duplicate of
a recent post's text with 403 "duplicate content"; that is `failed`, never `sent`, since nothing
says the earlier post is ours (the account may have posted the same words by hand), and the line
says an earlier attempt may have gone out. A 429 waits as X asks: `Retry-After`, else
`x-rate-limit-reset` (epoch seconds, turned into a wait with `clock.now()`).

The hero image is uploaded first through `POST /2/media/upload` (the documented one-shot JSON
form: base64 `media`, `media_category: tweet_image`, `media_type`), once per target and image: the
media id is kept in the state folder's uploads.json with the instant it stops being usable. X
keeps an unused media id for `expires_after_secs` (about 24 h); an entry is reused until an hour
before that, then uploaded again, so a post retried on a later run never names an expired id
(X would refuse the whole post with 400) and one retried the same day does not upload twice. An
upload whose answer is lost is `retry`, nothing posted (an unused upload costs nothing); an
image that cannot be had (fetched, or accepted by X) posts without it, the detail saying why.

The article's alt text for the image (`hero_alt`) is set between the upload and the post with the
v2 "Create Media metadata" endpoint, `POST /2/media/metadata` with the JSON body `{"id": <media
id>, "metadata": {"alt_text": {"text": ...}}}` (docs.x.com/x-api/media/create-media-metadata;
`alt_text.text` at most 1000 characters, so a longer one is cut at a word boundary). The v2
endpoint is used, not v1.1's `media/metadata/create.json` on upload.twitter.com, as the upload
is v2 already and takes the same credentials (media.write). Like the upload it publishes nothing
(`not_handed()`), and it never holds the post back: refused, failing or unanswered, the post goes
out with its image and the result says "alt text not set" and why (an image without a description
still serves the post better than no post). uploads.json remembers the alt text a media id
carries as `<media id> <usable until> alt:<digest>` (the sha256 of the text; an entry without it,
as before alt text, carries none). A reused upload is not described again when it carries the same
words; one that carries none yet (the post was retried after the description failed) is described
now; one that carries other words (another article with the same image), or that a post went out
with undescribed, is uploaded anew, so no post shows another's description and a published
image's is not rewritten (save for an entry written before alt text, whose posts nothing records:
it is described when next reused, within the day it lasts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from pydantic import Field, SecretStr, model_validator

from .. import clock
from . import Message, MessageKey, Result, not_handed, social_payload
from .http_post import HttpConnection, HttpDelivery, HttpSettings, http_session, reset_as_retry_after
from .media import UPLOADS_FILE, ImageUnavailable, UploadCache, alt_text, fetch_image
from .replies import PostedParts, parts_of, post_thread

if TYPE_CHECKING:
    from ..config import Config

X_TWEETS_URL = "https://api.x.com/2/tweets"
# X's problem `title`/`detail` are quoted in results up to this many characters.
MESSAGE_CHARS = 300
# How long X keeps an unused media id when its answer does not say (`expires_after_secs`).
MEDIA_LIFETIME = timedelta(hours=24)
# A cached media id is uploaded again this long before X would let it expire.
MEDIA_MARGIN = timedelta(hours=1)
# X's limit on an image's alt text (`metadata.alt_text.text` of POST /2/media/metadata).
ALT_TEXT_CHARS = 1000
# The image types X's one-shot upload takes for tweet_image (a GIF needs the chunked upload).
_UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp")
_OAUTH1_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_secret")


class XDelivery(HttpDelivery):
    settings: XSettings
    uploads: UploadCache

    @property
    def media_url(self) -> str:
        """The v2 media upload beside the posts endpoint: .../2/media/upload for .../2/tweets."""
        return self.settings.url.rsplit("/", 1)[0] + "/media/upload"

    @property
    def metadata_url(self) -> str:
        """The v2 media metadata beside the posts endpoint: .../2/media/metadata for .../2/tweets."""
        return self.settings.url.rsplit("/", 1)[0] + "/media/metadata"

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[XConnection]:
        with http_session() as session:
            session.hooks["response"].append(reset_as_retry_after("x-rate-limit-reset"))
            yield XConnection(self, session, stop)


class XConnection(HttpConnection):
    delivery: XDelivery

    def send(self, message: Message) -> Result:
        d = self.delivery
        payload = social_payload(message, d.name, "an x target")
        if isinstance(payload, Result):
            return payload
        media = self._media(message.key, payload)
        if isinstance(media, Result):
            return media
        media_id, note = media
        parts = parts_of(payload)
        if parts is not None:
            posted = PostedParts(d.uploads, d.name, message)

            def part(index: int, composed: dict[str, Any], refs: list[str]) -> str | Result:
                if refs and not refs[-1].isdigit():
                    return Result(
                        message.key, "failed", f"X's answer to part {index} named no post to reply to"
                    )
                first = index == 0
                return self._tweet(
                    message.key,
                    composed["text"],
                    media_id if first else None,
                    refs[-1] if refs else None,
                    payload,
                )

            result = post_thread(message, parts, posted, part)
            if media_id and note:
                d.uploads.put(d.name, payload["image"], "")  # (see below; harmless if part 1 is not up)
            return Result(result.key, result.outcome, f"{result.detail}; {note}" if note else result.detail)
        posted_id = self._tweet(message.key, payload["text"], media_id, None, payload)
        if isinstance(posted_id, Result):
            return posted_id
        if media_id and note:
            # Posted without its alt text: a later post uploads the image anew rather than
            # set a description on media already published in this one.
            d.uploads.put(d.name, payload["image"], "")
        return Result(message.key, "sent", f"{posted_id}; {note}" if note else posted_id)

    def _tweet(
        self, key: MessageKey, text: str, media_id: str | None, reply_to: str | None, payload: dict[str, Any]
    ) -> str | Result:
        """One `POST /2/tweets`: the new post's id (or "HTTP 201" when X's answer names none)."""
        d = self.delivery
        request: dict[str, Any] = {"text": text}
        if media_id:
            request["media"] = {"media_ids": [media_id]}
        if reply_to:
            request["reply"] = {"in_reply_to_tweet_id": reply_to}
        body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        # No idempotency key exists for POST /2/tweets: a lost answer is `unknown` (http_post).
        answer = self.post(key, body, self._headers(d.settings.url))
        if isinstance(answer, Result):
            return answer
        if 200 <= answer.status_code < 300:
            try:
                return str(answer.json()["data"]["id"])
            except (ValueError, KeyError, TypeError):
                return f"HTTP {answer.status_code}"
        if answer.status_code == 400 and media_id and _names_media_ids(answer):
            # X dropped the media id before the time it gave (or uploads.json was copied from
            # elsewhere): nothing was posted, so forget the upload and post with a new one later.
            d.uploads.put(d.name, payload["image"], "")
            return Result(
                key,
                "retry",
                f"HTTP 400: X no longer knows media id {media_id}; the image is uploaded again on the "
                "next attempt, nothing posted",
            )
        return self._refused(key, answer)

    def _headers(self, url: str) -> Callable[[], dict[str, str]]:
        """Per-attempt headers: a JSON body and the credentials (an OAuth 1.0a signature is made
        anew for each attempt, with its own nonce and timestamp)."""
        settings = self.delivery.settings

        def headers() -> dict[str, str]:
            return {"Content-Type": "application/json", "Authorization": settings.authorization("POST", url)}

        return headers

    def _refused(self, key: MessageKey, answer: requests.Response) -> Result:
        """One line for an answer X gave but that is not a success, never with a secret."""
        d = self.delivery
        status = answer.status_code
        title, detail, kind = _problem(answer, d.settings.secret_values())
        said = ": ".join(part for part in (title, detail) if part)
        if status == 401:
            problem = f"HTTP 401: X refused the credentials of targets.{d.name} ({d.settings.renew_hint()})"
        elif status == 403 and "duplicate content" in detail.lower():
            return Result(
                key,
                "failed",
                f"HTTP 403: X refuses this text as a duplicate of a post already on the account of "
                f"targets.{d.name}: an earlier attempt may have gone out; not sent again",
            )
        elif status == 403 and ("credits" in kind.lower() or "creditsdepleted" in title.lower()):
            problem = f"HTTP 403: the X API account of targets.{d.name} has no credits left (CreditsDepleted)"
        elif status == 403 and "client-forbidden" in kind.lower():
            problem = (
                f"HTTP 403: X does not let the app of targets.{d.name} post (client-forbidden: the app "
                "must be in a Project with access to the v2 API)"
            )
        elif status == 403:
            problem = (
                f"HTTP 403: X refused the post of targets.{d.name} (expected an app with Read and write "
                "permission, a token with tweet.write, media.write for images)"
            )
        else:
            problem = f"HTTP {status} {answer.reason or ''}".strip()
        return Result(key, "failed", f"{problem}: {said}" if said else problem)

    def _media(self, key: MessageKey, payload: dict[str, Any]) -> tuple[str | None, str] | Result:
        """(the media id to attach, or None; a note for the result: with a media id, always that
        its alt text was not set), or the message's Result when the upload must wait for a later
        run (nothing is posted then)."""
        d = self.delivery
        image_url = payload.get("image")
        if not image_url or not d.settings.image:
            return None, ""
        alt = alt_text(payload.get("article"), ALT_TEXT_CHARS)
        wanted = _alt_mark(alt)
        upload = _cached_media(d.uploads.get(d.name, image_url))
        # Reused when it carries this alt text, or none yet (then it is set now); one that carries
        # another article's description (the same image) is uploaded again rather than shown so.
        if upload is None or upload.alt not in ("", wanted):
            fresh = self._upload(key, image_url)
            if not isinstance(fresh, _Upload):
                return fresh
            upload = fresh
        if not alt or upload.alt == wanted:
            return upload.media_id, ""
        not_set = self._describe(key, upload.media_id, alt)
        if isinstance(not_set, Result):
            return not_set
        if not_set:
            return upload.media_id, f"alt text not set: {not_set}"
        d.uploads.put(d.name, image_url, upload._replace(alt=wanted).entry())
        return upload.media_id, ""

    def _upload(self, key: MessageKey, image_url: str) -> _Upload | tuple[None, str] | Result:
        """The image uploaded (and remembered in uploads.json, no alt text yet); (None, why) when
        it posts without it; a Result when the upload must wait for a later run."""
        d = self.delivery
        try:
            image = fetch_image(image_url, timeout=d.settings.timeout, max_bytes=d.settings.max_image_bytes)
        except ImageUnavailable as exc:
            return None, f"no image: {exc}"
        if image.content_type not in _UPLOAD_TYPES:
            return None, f"no image: X's upload takes JPEG, PNG or WebP (the image is {image.content_type})"
        upload = {
            "media": base64.b64encode(image.data).decode("ascii"),
            "media_category": "tweet_image",
            "media_type": image.content_type,
        }
        with not_handed():  # an upload publishes nothing: a crash now leaves the post pending
            answer = self.post(
                key, json.dumps(upload).encode("utf-8"), self._headers(d.media_url), url=d.media_url
            )
        if isinstance(answer, Result):  # an upload made twice costs nothing: never `unknown`
            return Result(key, "retry", f"image upload not finished ({answer.detail}); nothing posted")
        if answer.status_code in (401, 403):
            return self._refused(key, answer)
        if not 200 <= answer.status_code < 300:
            return None, f"no image: X refused the upload (HTTP {answer.status_code}{self._said(answer)})"
        try:
            data = answer.json()["data"]
            media_id = str(data["id"])
            lifetime = timedelta(
                seconds=float(data.get("expires_after_secs") or MEDIA_LIFETIME.total_seconds())
            )
        except (ValueError, KeyError, TypeError):
            return Result(key, "retry", "image upload: X's answer had no media id; nothing posted")
        made = _Upload(media_id, (clock.now() + lifetime - MEDIA_MARGIN).isoformat(), "")
        d.uploads.put(d.name, image_url, made.entry())
        return made

    def _describe(self, key: MessageKey, media_id: str, alt: str) -> str | Result:
        """Set the uploaded image's alt text: "" once X took it, else why not (the post goes out
        with the image all the same); a Result only when the run stopped meanwhile."""
        d = self.delivery
        request = {"id": media_id, "metadata": {"alt_text": {"text": alt}}}
        body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        with not_handed():  # metadata publishes nothing, like the upload
            answer = self.post(key, body, self._headers(d.metadata_url), url=d.metadata_url)
        if isinstance(answer, Result):
            if self.stop.is_set():
                return Result(key, "retry", "stopped while setting the image's alt text; nothing posted")
            return f"X did not take it ({answer.detail})"
        if not 200 <= answer.status_code < 300:
            return f"X refused it (HTTP {answer.status_code}{self._said(answer)})"
        try:
            found = answer.json()
            taken = isinstance(found, dict) and ("data" in found or not found.get("errors"))
        except ValueError:
            taken = True  # a 2xx is X's documented success; its body is not needed
        return "" if taken else f"X answered HTTP {answer.status_code} with errors{self._said(answer)}"

    def _said(self, answer: requests.Response) -> str:
        """X's problem title and detail, after ": ", or ""."""
        title, detail, _ = _problem(answer, self.delivery.settings.secret_values())
        said = ": ".join(part for part in (title, detail) if part)
        return f": {said}" if said else ""


class _Upload(NamedTuple):
    """An uploads.json entry of an x target: "<media id> <usable until>", and " alt:<digest>"
    once X took the alt text whose digest it is (entries written before alt text have none)."""

    media_id: str
    usable_until: str
    alt: str

    def entry(self) -> str:
        return " ".join(part for part in (self.media_id, self.usable_until, self.alt) if part)


def _alt_mark(alt: str) -> str:
    """How uploads.json remembers which alt text a media id carries ("" for none)."""
    return "alt:" + hashlib.sha256(alt.encode("utf-8")).hexdigest()[:16] if alt else ""


def _cached_media(entry: str | None) -> _Upload | None:
    """The upload an uploads.json entry holds, while still usable; None for anything else."""
    if not entry:
        return None
    parts = entry.split(" ")
    if len(parts) not in (2, 3):
        return None
    media_id, until, alt = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    try:
        usable_until = datetime.fromisoformat(until)
    except ValueError:
        return None
    if not media_id.isdigit() or usable_until.tzinfo is None or clock.now() >= usable_until:
        return None
    if alt and not re.fullmatch(r"alt:[0-9a-f]{16}", alt):
        return None
    return _Upload(media_id, until, alt)


def _names_media_ids(response: requests.Response) -> bool:
    """Whether X's 400 says the request's `media.media_ids` are invalid (its `errors[].parameters`)."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return False
    return isinstance(errors, list) and any(
        isinstance(e, dict) and isinstance(e.get("parameters"), dict) and "media.media_ids" in e["parameters"]
        for e in errors
    )


def _problem(response: requests.Response, secrets_: list[str]) -> tuple[str, str, str]:
    """X's problem JSON (`title`, `detail`, `type`; else the first of `errors`), each on one line,
    short, never with a secret."""
    try:
        found = response.json()
    except ValueError:
        return "", "", ""
    if not isinstance(found, dict):
        return "", "", ""
    errors = found.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    parts = [found.get("title"), found.get("detail") or first.get("message"), found.get("type")]
    clean = []
    for part in parts:
        text = part if isinstance(part, str) else ""
        for secret in secrets_:
            text = text.replace(secret, "[secret]")
        clean.append(" ".join(text.split())[:MESSAGE_CHARS])
    return clean[0], clean[1], clean[2]


def _enc(value: str) -> str:
    """RFC 3986 percent-encoding as OAuth 1.0a requires: only A-Z a-z 0-9 - . _ ~ left as is."""
    return quote(value, safe="~")


def oauth1_header(
    method: str,
    url: str,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    *,
    nonce: str,
    timestamp: int,
) -> str:
    """The `Authorization: OAuth ...` value of an OAuth 1.0a HMAC-SHA1 request. A JSON body is
    not signed (only form bodies are); the URL's query parameters are."""
    parts = urlsplit(url)
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp),
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    params = sorted((_enc(k), _enc(v)) for k, v in [*parse_qsl(parts.query), *oauth.items()])
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    base_url = f"{parts.scheme.lower()}://{netloc}{parts.path or '/'}"
    base = "&".join([method.upper(), _enc(base_url), _enc("&".join(f"{k}={v}" for k, v in params))])
    key = f"{_enc(consumer_secret)}&{_enc(token_secret)}"
    digest = hmac.new(key.encode("utf-8"), base.encode("utf-8"), hashlib.sha1).digest()
    oauth["oauth_signature"] = base64.b64encode(digest).decode("ascii")
    return "OAuth " + ", ".join(f'{_enc(k)}="{_enc(v)}"' for k, v in sorted(oauth.items()))


class XSettings(HttpSettings):
    """`type: x`: posts with `token` (OAuth 2.0) or the four OAuth 1.0a keys, to the X API v2
    unless `url` says otherwise (the media upload is beside it)."""

    type: Literal["x"]
    url: str = X_TWEETS_URL
    # OAuth 2.0 user context: an access token with tweet.write (and media.write for images).
    token: SecretStr | None = None
    # OAuth 1.0a user context: the app's API key and secret, the account's access token and secret.
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_secret: SecretStr | None = None
    # Whether a post carries the article's hero image (uploaded first through the media upload).
    image: bool = True
    # The largest hero image uploaded (X takes images up to 5 MB); a larger one is posted without.
    max_image_bytes: int = Field(default=5 * 1024 * 1024, gt=0, le=5 * 1024 * 1024)
    what: ClassVar[str] = "an x target, which posts to X"
    takes_email: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = frozenset({"x"})

    @model_validator(mode="after")
    def _one_kind_of_credentials(self) -> XSettings:
        given = {name for name in ("token", *_OAUTH1_KEYS) if _value(getattr(self, name))}
        oauth1 = given & set(_OAUTH1_KEYS)
        if "token" in given and oauth1:
            raise ValueError(
                "has both token and OAuth 1.0a keys (expected one kind: token, or consumer_key, "
                "consumer_secret, access_token and access_secret)"
            )
        if "token" not in given and oauth1 != set(_OAUTH1_KEYS):
            missing = ", ".join(k for k in _OAUTH1_KEYS if k not in oauth1)
            what = f"lacks {missing}" if oauth1 else "has no credentials"
            raise ValueError(
                f"{what} (expected token: an OAuth 2.0 user access token, or all of consumer_key, "
                "consumer_secret, access_token and access_secret for OAuth 1.0a)"
            )
        return self

    def secret_values(self) -> list[str]:
        """Every secret value, to keep out of results."""
        return [v for v in (_value(getattr(self, n)) for n in ("token", *_OAUTH1_KEYS)) if v]

    def renew_hint(self) -> str:
        if _value(self.token):
            return "renew the OAuth 2.0 user access token in token: expired, revoked or without tweet.write"
        return "regenerate access_token and access_secret, or check consumer_key and consumer_secret"

    def authorization(self, method: str, url: str) -> str:
        """The Authorization header for one request: Bearer, or a fresh OAuth 1.0a signature."""
        if _value(self.token):
            return f"Bearer {_value(self.token)}"
        return oauth1_header(
            method,
            url,
            _value(self.consumer_key),
            _value(self.consumer_secret),
            _value(self.access_token),
            _value(self.access_secret),
            nonce=secrets.token_hex(16),
            timestamp=int(clock.now().timestamp()),
        )

    def connect(self, name: str, config: Config) -> XDelivery:
        from ..state import state_path  # state imports config, which finds this module

        delivery = XDelivery(name, self)
        delivery.uploads = UploadCache(state_path(config, UPLOADS_FILE))
        return delivery


def _value(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""
