"""The linkedin target against a real HTTP server on 127.0.0.1 standing in for the Posts API."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import stat
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from syndicate import clock
from syndicate.compose.littletext import RESERVED, unescape_little_text
from syndicate.compose.social import SocialPost, compose_post
from syndicate.config import load_config
from syndicate.content import load_articles
from syndicate.deliver import Message, MessageKey, handing_over, make_target
from syndicate.deliver.linkedin import LINKEDIN_POSTS_URL
from syndicate.dispatch import dispatch
from syndicate.errors import ConfigError
from syndicate.ledger import Ledger, sqlite_url
from syndicate.send import send as send_now

from .conftest import DATA, serving
from .sample_mail import email_for

TOKEN = "AQX-test-token-7f3a9c"
AUTHOR = "urn:li:organization:123"


@pytest.fixture
def post(site) -> SocialPost:
    site.data["content"] = {"dir": str(DATA / "linkedin")}
    config = site.config()
    loaded = load_articles(config)
    assert [p for p in loaded.problems if p.severity == "error"] == []
    post, problems = compose_post(loaded.articles[0], "linkedin", config)
    assert post is not None, problems
    return dataclasses.replace(post, image=None)  # a share without a thumbnail (tested apart below)


def linkedin(site, url: str, monkeypatch, **options):
    monkeypatch.setenv("LINKEDIN_TOKEN", TOKEN)
    settings = {"type": "linkedin", "url": url, "author": AUTHOR, "token": "${LINKEDIN_TOKEN}"}
    site.data["targets"]["li"] = {**settings, **options}
    target = make_target("li", site.config())
    target.slept = []
    target.sleep = target.slept.append  # record the waits instead of waiting
    return target


def message(payload) -> Message:
    return Message(MessageKey("linkedin", "li", "tides", ""), "h1", lambda: payload)


def send(target, payload):
    with target.open() as connection:
        return connection.send(message(payload))


def test_the_request_is_a_posts_api_article_share(site, receiver, monkeypatch, post):
    assert set(RESERVED) <= set(post.text)  # the article puts every reserved character in the text
    receiver.replies.append((201, {"x-restli-id": "urn:li:share:7001"}))
    result = send(linkedin(site, receiver.url, monkeypatch), post.as_dict())
    assert (result.outcome, result.detail) == ("sent", "urn:li:share:7001")

    ((path, headers, raw),) = receiver.requests
    assert receiver.methods == ["POST"] and path == "/hooks/abc"
    port = receiver.server_address[1]
    assert {k.lower(): v for k, v in headers.items()} == {
        "host": f"127.0.0.1:{port}",
        "user-agent": headers["User-Agent"],
        "accept-encoding": "gzip, deflate",
        "accept": "*/*",
        "connection": "keep-alive",
        "authorization": f"Bearer {TOKEN}",
        "linkedin-version": "202610",
        "x-restli-protocol-version": "2.0.0",
        "content-type": "application/json",
        "content-length": str(len(raw)),
    }
    assert headers["User-Agent"].startswith("syndicate/")
    body = json.loads(raw)
    commentary = body.pop("commentary")
    assert body == {
        "author": AUTHOR,
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "content": {
            "article": {
                "source": post.link,
                "title": post.article.title,
                "description": post.article.description,
            }
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    assert unescape_little_text(commentary) == post.text
    for tag in post.hashtags:
        assert "{hashtag|\\#|" + tag.lstrip("#") + "}" in commentary
    # Outside hashtag templates, every reserved character arrives escaped.
    bare = re.sub(r"\\.", "", re.sub(r"\{hashtag\|\\#\|\w+\}", "", commentary))
    assert not set(bare) & set(RESERVED)


def test_429_is_retried_after_retry_after_then_sent(site, receiver, monkeypatch, post):
    receiver.replies.extend([(429, {"Retry-After": "3"}), (201, {"x-restli-id": "urn:li:share:7002"})])
    target = linkedin(site, receiver.url, monkeypatch)
    result = send(target, post.as_dict())
    assert (result.outcome, result.detail) == ("sent", "urn:li:share:7002")
    assert target.slept == [3] and len(receiver.requests) == 2
    assert receiver.requests[0][2] == receiver.requests[1][2]


def test_5xx_until_the_retries_run_out_leaves_it_for_the_next_run(site, receiver, monkeypatch, post):
    receiver.replies.extend([(503, {})] * 2)
    target = linkedin(site, receiver.url, monkeypatch, retries=1)
    result = send(target, post.as_dict())
    assert (result.outcome, result.detail) == ("retry", "HTTP 503 Service Unavailable after 2 attempts")
    assert len(target.slept) == 1


def test_401_is_reported_without_the_token(site, receiver, monkeypatch, post, caplog, capsys, tmp_path):
    caplog.set_level(logging.DEBUG)
    echo = json.dumps({"status": 401, "message": f"Invalid access token {TOKEN}"}).encode()
    receiver.replies.append((401, {"Content-Type": "application/json"}, echo))
    target = linkedin(site, receiver.url, monkeypatch)
    with Ledger(sqlite_url(tmp_path / "ledger.sqlite")) as ledger:
        report = dispatch([message(post.as_dict())], target, ledger)
    assert report.failed == 1 and len(receiver.requests) == 1 and target.slept == []
    with target.open() as connection:
        receiver.replies.append((401, {"Content-Type": "application/json"}, echo))
        result = connection.send(message(post.as_dict()))
    assert result.outcome == "failed" and "\n" not in result.detail
    assert result.detail.startswith("HTTP 401: LinkedIn refused the access token of targets.li")
    assert "Invalid access token [token]" in result.detail
    captured = capsys.readouterr()
    for where in (result.detail, caplog.text, captured.out, captured.err, repr(target.settings)):
        assert TOKEN not in where
    assert TOKEN.encode() not in (tmp_path / "ledger.sqlite").read_bytes()


def test_other_4xx_fails_with_linkedins_message(site, receiver, monkeypatch, post):
    said = {"status": 422, "message": "ERROR :: /commentary :: is too long", "code": "UNPROCESSABLE_ENTITY"}
    receiver.replies.append((422, {"Content-Type": "application/json"}, json.dumps(said).encode()))
    target = linkedin(site, receiver.url, monkeypatch)
    result = send(target, post.as_dict())
    assert result.outcome == "failed" and target.slept == []
    assert result.detail == "HTTP 422 Unprocessable Entity: ERROR :: /commentary :: is too long"


def test_a_retired_version_says_which_key_to_bump(site, receiver, monkeypatch, post):
    receiver.replies.append((426, {}, b'{"status":426,"message":"Requested version 20230101 is not active"}'))
    result = send(linkedin(site, receiver.url, monkeypatch, linkedin_version=202301), post.as_dict())
    assert result.outcome == "failed"
    assert result.detail.startswith("HTTP 426: LinkedIn-Version 202301 is no longer served")
    assert len(receiver.requests) == 1  # a 426 is not retried
    assert receiver.requests[0][1]["LinkedIn-Version"] == "202301"


@pytest.mark.parametrize(
    "payload",
    [email_for("a@example.org"), {"kind": "email", "subject": "Weekly", "text": "x", "link": "https://e.x/"}],
    ids=["EmailMessage", "email-dict"],
)
def test_email_is_refused_without_a_request(site, receiver, monkeypatch, payload):
    result = send(linkedin(site, receiver.url, monkeypatch), payload)
    assert result.outcome == "failed"
    assert result.detail == "targets.li: a linkedin target posts social posts only (got an email)"
    assert receiver.requests == []


def test_plain_http_is_a_config_error_unless_local(site, monkeypatch):
    monkeypatch.setenv("LINKEDIN_TOKEN", TOKEN)
    site.data["targets"]["li"] = {
        "type": "linkedin",
        "url": "http://api.example.com/rest/posts",
        "author": AUTHOR,
        "token": "${LINKEDIN_TOKEN}",
    }
    with pytest.raises(ConfigError, match=r"config.yaml: targets.li.url: is not https"):
        site.config()


def test_the_url_defaults_to_the_posts_api(site, monkeypatch):
    monkeypatch.setenv("LINKEDIN_TOKEN", TOKEN)
    site.data["targets"]["li"] = {"type": "linkedin", "author": AUTHOR, "token": "${LINKEDIN_TOKEN}"}
    settings = site.config().targets["li"]
    assert settings.url == LINKEDIN_POSTS_URL == "https://api.linkedin.com/rest/posts"
    assert settings.linkedin_version == "202610"
    site.data["targets"]["hook"] = {"type": "webhook"}  # other types still need a url
    with pytest.raises(ConfigError, match=r"targets.hook.url: is missing"):
        site.config()


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"token": "${LINKEDIN_TOKEN}"}, r"targets\.li\.author: is missing \(expected urn:li:person:<id>"),
        (
            {"token": "${LINKEDIN_TOKEN}", "author": "Robin"},
            r"targets\.li\.author: 'Robin' is not an author URN",
        ),
        ({"author": AUTHOR}, r"targets\.li\.token: is missing or empty \(expected an access token"),
        (
            {"token": "${LINKEDIN_TOKEN}", "author": AUTHOR, "linkedin_version": "Oct 2025"},
            r"targets\.li\.linkedin_version: 'Oct 2025' is not a LinkedIn API version \(expected YYYYMM",
        ),
    ],
    ids=["no-author", "bad-author", "no-token", "bad-version"],
)
def test_config_mistakes_are_one_line_errors(site, monkeypatch, settings, error):
    monkeypatch.setenv("LINKEDIN_TOKEN", TOKEN)
    site.data["targets"]["li"] = {"type": "linkedin", **settings}
    with pytest.raises(ConfigError, match=error) as caught:
        load_config(site.write_config())
    assert "\n" not in str(caught.value) and TOKEN not in str(caught.value)


def test_an_unset_token_variable_is_named(site, monkeypatch):
    monkeypatch.delenv("LINKEDIN_TOKEN", raising=False)
    site.data["targets"]["li"] = {"type": "linkedin", "author": AUTHOR, "token": "${LINKEDIN_TOKEN}"}
    with pytest.raises(
        ConfigError, match=r"config.yaml: targets.li.token: environment variable LINKEDIN_TOKEN is not set"
    ):
        load_config(site.write_config())


def test_dispatch_posts_once(site, receiver, monkeypatch, post, tmp_path):
    receiver.replies.append((201, {"x-restli-id": "urn:li:share:7003"}))
    target = linkedin(site, receiver.url, monkeypatch)
    msg = Message(MessageKey("linkedin", "li", post.key, ""), post.content_hash, post.as_dict)
    with Ledger(sqlite_url(tmp_path / "ledger.sqlite")) as ledger:
        assert dispatch([msg], target, ledger).sent == 1
        assert dispatch([msg], target, ledger).skipped == 1
    assert len(receiver.requests) == 1


def test_an_email_channel_cannot_target_linkedin(site, monkeypatch):
    monkeypatch.setenv("LINKEDIN_TOKEN", TOKEN)
    site.data["targets"]["li"] = {"type": "linkedin", "author": AUTHOR, "token": "${LINKEDIN_TOKEN}"}
    site.data["channels"]["weekly"]["targets"] = ["li"]
    with pytest.raises(
        ConfigError,
        match=r"config.yaml: channels.weekly.targets: 'li' is a linkedin target, which posts",
    ):
        site.config()


def test_an_answer_lost_after_the_post_went_out_is_unknown_and_not_retried(site, receiver, monkeypatch, post):
    """The Posts API has no idempotency key: a second POST would publish the post twice."""
    receiver.delay = 2.0
    receiver.replies.append((201, {"x-restli-id": "urn:li:share:7004"}))
    target = linkedin(site, receiver.url, monkeypatch, timeout=1, retries=3)
    result = send(target, post.as_dict())
    assert (result.outcome, result.detail) == (
        "unknown",
        "no answer after the request was sent (ReadTimeout: none within 1 s): the receiver may have it",
    )
    assert len(receiver.requests) == 1 and target.slept == []


# -- link cards with a thumbnail (the Images API) ------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # the bytes matter, not that it decodes
IMAGE_URN = "urn:li:image:C4E10AQTest"


class FakeLinkedIn(ThreadingHTTPServer):
    """The Posts and Images APIs and the site's hero image, on 127.0.0.1. Each request is
    checked the way LinkedIn documents it and kept (method, path) in order."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _LinkedInHandler)
        self.seen: list[tuple[str, str]] = []
        self.posts: list[dict] = []
        self.post_status = 201
        self.post_delay = 0.0
        self.init_status = 200
        self.image_status = 200

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _LinkedInHandler(BaseHTTPRequestHandler):
    server: FakeLinkedIn

    def _api_headers_ok(self) -> bool:
        return (
            self.headers["Authorization"] == f"Bearer {TOKEN}"
            and self.headers["LinkedIn-Version"] == "202610"
            and self.headers["X-Restli-Protocol-Version"] == "2.0.0"
        )

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(("GET", self.path))
        if self.path == "/img/hero.png" and self.server.image_status == 200:
            self._answer(200, PNG, {"Content-Type": "image/png"})
        else:
            self._answer(self.server.image_status if self.server.image_status != 200 else 404)

    def do_POST(self) -> None:  # noqa: N802
        self.server.seen.append(("POST", self.path))
        body = self._body()
        if not self._api_headers_ok() or self.headers["Content-Type"] != "application/json":
            self._answer(400)
        elif self.path == "/rest/images?action=initializeUpload":
            assert json.loads(body) == {"initializeUploadRequest": {"owner": AUTHOR}}
            value = {
                "uploadUrlExpiresAt": 1790000000000,
                "uploadUrl": f"{self.server.base}/upload/1",
                "image": IMAGE_URN,
            }
            status = self.server.init_status
            self._answer(
                status, json.dumps({"value": value} if status == 200 else {"message": "no"}).encode()
            )
        elif self.path == "/rest/posts":
            self.server.posts.append(json.loads(body))
            time.sleep(self.server.post_delay)
            self._answer(
                self.server.post_status, b"", {"x-restli-id": f"urn:li:share:{len(self.server.posts)}"}
            )
        else:
            self._answer(404)

    def do_PUT(self) -> None:  # noqa: N802
        self.server.seen.append(("PUT", self.path))
        ok = self.path == "/upload/1" and self.headers["Authorization"] == f"Bearer {TOKEN}"
        self._answer(201 if ok and self._body() == PNG else 400)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_linkedin():
    with serving(FakeLinkedIn()) as server:
        yield server


