"""The x target against a real HTTP server on 127.0.0.1 standing in for the X API v2.

The server checks each request the way X documents it: the credentials (a Bearer token, or an
OAuth 1.0a HMAC-SHA1 signature it recomputes itself and refuses with 401 when it differs), the
one-shot media upload's JSON body, the media metadata's JSON body (`POST /2/media/metadata`:
`id` of a media it issued, `metadata.alt_text.text` of at most 1000 characters, made after the
upload and before a post is made with the media), the post's JSON body and its length in
weighted characters (counted here by X's rules, not by the code under test), and a duplicate
text refused with 403.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import sqlite3
import threading
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest
from click.testing import CliRunner

from syndicate import clock
from syndicate.cli import cli
from syndicate.compose.social import compose_post
from syndicate.config import load_config
from syndicate.content import load_articles
from syndicate.deliver import Message, MessageKey, make_target
from syndicate.deliver.x import X_TWEETS_URL, oauth1_header
from syndicate.errors import ConfigError
from syndicate.send import send as send_now

from .conftest import serving

TOKEN = "x-oauth2-user-token-5d1e"
OAUTH1 = {
    "consumer_key": "ck-9Qz",
    "consumer_secret": "cs-secret-81b",
    "access_token": "123-at-77c",
    "access_secret": "as-secret-3fe",
}
ENV = {
    "X_USER_TOKEN": TOKEN,
    "X_API_KEY": OAUTH1["consumer_key"],
    "X_API_SECRET": OAUTH1["consumer_secret"],
    "X_ACCESS_TOKEN": OAUTH1["access_token"],
    "X_ACCESS_SECRET": OAUTH1["access_secret"],
}
OAUTH1_CONFIG = {
    "consumer_key": "${X_API_KEY}",
    "consumer_secret": "${X_API_SECRET}",
    "access_token": "${X_ACCESS_TOKEN}",
    "access_secret": "${X_ACCESS_SECRET}",
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
MEDIA_ID = "1880028106020515840"
T0 = datetime(2026, 12, 7, 8, 5, tzinfo=UTC)


# -- X's weighted length, counted independently ---------------------------------------------------

_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)


def weighted_length(text: str) -> int:
    """X's count: every URL 23; code points up to U+10FF and general punctuation 1; an emoji
    (with its variation selector or skin tone) 2; everything else (CJK...) 2."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    for piece in _URL.split(text):
        for char in piece:
            cp = ord(char)
            if cp in (0xFE0F, 0x200D) or 0x1F3FB <= cp <= 0x1F3FF:
                continue  # part of the emoji before it, counted there
            light = cp <= 0x10FF or 0x2000 <= cp <= 0x200D or 0x2010 <= cp <= 0x201F or 0x2032 <= cp <= 0x2037
            total += 1 if light else 2
    return total + 23 * len(_URL.findall(text))


def test_the_independent_counter_counts_as_x_documents():
    assert weighted_length("hello") == 5
    assert weighted_length("日本語") == 6
    assert weighted_length("🌊") == 2
    assert weighted_length("see https://example.com/a/very/long/path/that/is/long") == 4 + 23


# -- the fake X API -----------------------------------------------------------------------------


def _enc(value: str) -> str:
    return quote(value, safe="~")


def expected_signature(method: str, url: str, oauth: dict[str, str], secret_key: str) -> str:
    """HMAC-SHA1 over the base string of RFC 5849 3.4.1, computed without the code under test."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in oauth.items() if k != "oauth_signature"] + parse_qsl(parts.query)
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in params))
    base = f"{method}&{_enc(f'{parts.scheme}://{parts.netloc}{parts.path}')}&{_enc(normalized)}"
    return base64.b64encode(hmac.new(secret_key.encode(), base.encode(), hashlib.sha1).digest()).decode()


def test_the_oauth1_signature_matches_x_s_documented_example():
    """X's "Creating a signature" example (its body parameter here in the query: the base string
    is the same), so sorting and percent-encoding are checked against X's own numbers too."""
    status = quote("Hello Ladies + Gentlemen, a signed OAuth request!", safe="")
    header = oauth1_header(
        "POST",
        f"https://api.twitter.com/1.1/statuses/update.json?include_entities=true&status={status}",
        "xvz1evFS4wEEPTGEFPHBog",
        "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp=1318622958,
    )
    assert 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"' in header


