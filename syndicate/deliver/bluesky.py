"""The `bluesky` target: a social post as an `app.bsky.feed.post` record, with a link card.

One XRPC session per connection (`com.atproto.server.createSession` with the handle and an app
password, when the connection opens); per post: the hero image downloaded and uploaded
(`com.atproto.repo.uploadBlob`) as the card's thumbnail, then `com.atproto.repo.createRecord`.
An `ExpiredToken` answer refreshes the session (`com.atproto.server.refreshSession`) and the
call is made once more.

Exactly once: the record key (`rkey`) is not left to the server but derived from the ledger key,
so the same message always names the same record. A post whose answer was lost is `unknown` like
any HTTP target's (http_post.py), but sending it again is safe: the server holds at most one
record under that key. Before posting, the record is looked up (`com.atproto.repo.getRecord`):
the reference PDS answers a second create under an existing key with a 500, not a named error,
so a resend finds its record that way; an answer that says the record exists (a named
`...AlreadyExists` error or 409, as other PDSes and the PDS's pending change answer) is checked
the same way. Either counts as `sent` only when the stored record is ours (the same text).

Only the createRecord goes through the connection that tells the ledger the post is with the
server (`handed`): logging in, the image and its upload cannot publish anything, so they use a
plain session and a failure there leaves the message `retry`. The password and the session's
tokens never reach a message.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import requests
from pydantic import Field, SecretStr, field_validator

from .. import __version__, clock
from ..errors import DeliveryError
from ..validation import short
from . import Message, MessageKey, Result, social_payload
from .http_post import HttpConnection, HttpDelivery, HttpSettings, _verify, http_session, reset_as_retry_after
from .media import ImageUnavailable, fetch_image
from .replies import PostedParts, parts_of, post_thread

if TYPE_CHECKING:
    from ..config import Config

BLUESKY_SERVICE = "https://bsky.social"
POST_COLLECTION = "app.bsky.feed.post"
# app.bsky.embed.external#external.thumb: a blob of image/*, at most this many bytes.
THUMB_MAX_BYTES = 1_000_000
# The server's `message` is quoted in results up to this many characters.
MESSAGE_CHARS = 300
# Said of a post found under its record key instead of made now.
ALREADY = " (already posted: found under its record key)"

# TIDs (the record keys of app.bsky.feed.post): 13 characters of base32-sortable.
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# A derived record key's timestamp falls in [2023-01-01, 2025-01-01): always in the past, so a
# client sorting by key never sees it as "from the future"; 2**10 clock ids on top make a
# collision between two messages of one account as likely as 1 in 6 * 10**16.
_TID_BASE_US = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_TID_SPAN_US = 2 * 365 * 86_400 * 1_000_000


def record_key(key: MessageKey, fresh_id: str = "", part: int = 0) -> str:
    """The post's rkey: a TID computed from the ledger key, so every attempt at the same message
    names the same record and the server refuses a second one. A deliberate `--resend`
    (`fresh_id`, that run's nonce) is a new post, so it gets a new key; so does each part of a
    thread after the first (`part`, 0-based)."""
    fields = [key.channel, key.target, key.draft_key, key.recipient, fresh_id]
    if part:
        fields.append(f"part {part}")
    text = "\x1f".join(fields)
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")
    micros = _TID_BASE_US + digest % _TID_SPAN_US
    value = (micros << 10) | (digest >> 64) % 1024
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def created_at(moment: datetime) -> str:
    """`createdAt` in the lexicon's datetime format: RFC 3339, UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BlueskyDelivery(HttpDelivery):
    settings: BlueskySettings

    def __init__(
        self,
        name: str,
        settings: BlueskySettings,
        language: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(name, settings, sleep)
        self.language = language  # site.language: the posts' `langs` when the article gives none

    @contextmanager
    def open(self, stop: threading.Event | None = None) -> Iterator[BlueskyConnection]:
        with http_session() as watched, requests.Session() as plain:
            plain.headers["User-Agent"] = f"syndicate/{__version__}"
            for session in (watched, plain):
                session.hooks["response"].append(reset_as_retry_after("ratelimit-reset"))
            connection = BlueskyConnection(self, watched, plain, stop)
            connection.log_in()
            yield connection


class BlueskyConnection(HttpConnection):
    """One logged-in session of a bluesky target, for a whole batch."""

    delivery: BlueskyDelivery

    def __init__(
        self,
        delivery: BlueskyDelivery,
        session: requests.Session,
        plain: requests.Session,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(delivery, session, stop)
        self.plain = plain
        self.did = ""
        self.access = ""
        self.refresh = ""

    # -- the session --------------------------------------------------------------------------

    def log_in(self) -> None:
        """createSession, once per connection. A refusal stops the batch with one line (the
        messages stay due: nothing was posted) naming what to renew."""
        d = self.delivery
        s = d.settings
        key = MessageKey("", d.name, "createSession", "")
        body = json.dumps({"identifier": s.handle, "password": s.password.get_secret_value()}).encode()
        answer = self._xrpc(key, "com.atproto.server.createSession", body, None, plain=True)
        if isinstance(answer, Result):
            raise DeliveryError(f"targets.{d.name}: cannot log in to Bluesky: {answer.detail}")
        if answer.status_code != 200:
            error, said = self._error(answer)
            if answer.status_code == 401 or error in ("AuthenticationRequired", "AccountTakedown"):
                raise DeliveryError(
                    f"targets.{d.name}: Bluesky refused the login of {s.handle} "
                    f"(HTTP {answer.status_code} {error}: {said}); renew the app password "
                    "(Settings > Privacy and security > App passwords) and set it in "
                    f"targets.{d.name}.password"
                )
            raise DeliveryError(
                f"targets.{d.name}: Bluesky refused the login of {s.handle} "
                f"(HTTP {answer.status_code} {error}: {said})"
            )
        self._take_session(answer)

    def _take_session(self, answer: requests.Response) -> None:
        try:
            data = answer.json()
            self.access, self.refresh, self.did = data["accessJwt"], data["refreshJwt"], data["did"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(
                f"targets.{self.delivery.name}: the Bluesky service answered the login without a session"
            ) from None
        if not all(isinstance(v, str) and v for v in (self.access, self.refresh, self.did)):
            raise DeliveryError(f"targets.{self.delivery.name}: the Bluesky session is incomplete")

    def _refresh_session(self, key: MessageKey) -> Result | None:
        """refreshSession with the refresh token; None when the session is fresh again."""
        answer = self._xrpc(key, "com.atproto.server.refreshSession", b"", self.refresh, plain=True)
        if isinstance(answer, Result):
            return _not_posted(answer)
        if answer.status_code != 200:
            error, said = self._error(answer)
            return Result(
                key,
                "failed",
                f"HTTP {answer.status_code} {error}: Bluesky refused to refresh the session of "
                f"targets.{self.delivery.name} ({said}); check its app password",
            )
        try:
            self._take_session(answer)
        except DeliveryError as exc:
            return Result(key, "retry", str(exc))
        return None

    # -- one post -----------------------------------------------------------------------------

    def send(self, message: Message) -> Result:
        d = self.delivery
        key = message.key
        payload = social_payload(message, d.name, "a bluesky target", ("text", "link"))
        if isinstance(payload, Result):
            return payload
        parts = parts_of(payload)
        if parts is not None:
            return self._thread(message, payload, parts)
        rkey = record_key(key, message.fresh_id)
        # A resend after a lost answer: the record may be there already (see the module docstring).
        found = self._ours(key, rkey, payload["text"])
        if isinstance(found, str):
            return Result(key, "sent", found.split(" ")[0] + ALREADY)
        if found is not None:
            return found
        embed, note = self._card(key, payload)
        if isinstance(embed, Result):
            return embed
        made = self._create(key, rkey, payload, payload, embed, None)
        if isinstance(made, Result):
            return made
        ref, already = made
        return Result(key, "sent", ref.split(" ")[0] + (ALREADY if already else note))

    def _thread(self, message: Message, payload: dict[str, Any], parts: list[dict[str, Any]]) -> Result:
        """A thread: each part a record under its own derived key, replying to the one before
        (`reply.root` the first part, `reply.parent` the previous one, by uri and cid). The keys
        say what is up already, so nothing is kept beside (replies.py)."""
        key = message.key
        notes: list[str] = []

        def part(index: int, composed: dict[str, Any], refs: list[str]) -> str | Result:
            rkey = record_key(key, message.fresh_id, index)
            found = self._ours(key, rkey, str(composed["text"]))
            if found is not None:
                return found
            embed: dict[str, Any] | None = None
            if index == 0:
                card, note = self._card(key, payload)
                if isinstance(card, Result):
                    return card
                embed = card
                notes.append(note.strip())
            reply = None
            if refs:
                (root_uri, root_cid), (parent_uri, parent_cid) = refs[0].split(" "), refs[-1].split(" ")
                reply = {
                    "root": {"uri": root_uri, "cid": root_cid},
                    "parent": {"uri": parent_uri, "cid": parent_cid},
                }
            made = self._create(key, rkey, composed, payload, embed, reply)
            return made if isinstance(made, Result) else made[0]

        result = post_thread(message, parts, PostedParts(None, self.delivery.name, message), part)
        detail = " ".join([result.detail, *(n for n in notes if n)])
        return Result(key, result.outcome, detail)

    def _create(
        self,
        key: MessageKey,
        rkey: str,
        composed: dict[str, Any],
        payload: dict[str, Any],
        embed: dict[str, Any] | None,
        reply: dict[str, Any] | None,
    ) -> tuple[str, bool] | Result:
        """createRecord of one post under `rkey`: ("<uri> <cid>", whether it was there already)
        once it is there, else the Result."""
        d = self.delivery
        text = str(composed["text"])
        uri = f"at://{self.did}/{POST_COLLECTION}/{rkey}"
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": created_at(clock.now()),
        }
        if composed.get("facets"):
            record["facets"] = list(composed["facets"])
        lang = (payload.get("article") or {}).get("lang") or d.language
        if lang:
            record["langs"] = [lang]
        if reply is not None:
            record["reply"] = reply
        if embed is not None:
            record["embed"] = embed
        request = {"repo": self.did, "collection": POST_COLLECTION, "rkey": rkey, "record": record}
        body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        answer = self._authorized(key, "com.atproto.repo.createRecord", body, "application/json")
        if isinstance(answer, Result):
            if answer.outcome == "unknown":
                return Result(key, "unknown", f"{answer.detail} (a resend is safe: it names record {rkey})")
            if answer.outcome == "retry":  # a 5xx: the reference PDS's answer to an existing key
                return self._found(key, rkey, text) or answer
            return answer
        status = answer.status_code
        if status == 200:
            try:
                made = answer.json()
                return f"{made['uri']} {made['cid']}", False
            except (ValueError, KeyError, TypeError):
                return self._found(key, rkey, text) or (f"{uri} -", False)
        error, said = self._error(answer)
        if status == 409 or "AlreadyExists" in error or "already exists" in said.lower():
            # A record is there under our key; unread, it may or may not be this post.
            return self._found(key, rkey, text) or Result(
                key, "unknown", f"HTTP {status} {error}: record {rkey} exists but could not be read back"
            )
        if status in (401, 403):
            problem = (
                f"HTTP {status} {error}: Bluesky refused the session of targets.{d.name} "
                "(renew its app password, or the account is suspended)"
            )
        else:
            problem = f"HTTP {status} {error}".strip()
        return Result(key, "failed", f"{problem}: {said}" if said else problem)

    def _found(self, key: MessageKey, rkey: str, text: str) -> tuple[str, bool] | Result | None:
        """`_ours` after a create that did not say it made the record."""
        found = self._ours(key, rkey, text)
        return (found, True) if isinstance(found, str) else found

    def _ours(self, key: MessageKey, rkey: str, text: str) -> str | Result | None:
        """ "<uri> <cid>" when the record under `rkey` exists and holds `text`; `failed` when it
        holds another post; None when there is none (or it cannot be read: the create decides)."""
        query = {"repo": self.did, "collection": POST_COLLECTION, "rkey": rkey}
        try:
            answer = self.plain.get(
                self._url("com.atproto.repo.getRecord"),
                params=query,
                timeout=self.delivery.settings.timeout,
                verify=_verify(self.delivery.settings),
                allow_redirects=False,
            )
        except requests.RequestException:
            return None
        if answer.status_code != 200:
            return None
        try:
            found = answer.json()
            value = found["value"]
        except (ValueError, KeyError, TypeError):
            return None
        if isinstance(value, dict) and value.get("text") == text:
            uri = found.get("uri") or f"at://{self.did}/{POST_COLLECTION}/{rkey}"
            return f"{uri} {found.get('cid') or '-'}"
        return Result(
            key,
            "failed",
            f"targets.{self.delivery.name}: record {rkey} already holds another post (not ours: left alone)",
        )

    def _card(self, key: MessageKey, payload: dict[str, Any]) -> tuple[dict[str, Any] | Result, str]:
        """The link card (app.bsky.embed.external) and a note for the result when it has no
        thumbnail; a `Result` when the session could not be renewed for the upload."""
        article = payload.get("article") or {}
        external: dict[str, Any] = {
            "uri": payload["link"],
            "title": str(article.get("title") or payload["link"]),
            "description": str(article.get("description") or ""),
        }
        card = {"$type": "app.bsky.embed.external", "external": external}
        image = payload.get("image")
        if not image:
            return card, ""
        got = self._download(image)
        if isinstance(got, str):
            return card, f" (link card without a thumbnail: {got})"
        data, mime = got
        answer = self._authorized(key, "com.atproto.repo.uploadBlob", data, mime, plain=True)
        if isinstance(answer, Result):
            if answer.outcome == "failed":
                return answer, ""
            return card, f" (link card without a thumbnail: upload {_not_posted(answer).detail})"
        if answer.status_code != 200:
            error, said = self._error(answer)
            return (
                card,
                f" (link card without a thumbnail: upload refused, HTTP {answer.status_code} {error})",
            )
        try:
            blob = answer.json()["blob"]
            if not isinstance(blob, dict) or blob.get("$type") != "blob":
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return card, " (link card without a thumbnail: the upload's answer holds no blob)"
        external["thumb"] = blob
        return card, ""

    def _download(self, url: str) -> tuple[bytes, str] | str:
        """The hero image's bytes and type, or why not (media.py's rules: no token sent to the
        site), within the lexicon's 1,000,000 bytes (read no further than that) and `timeout`."""
        try:
            image = fetch_image(url, max_bytes=THUMB_MAX_BYTES, timeout=self.delivery.settings.timeout)
        except ImageUnavailable as exc:
            return str(exc)
        return image.data, image.content_type

    # -- XRPC -----------------------------------------------------------------------------------

    def _authorized(
        self, key: MessageKey, nsid: str, body: bytes, content_type: str, plain: bool = False
    ) -> requests.Response | Result:
        """An XRPC procedure with the access token; on `ExpiredToken` the session is refreshed
        and the call made once more (the refusal proves the first call did nothing)."""
        answer = self._xrpc(key, nsid, body, None, content_type, plain)
        if (
            isinstance(answer, requests.Response)
            and answer.status_code in (400, 401)
            and self._error(answer)[0] == "ExpiredToken"
        ):
            refused = self._refresh_session(key)
            if refused is not None:
                return refused
            answer = self._xrpc(key, nsid, body, None, content_type, plain)
        return answer

    def _xrpc(
        self,
        key: MessageKey,
        nsid: str,
        body: bytes,
        token: str | None,
        content_type: str = "application/json",
        plain: bool = False,
    ) -> requests.Response | Result:
        """One XRPC procedure through `HttpConnection.post` (its retries, Retry-After and
        `unknown` rules), at the service's /xrpc/<nsid>, with `token` (default: the access
        token) when the session has one. `plain`: not the post itself (see the docstring)."""
        d = self.delivery
        at = d.settings.model_copy(update={"url": self._url(nsid)})
        caller = HttpConnection(
            HttpDelivery(d.name, at, d.sleep), self.plain if plain else self.session, self.stop
        )

        def headers() -> dict[str, str]:
            bearer = token if token is not None else self.access
            fresh = {"Content-Type": content_type} if body else {}
            if bearer:
                fresh["Authorization"] = f"Bearer {bearer}"
            return fresh

        return caller.post(key, body, headers)

    def _url(self, nsid: str) -> str:
        return f"{self.delivery.settings.url.rstrip('/')}/xrpc/{nsid}"

    def _error(self, answer: requests.Response) -> tuple[str, str]:
        """XRPC's error name and message from an answer's body, on one line, short, and with no
        password or token in them."""
        try:
            data = answer.json()
        except ValueError:
            return "", ""
        if not isinstance(data, dict):
            return "", ""
        error, said = data.get("error"), data.get("message")
        error = error if isinstance(error, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", error) else ""
        said = said if isinstance(said, str) else ""
        secrets = (self.delivery.settings.password.get_secret_value(), self.access, self.refresh)
        for secret in secrets:
            if secret:
                said = said.replace(secret, "[secret]")
        return error, " ".join(said.split())[:MESSAGE_CHARS]


def _not_posted(result: Result) -> Result:
    """A call that cannot publish (login, upload): a lost answer there is a `retry`, not `unknown`."""
    if result.outcome == "unknown":
        return Result(
            result.key, "retry", result.detail.replace("the receiver may have it", "nothing was posted")
        )
    return result


class BlueskySettings(HttpSettings):
    """`type: bluesky`: posts as `handle` with an app `password`, to `service` (bsky.social
    unless another PDS is named)."""

    type: Literal["bluesky"]
    url: str = Field(default=BLUESKY_SERVICE, alias="service")
    handle: str | None = Field(default=None, validate_default=True)
    password: SecretStr = Field(default=SecretStr(""), validate_default=True)
    what: ClassVar[str] = "a bluesky target, which posts to Bluesky"
    takes_email: ClassVar[bool] = False
    networks: ClassVar[frozenset[str] | None] = frozenset({"bluesky"})

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str | None) -> str:
        """A handle (a domain name) or a DID: what createSession takes as its identifier."""
        text = (value or "").strip().lstrip("@")
        domain = r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
        if not (re.fullmatch(domain, text) or re.fullmatch(r"did:[a-z]+:[a-zA-Z0-9._:%-]+", text)):
            what = "is missing" if not text else f"{short(value)} is not a handle"
            raise ValueError(
                f"{what} (expected the account's handle, e.g. news.example.org or you.bsky.social)"
            )
        return text

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("is missing or empty (expected an app password, e.g. ${BLUESKY_APP_PASSWORD})")
        return value

    def connect(self, name: str, config: Config) -> BlueskyDelivery:
        return BlueskyDelivery(name, self, config.site.language)