def card_site(site, server: FakeLinkedIn, monkeypatch, **options) -> None:
    """A linkedin channel posting one article whose hero image the fake server serves."""
    monkeypatch.setenv("LINKEDIN_TOKEN", TOKEN)
    site.data["targets"]["li"] = {
        "type": "linkedin",
        "url": f"{server.base}/rest/posts",
        "author": AUTHOR,
        "token": "${LINKEDIN_TOKEN}",
        "retries": 0,
        **options,
    }
    site.data["channels"]["linkedin"]["targets"] = ["li"]
    site.article(
        "lamps.md",
        f"---\ntitle: Lamps\ndescription: How lamps are kept.\ncta: Read on\n"
        f"heroImage: {{path: '{server.base}/img/hero.png', alt: 'A lamp room at dusk'}}\n"
        f"publish_date: '{(clock.now() - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}'\n---\nText.\n",
    )


def card_payload(site) -> dict:
    config = site.config()
    [article] = load_articles(config).articles
    post, problems = compose_post(article, "linkedin", config)
    assert post is not None, problems
    return post.as_dict()


def test_a_share_s_card_shows_the_hero_image_uploaded_through_the_images_api(
    site, fake_linkedin, monkeypatch
):
    card_site(site, fake_linkedin, monkeypatch)
    outcome = send_now(site.config(), select="all", channels=["linkedin"])
    assert outcome.ok
    assert fake_linkedin.seen == [
        ("GET", "/img/hero.png"),
        ("POST", "/rest/images?action=initializeUpload"),
        ("PUT", "/upload/1"),
        ("POST", "/rest/posts"),
    ]
    [post] = fake_linkedin.posts
    assert post["content"]["article"]["thumbnail"] == IMAGE_URN
    assert post["content"]["article"]["thumbnailAltText"] == "A lamp room at dusk"
    assert post["content"]["article"]["title"] == "Lamps"
    uploads = json.loads((site.config().state_dir / "uploads.json").read_text())
    assert uploads == {"li": {f"{fake_linkedin.base}/img/hero.png": IMAGE_URN}}
    assert stat.S_IMODE((site.config().state_dir / "uploads.json").stat().st_mode) == 0o600
    assert send_now(site.config(), select="all", channels=["linkedin"]).ok
    assert len(fake_linkedin.posts) == 1  # sent once