class FakeX(ThreadingHTTPServer):
    """POST /2/media/upload, POST /2/media/metadata, POST /2/tweets and the site's hero image, on
    127.0.0.1."""

    def __init__(self, auth: str = "oauth2") -> None:
        super().__init__(("127.0.0.1", 0), _XHandler)
        self.auth = auth
        self.consumer_secret = OAUTH1["consumer_secret"]
        self.seen: list[tuple[str, str]] = []
        self.tweets: list[dict] = []
        self.uploads: list[dict] = []
        self.nonces: set[str] = set()
        self.script: list[tuple[int, dict[str, str], dict]] = []  # answers to the next tweets
        self.tweet_delay = 0.0
        self.upload_delay = 0.0
        self.upload_status = 200
        self.issued: set[str] = set()  # media ids this server handed out
        self.answers: dict[int, tuple[int, dict[str, str], dict]] = {}  # for the n-th POST /2/tweets
        self.hold_at: int | None = None  # the n-th post is made, its answer late by tweet_delay
        self.posts = 0
        self.alt: dict[str, str] = {}  # media id -> the alt text set on it
        self.metadata_status = 200  # else the answer to POST /2/media/metadata (a refusal)
        self.on_metadata = lambda: None  # called as a metadata request arrives
        self.attached: set[str] = set()  # media ids a post (made) carries
        self.violations: list[str] = []  # requests not as X documents them
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def problem(title: str, detail: str, kind: str, status: int) -> dict:
    return {"title": title, "detail": detail, "type": kind, "status": status}