def test_a_post_retried_on_a_later_run_reuses_the_upload(site, fake_linkedin, monkeypatch):
    card_site(site, fake_linkedin, monkeypatch)
    fake_linkedin.post_status = 503
    assert not send_now(site.config(), select="all", channels=["linkedin"]).ok
    fake_linkedin.post_status = 201
    assert send_now(site.config(), select="all", channels=["linkedin"]).ok
    assert [s for s in fake_linkedin.seen if s[0] != "POST" or "images" in s[1]] == [
        ("GET", "/img/hero.png"),
        ("POST", "/rest/images?action=initializeUpload"),
        ("PUT", "/upload/1"),
    ]  # once: the second run posted with the image it had uploaded
    assert [p["content"]["article"]["thumbnail"] for p in fake_linkedin.posts] == [IMAGE_URN, IMAGE_URN]


def test_a_lost_answer_to_the_share_is_unknown_and_never_posted_again(site, fake_linkedin, monkeypatch):
    card_site(site, fake_linkedin, monkeypatch, timeout=1)
    fake_linkedin.post_delay = 2.0
    outcome = send_now(site.config(), select="all", channels=["linkedin"])
    assert [(report.sent, report.unknown) for _, report in outcome.reports] == [(0, 1)]
    fake_linkedin.post_delay = 0
    assert send_now(site.config(), select="all", channels=["linkedin"]).ok  # schedule.unknown: skip
    assert len(fake_linkedin.posts) == 1