class _XHandler(BaseHTTPRequestHandler):
    server: FakeX

    def _answer(self, status: int, body: dict | bytes | None = None, headers: dict | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if not isinstance(body, bytes):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up waiting (a lost answer)
            self.wfile.write(raw)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if self.server.auth == "oauth2":
            return header == f"Bearer {TOKEN}"
        if not header.startswith("OAuth "):
            return False
        oauth = {k: unquote(v) for k, v in re.findall(r'([\w]+)="([^"]*)"', header[6:])}
        if set(oauth) != {
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token",
            "oauth_version",
        }:
            return False
        if oauth["oauth_nonce"] in self.server.nonces:
            return False  # a replayed nonce
        self.server.nonces.add(oauth["oauth_nonce"])
        if abs(int(oauth["oauth_timestamp"]) - clock.now().timestamp()) > 300:
            return False
        key = f"{_enc(self.server.consumer_secret)}&{_enc(OAUTH1['access_secret'])}"
        wanted = expected_signature("POST", f"{self.server.base}{self.path}", oauth, key)
        return (
            oauth["oauth_consumer_key"] == OAUTH1["consumer_key"]
            and oauth["oauth_token"] == OAUTH1["access_token"]
            and oauth["oauth_signature_method"] == "HMAC-SHA1"
            and oauth["oauth_version"] == "1.0"
            and hmac.compare_digest(oauth["oauth_signature"], wanted)
        )

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(("GET", self.path))
        if self.path == "/img/hero.png":
            self._answer(200, PNG, {"Content-Type": "image/png"})
        else:
            self._answer(404, b"")

    def do_POST(self) -> None:  # noqa: N802
        self.server.seen.append(("POST", self.path))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._authorized():
            self._answer(401, problem("Unauthorized", "Unauthorized", "about:blank", 401))
            return
        if self.headers.get("Content-Type") != "application/json":
            self._answer(400, problem("Invalid Request", "expected JSON", "about:blank", 400))
            return
        body = json.loads(raw)
        if self.path == "/2/media/upload":
            assert set(body) == {"media", "media_category", "media_type"}
            assert body["media_category"] == "tweet_image" and body["media_type"] == "image/png"
            assert base64.b64decode(body["media"], validate=True) == PNG
            self.server.uploads.append(body)
            time.sleep(self.server.upload_delay)
            if self.server.upload_status != 200:
                said = problem(
                    "Forbidden", "You are not permitted to perform this action.", "about:blank", 403
                )
                self._answer(self.server.upload_status, said)
                return
            media_id = str(int(MEDIA_ID) + len(self.server.issued))  # a new id per upload
            self.server.issued.add(media_id)
            data = {
                "id": media_id,
                "media_key": f"3_{media_id}",
                "size": len(PNG),
                "expires_after_secs": 86400,
                "image": {"image_type": "image/png", "w": 1, "h": 1},
            }
            self._answer(200, {"data": data})
        elif self.path == "/2/media/metadata":
            self._metadata(body)
        elif self.path == "/2/tweets":
            assert set(body) <= {"text", "media", "reply"} and isinstance(body["text"], str)
            with self.server.lock:
                self.server.posts += 1
                nth = self.server.posts
            if nth in self.server.answers:
                status, headers, said = self.server.answers[nth]
                self._answer(status, said, headers)
                return
            if "reply" in body:  # a reply names a post that exists (X answers 400 otherwise)
                reply = body["reply"]
                known = {t["id"] for t in self.server.tweets}
                if set(reply) != {"in_reply_to_tweet_id"} or reply["in_reply_to_tweet_id"] not in known:
                    said = problem("Invalid Request", "reply.in_reply_to_tweet_id", "about:blank", 400)
                    self._answer(400, said)
                    return
            ids = body.get("media", {}).get("media_ids", [])
            if not set(ids) <= self.server.issued:
                said = problem(
                    "Invalid Request",
                    "One or more parameters to your request was invalid.",
                    "https://api.twitter.com/2/problems/invalid-request",
                    400,
                )
                said["errors"] = [
                    {"parameters": {"media.media_ids": ids}, "message": "Your media IDs are invalid."}
                ]
                self._answer(400, said)
                return
            if weighted_length(body["text"]) > 280:
                self._answer(400, problem("Invalid Request", "text is too long", "about:blank", 400))
                return
            if self.server.script:
                status, headers, said = self.server.script.pop(0)
                self._answer(status, said, headers)
                return
            with self.server.lock:
                if any(t["text"] == body["text"] for t in self.server.tweets):
                    detail = "You are not allowed to create a Tweet with duplicate content."
                    self._answer(403, problem("Forbidden", detail, "about:blank", 403))
                    return
                self.server.attached.update(ids)
                alts = [self.server.alt[i] for i in ids if i in self.server.alt]
                tweet_id = str(1_900_000_000_000_000_000 + len(self.server.tweets) + 1)
                made = {**body, "id": tweet_id}
                self.server.tweets.append({**made, "alt": alts[0]} if alts else made)
            if self.server.hold_at in (None, nth):
                time.sleep(self.server.tweet_delay)
            self._answer(201, {"data": {"id": tweet_id, "text": body["text"]}})
        else:
            self._answer(404, b"")

    def _metadata(self, body: dict) -> None:
        """X's v2 "Create Media metadata": `{"id": ..., "metadata": {"alt_text": {"text": ...}}}`,
        the id a media of this account (^[0-9]{1,19}$), the text at most 1000 characters."""
        self.server.on_metadata()
        media_id = body.get("id")
        alt = body.get("metadata", {}).get("alt_text", {}).get("text") if isinstance(body, dict) else None
        if set(body) != {"id", "metadata"} or set(body["metadata"]) != {"alt_text"}:
            self.server.violations.append(f"metadata body keys {sorted(body)}")
        if not isinstance(alt, str) or set(body["metadata"]["alt_text"]) != {"text"}:
            self.server.violations.append("metadata without metadata.alt_text.text")
        if media_id in self.server.attached:
            self.server.violations.append(f"metadata of {media_id} after a post was made with it")
        if not isinstance(media_id, str) or not re.fullmatch(r"[0-9]{1,19}", media_id):
            self.server.violations.append(f"metadata id {media_id!r}")
        if self.server.metadata_status == 403:
            said = problem("Forbidden", "You are not permitted to perform this action.", "about:blank", 403)
            self._answer(403, said)
            return
        if self.server.metadata_status != 200:
            status = self.server.metadata_status
            self._answer(status, problem("Service Unavailable", "busy", "about:blank", status))
            return
        if media_id not in self.server.issued:
            said = problem("Invalid Request", "One or more parameters to your request was invalid.", "", 400)
            self._answer(400, said)
            return
        if not isinstance(alt, str) or len(alt) > 1000:
            self.server.violations.append(f"alt text of {len(alt or '')} characters")
            self._answer(400, problem("Invalid Request", "alt_text.text is too long", "about:blank", 400))
            return
        self.server.alt[media_id] = alt
        self._answer(200, {"data": {"id": media_id, "associated_metadata": {"alt_text": {"text": alt}}}})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_x():
    with serving(FakeX()) as server:
        yield server
    assert server.violations == []


@pytest.fixture
def fake_x1():
    with serving(FakeX(auth="oauth1")) as server:
        yield server
    assert server.violations == []


def x_site(site, server: FakeX, monkeypatch, *, hero: bool = True, **options) -> None:
    """An x channel posting one article (CJK and an emoji in its words) to the fake server."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    credentials = OAUTH1_CONFIG if server.auth == "oauth1" else {"token": "${X_USER_TOKEN}"}
    site.data["targets"]["x"] = {
        "type": "x",
        "url": f"{server.base}/2/tweets",
        **credentials,
        "retries": 0,
        **options,
    }
    site.data["channels"]["x"] = {"kind": "social", "network": "x", "targets": ["x"]}
    hero_line = f"heroImage: {{path: '{server.base}/img/hero.png', alt: 'A lamp room'}}\n" if hero else ""
    site.article(
        "lamps.md",
        "---\ntitle: 灯台の記録 Lamps 🌊 and how harbour lamps are kept through the long winter nights\n"
        "description: 灯台守のノート。" + "How lamps are kept, cleaned and lit every evening. " * 6 + "\n"
        f"{hero_line}"
        f"publish_date: '{(clock.now() - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}'\n---\nText.\n",
    )


def send_x(site):
    return send_now(site.config(), select="all", channels=["x"])


def x_payload(site) -> dict:
    config = site.config()
    [article] = load_articles(config).articles
    post, problems = compose_post(article, "x", config)
    assert post is not None, problems
    return post.as_dict()


def one(site, payload, **target_options):
    target = make_target("x", site.config())
    target.slept = []
    target.sleep = target.slept.append
    with target.open() as connection:
        return target, connection.send(Message(MessageKey("x", "x", "lamps", ""), "h1", lambda: payload))


# -- the request sequence -----------------------------------------------------------------------


def test_syndicate_send_uploads_the_image_then_posts_it_once(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    result = CliRunner().invoke(
        cli, ["--config", str(site.write_config()), "send", "--all", "--channel", "x"]
    )
    assert result.exit_code == 0, result.output
    assert fake_x.seen == [
        ("GET", "/img/hero.png"),
        ("POST", "/2/media/upload"),
        ("POST", "/2/media/metadata"),
        ("POST", "/2/tweets"),
    ]
    [tweet] = fake_x.tweets
    assert tweet["media"] == {"media_ids": [MEDIA_ID]} and tweet["alt"] == "A lamp room"
    assert "灯台" in tweet["text"] and "https://example.com/articles/" in tweet["text"]
    # Cut to fit by the composer: near the limit, CJK and the emoji counted twice, the link as 23.
    assert 270 <= weighted_length(tweet["text"]) <= 280 < len(tweet["text"]) + 20
    ledger = load_config(site.config_path).state_dir / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT status FROM deliveries").fetchall()
    assert rows == [("sent",)]
    again = CliRunner().invoke(cli, ["--config", str(site.config_path), "send", "--all", "--channel", "x"])
    assert again.exit_code == 0, again.output
    assert len(fake_x.tweets) == 1 and len(fake_x.uploads) == 1  # the ledger says sent: nothing again
    for where in (result.output, again.output):
        assert TOKEN not in where


def test_oauth1_requests_are_signed_as_x_checks_them(site, fake_x1, monkeypatch):
    x_site(site, fake_x1, monkeypatch)
    target, result = one(site, x_payload(site))
    assert result.outcome == "sent" and result.detail == "1900000000000000001"
    assert fake_x1.seen == [
        ("GET", "/img/hero.png"),
        ("POST", "/2/media/upload"),
        ("POST", "/2/media/metadata"),
        ("POST", "/2/tweets"),
    ]
    assert len(fake_x1.nonces) == 3  # each request its own nonce, each signature checked
    assert fake_x1.tweets[0]["alt"] == "A lamp room"


def test_a_bad_oauth1_signature_is_refused_with_401_and_a_line_to_renew(site, fake_x1, monkeypatch):
    x_site(site, fake_x1, monkeypatch, image=False)
    fake_x1.consumer_secret = "the-server-knows-another-secret"
    _, result = one(site, x_payload(site))
    assert result.outcome == "failed" and "\n" not in result.detail
    assert result.detail == (
        "HTTP 401: X refused the credentials of targets.x (regenerate access_token and access_secret, "
        "or check consumer_key and consumer_secret): Unauthorized: Unauthorized"
    )
    assert fake_x1.tweets == []


def test_a_refused_oauth2_token_names_the_target_and_what_to_renew(site, fake_x, monkeypatch, capsys):
    x_site(site, fake_x, monkeypatch, image=False)
    monkeypatch.setenv("X_USER_TOKEN", "an-expired-token")
    _, result = one(site, x_payload(site))
    assert result.outcome == "failed"
    assert result.detail.startswith(
        "HTTP 401: X refused the credentials of targets.x (renew the OAuth 2.0 user access token"
    )
    assert "an-expired-token" not in result.detail + capsys.readouterr().out


# -- the upload, reused -------------------------------------------------------------------------


def test_a_post_retried_on_a_later_run_reuses_the_upload_until_it_nears_expiry(
    site, fake_x, monkeypatch, clock_at
):
    clock_at(T0)
    x_site(site, fake_x, monkeypatch)
    fake_x.script.append((503, {}, problem("Service Unavailable", "busy", "about:blank", 503)))
    assert not send_x(site).ok
    assert send_x(site).ok
    assert [s for s in fake_x.seen if s != ("POST", "/2/tweets")] == [
        ("GET", "/img/hero.png"),
        ("POST", "/2/media/upload"),
        ("POST", "/2/media/metadata"),
    ]  # once: the second run posted with the media id it had, its alt text already set
    assert fake_x.tweets[0]["alt"] == "A lamp room"
    uploads = json.loads((site.config().state_dir / "uploads.json").read_text())
    usable_until = datetime.fromisoformat(uploads["x"][f"{fake_x.base}/img/hero.png"].split(" ")[1])
    assert usable_until == pytest.approx(T0 + timedelta(hours=23), abs=timedelta(seconds=5))

    # A later post with the same image, 23 h after the upload: X would soon drop the id.
    fake_x.tweets.clear()
    site.article("lamps.md", (site.content / "lamps.md").read_text().replace("Lamps", "Lanterns"))
    clock_at(T0 + timedelta(hours=23, minutes=1))
    _, result = one(site, x_payload(site))
    assert result.outcome == "sent"
    assert [s for s in fake_x.seen if s[1] == "/2/media/upload"] == [("POST", "/2/media/upload")] * 2
    assert [s for s in fake_x.seen if s[1] == "/2/media/metadata"] == [("POST", "/2/media/metadata")] * 2


def test_an_image_that_cannot_be_had_posts_without_it(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    payload = {**x_payload(site), "image": f"{fake_x.base}/img/missing.png"}
    _, result = one(site, payload)
    assert result.outcome == "sent"
    assert result.detail == "1900000000000000001; no image: the image URL answered HTTP 404"
    assert "media" not in fake_x.tweets[0] and ("POST", "/2/media/upload") not in fake_x.seen


def test_a_media_id_x_no_longer_knows_is_uploaded_again_next_time(site, fake_x, monkeypatch, clock_at):
    clock_at(T0)
    x_site(site, fake_x, monkeypatch)
    hero = f"{fake_x.base}/img/hero.png"
    uploads = site.config().state_dir / "uploads.json"
    uploads.parent.mkdir(parents=True, exist_ok=True)
    uploads.write_text(json.dumps({"x": {hero: f"777 {(T0 + timedelta(hours=20)).isoformat()}"}}))
    _, result = one(site, x_payload(site))
    assert result.outcome == "retry" and fake_x.tweets == []
    assert result.detail.startswith("HTTP 400: X no longer knows media id 777")
    _, result = one(site, x_payload(site))
    assert result.outcome == "sent" and fake_x.tweets[0]["media"] == {"media_ids": [MEDIA_ID]}
    assert fake_x.seen == [
        ("POST", "/2/media/metadata"),  # an entry of before alt text: set on it, X refuses (400)
        ("POST", "/2/tweets"),
        ("GET", "/img/hero.png"),
        ("POST", "/2/media/upload"),
        ("POST", "/2/media/metadata"),
        ("POST", "/2/tweets"),
    ]


def test_an_upload_whose_answer_is_lost_posts_nothing_and_is_retried(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, timeout=1)
    fake_x.upload_delay = 2.0
    _, result = one(site, x_payload(site))
    assert result.outcome == "retry" and fake_x.tweets == []
    assert result.detail == (
        "image upload not finished (no answer after the request was sent (ReadTimeout: none within 1 s): "
        "the receiver may have it); nothing posted"
    )


def test_an_upload_refused_for_lack_of_permission_fails_before_anything_is_posted(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    fake_x.upload_status = 403
    _, result = one(site, x_payload(site))
    assert result.outcome == "failed" and fake_x.tweets == []
    assert result.detail.startswith(
        "HTTP 403: X refused the post of targets.x (expected an app with Read and write"
    )
    assert ("POST", "/2/tweets") not in fake_x.seen


# -- the image's alt text -----------------------------------------------------------------------

ALT_MARK = re.compile(r"[0-9]{19} \S+ alt:[0-9a-f]{16}")


def uploads_entry(site, server: FakeX) -> str:
    found = json.loads((site.config().state_dir / "uploads.json").read_text())
    return found["x"][f"{server.base}/img/hero.png"]


def test_the_alt_text_is_set_on_the_upload_before_the_post_and_remembered(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    _, result = one(site, x_payload(site))
    assert result.outcome == "sent" and result.detail == "1900000000000000001"
    assert fake_x.alt == {MEDIA_ID: "A lamp room"} and fake_x.tweets[0]["alt"] == "A lamp room"
    assert ALT_MARK.fullmatch(uploads_entry(site, fake_x))
    # Another post with the same image and words for it: the upload and its alt text reused.
    body = {**x_payload(site), "text": "Lamps, again https://example.com/articles/lamps/"}
    assert one(site, body)[1].outcome == "sent"
    assert [s[1] for s in fake_x.seen].count("/2/media/upload") == 1
    assert [s[1] for s in fake_x.seen].count("/2/media/metadata") == 1
    assert fake_x.tweets[1]["media"] == {"media_ids": [MEDIA_ID]}


def test_no_alt_text_makes_no_metadata_request(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    body = x_payload(site)
    body["article"] = {**body["article"], "hero_alt": None}
    _, result = one(site, body)
    assert result.outcome == "sent" and result.detail == "1900000000000000001"
    assert fake_x.seen == [("GET", "/img/hero.png"), ("POST", "/2/media/upload"), ("POST", "/2/tweets")]
    assert fake_x.tweets[0]["media"] == {"media_ids": [MEDIA_ID]} and "alt" not in fake_x.tweets[0]


def test_a_refused_alt_text_still_posts_the_image_and_says_why(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    fake_x.metadata_status = 403
    _, result = one(site, x_payload(site))
    assert result.outcome == "sent"
    assert result.detail == (
        "1900000000000000001; alt text not set: X refused it "
        "(HTTP 403: Forbidden: You are not permitted to perform this action.)"
    )
    assert fake_x.seen[-2:] == [("POST", "/2/media/metadata"), ("POST", "/2/tweets")]
    assert fake_x.tweets[0]["media"] == {"media_ids": [MEDIA_ID]} and "alt" not in fake_x.tweets[0]
    # The published media is not described afterwards: the next post uploads the image anew.
    assert uploads_entry(site, fake_x) == ""
    fake_x.metadata_status = 200
    body = {**x_payload(site), "text": "Lamps, again https://example.com/articles/lamps/"}
    assert one(site, body)[1].outcome == "sent"
    second = str(int(MEDIA_ID) + 1)
    assert fake_x.tweets[1]["media"] == {"media_ids": [second]} and fake_x.alt == {second: "A lamp room"}


def test_an_alt_text_not_set_is_set_when_the_post_is_retried_with_the_same_upload(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, timeout=1)
    fake_x.metadata_status = 503  # X failing: no alt text, and the post fails too
    fake_x.script.append((503, {}, problem("Service Unavailable", "busy", "about:blank", 503)))
    _, result = one(site, x_payload(site))
    assert result.outcome == "retry" and fake_x.tweets == []
    assert not ALT_MARK.fullmatch(uploads_entry(site, fake_x))  # "<id> <until>": no alt text yet
    fake_x.metadata_status = 200
    _, result = one(site, x_payload(site))
    assert result.outcome == "sent" and result.detail == "1900000000000000001"
    assert [s[1] for s in fake_x.seen if s[0] == "POST"] == [
        "/2/media/upload",
        "/2/media/metadata",
        "/2/tweets",
        "/2/media/metadata",  # the same upload, its alt text set now
        "/2/tweets",
    ]
    assert fake_x.tweets[0]["alt"] == "A lamp room" and ALT_MARK.fullmatch(uploads_entry(site, fake_x))


def test_a_run_stopped_while_the_alt_text_is_set_posts_nothing(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, retries=2)
    stop = threading.Event()
    fake_x.metadata_status = 503
    fake_x.on_metadata = stop.set  # Ctrl-C while X answers 503: no further attempt, and no post
    target = make_target("x", site.config())
    target.sleep = lambda seconds: None
    with target.open(stop) as connection:
        result = connection.send(Message(MessageKey("x", "x", "lamps", ""), "h1", lambda: x_payload(site)))
    assert result.outcome == "retry" and fake_x.tweets == []
    assert result.detail == "stopped while setting the image's alt text; nothing posted"
    assert [s[1] for s in fake_x.seen].count("/2/media/metadata") == 1


def test_an_entry_from_before_alt_text_is_reused_and_described(site, fake_x, monkeypatch, clock_at):
    clock_at(T0)
    x_site(site, fake_x, monkeypatch)
    old = "1880028106020515999"
    fake_x.issued.add(old)
    uploads = site.config().state_dir / "uploads.json"
    uploads.parent.mkdir(parents=True, exist_ok=True)
    until = (T0 + timedelta(hours=20)).isoformat()
    uploads.write_text(json.dumps({"x": {f"{fake_x.base}/img/hero.png": f"{old} {until}"}}))
    _, result = one(site, x_payload(site))
    assert result.outcome == "sent"
    assert fake_x.seen == [("POST", "/2/media/metadata"), ("POST", "/2/tweets")]
    assert fake_x.alt == {old: "A lamp room"}
    assert uploads_entry(site, fake_x).startswith(f"{old} {until} alt:")


def test_the_same_image_with_other_words_for_it_is_uploaded_again(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    assert one(site, x_payload(site))[1].outcome == "sent"
    body = {**x_payload(site), "text": "Lamps, again https://example.com/articles/lamps/"}
    body["article"] = {**body["article"], "hero_alt": "The lamp room at dusk"}
    assert one(site, body)[1].outcome == "sent"
    second = str(int(MEDIA_ID) + 1)
    assert fake_x.alt == {MEDIA_ID: "A lamp room", second: "The lamp room at dusk"}
    assert fake_x.tweets[1]["media"] == {"media_ids": [second]}


def test_a_long_alt_text_is_cut_at_a_word_within_x_s_1000_characters(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    body = x_payload(site)
    words = "The lamp room 灯台 🕯️ seen from the gallery, its brass lens polished bright. " * 20
    body["article"] = {**body["article"], "hero_alt": words}
    _, result = one(site, body)
    assert result.outcome == "sent" and result.detail == "1900000000000000001"
    [alt] = fake_x.alt.values()
    assert 900 <= len(alt) <= 1000 < len(words) and alt.endswith("…")
    kept = alt.removesuffix("…")
    assert words.startswith(kept) and words[len(kept)] in " ,."  # a whole word kept, none split


# -- exactly once -------------------------------------------------------------------------------


def test_a_lost_answer_is_unknown_and_the_rerun_posts_nothing(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, timeout=1, retries=3)
    fake_x.tweet_delay = 2.0  # X keeps the post, its answer comes after the client gave up
    outcome = send_x(site)
    [(_, report)] = outcome.reports
    assert (report.sent, report.unknown) == (0, 1)
    fake_x.tweet_delay = 0
    assert send_x(site).ok  # schedule.unknown: skip
    assert len(fake_x.tweets) == 1
    assert [s for s in fake_x.seen if s == ("POST", "/2/tweets")] == [("POST", "/2/tweets")]


def test_a_duplicate_refused_by_x_is_failed_with_a_line_saying_so(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, image=False)
    payload = x_payload(site)
    assert one(site, payload)[1].outcome == "sent"
    _, result = one(site, payload)  # e.g. a --resend, or an `unknown` message sent again
    assert result.outcome == "failed"
    assert result.detail == (
        "HTTP 403: X refuses this text as a duplicate of a post already on the account of targets.x: "
        "an earlier attempt may have gone out; not sent again"
    )
    assert len(fake_x.tweets) == 1


# -- refusals and rate limits -------------------------------------------------------------------


def test_429_waits_as_retry_after_asks(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, image=False, retries=2)
    fake_x.script.append(
        (429, {"Retry-After": "3"}, problem("Too Many Requests", "slow", "about:blank", 429))
    )
    target, result = one(site, x_payload(site))
    assert result.outcome == "sent" and target.slept == [3] and len(fake_x.tweets) == 1


def test_429_waits_until_x_rate_limit_reset_on_syndicate_s_clock(site, fake_x, monkeypatch, clock_at):
    clock_at(T0)
    x_site(site, fake_x, monkeypatch, image=False, retries=2)
    reset = int(T0.timestamp()) + 42
    headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    fake_x.script.append((429, headers, problem("Too Many Requests", "slow", "about:blank", 429)))
    target, result = one(site, x_payload(site))
    assert result.outcome == "sent" and target.slept == [42.0] and len(fake_x.tweets) == 1


def test_403_without_credits_is_one_clear_line(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, image=False)
    detail = "Your enrolled account [123] does not have any credits to fulfill this request."
    fake_x.script.append(
        (403, {}, problem("CreditsDepleted", detail, "https://api.x.com/2/problems/credits", 403))
    )
    _, result = one(site, x_payload(site))
    assert result.outcome == "failed" and fake_x.tweets == []
    assert result.detail == (
        "HTTP 403: the X API account of targets.x has no credits left (CreditsDepleted): "
        f"CreditsDepleted: {detail}"
    )


def test_403_client_forbidden_is_one_clear_line(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch, image=False)
    said = problem(
        "Client Forbidden",
        "This request must be made using an approved developer account.",
        "https://api.twitter.com/2/problems/client-forbidden",
        403,
    )
    fake_x.script.append((403, {}, said))
    _, result = one(site, x_payload(site))
    assert result.outcome == "failed" and "\n" not in result.detail
    assert result.detail.startswith("HTTP 403: X does not let the app of targets.x post (client-forbidden")
    assert result.detail.endswith(
        "Client Forbidden: This request must be made using an approved developer account."
    )


# -- config and dry run -------------------------------------------------------------------------


def test_a_dry_run_contacts_no_server(site, fake_x, monkeypatch):
    x_site(site, fake_x, monkeypatch)
    outcome = send_now(site.config(), select="all", channels=["x"], dry_run=True)
    assert outcome.ok and fake_x.seen == []


def test_the_url_defaults_to_x_and_the_upload_is_beside_it(site, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    site.data["targets"]["x"] = {"type": "x", "token": "${X_USER_TOKEN}"}
    settings = site.config().targets["x"]
    assert settings.url == X_TWEETS_URL == "https://api.x.com/2/tweets"
    assert make_target("x", site.config()).media_url == "https://api.x.com/2/media/upload"
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    site.data["targets"]["x"] = {"type": "x", **OAUTH1_CONFIG}
    settings = site.config().targets["x"]
    for secret in OAUTH1.values():
        assert secret not in repr(settings)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({}, r"targets\.x: has no credentials \(expected token"),
        (
            {"token": "${X_USER_TOKEN}", **OAUTH1_CONFIG},
            r"targets\.x: has both token and OAuth 1\.0a keys",
        ),
        (
            {"consumer_key": "${X_API_KEY}", "access_token": "${X_ACCESS_TOKEN}"},
            r"targets\.x: lacks consumer_secret, access_secret \(expected token",
        ),
        (
            {"token": "${X_USER_TOKEN}", "url": "http://api.example.com/2/tweets"},
            r"targets\.x\.url: is not https",
        ),
    ],
    ids=["none", "both", "partial-oauth1", "plain-http"],
)
def test_config_mistakes_are_one_line_errors(site, monkeypatch, settings, error):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    site.data["targets"]["x"] = {"type": "x", **settings}
    with pytest.raises(ConfigError, match=error) as caught:
        load_config(site.write_config())
    assert "\n" not in str(caught.value)
    for secret in ENV.values():
        assert secret not in str(caught.value)


def test_an_email_channel_cannot_target_x(site, monkeypatch):
    monkeypatch.setenv("X_USER_TOKEN", TOKEN)
    site.data["targets"]["x"] = {"type": "x", "token": "${X_USER_TOKEN}"}
    site.data["channels"]["weekly"]["targets"] = ["x"]
    with pytest.raises(ConfigError, match=r"channels.weekly.targets: 'x' is an x target, which posts to X"):
        site.config()