def test_an_image_that_cannot_be_had_posts_the_share_without_a_thumbnail(site, fake_linkedin, monkeypatch):
    card_site(site, fake_linkedin, monkeypatch)
    fake_linkedin.image_status = 404
    result = send(make_target("li", site.config()), card_payload(site))
    assert result.outcome == "sent"
    assert result.detail == "urn:li:share:1; no thumbnail: the image URL answered HTTP 404"
    assert "thumbnail" not in fake_linkedin.posts[0]["content"]["article"]
    assert ("POST", "/rest/images?action=initializeUpload") not in fake_linkedin.seen


def test_a_refused_token_at_the_upload_fails_before_anything_is_posted(site, fake_linkedin, monkeypatch):
    card_site(site, fake_linkedin, monkeypatch)
    fake_linkedin.init_status = 401
    result = send(make_target("li", site.config()), card_payload(site))
    assert result.outcome == "failed" and "LinkedIn refused the access token of targets.li" in result.detail
    assert TOKEN not in result.detail and fake_linkedin.posts == []


def test_only_the_share_tells_the_ledger_it_is_handed_over(site, fake_linkedin, monkeypatch):
    """The image's upload publishes nothing: a crash during it must leave the share pending."""
    card_site(site, fake_linkedin, monkeypatch)
    told: list[str] = []
    target = make_target("li", site.config())
    with target.open() as connection, handing_over(lambda: told.append("handed")):
        assert connection.send(message(card_payload(site))).outcome == "sent"
    assert len(fake_linkedin.seen) == 4 and told == ["handed"]  # init and PUT went out unmarked
