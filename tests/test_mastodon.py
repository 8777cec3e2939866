"""The mastodon target against a server on 127.0.0.1 that answers as Mastodon's API documents:
POST /api/v2/media (200 or 202), GET /api/v1/media/:id (206 while processing), POST
/api/v1/statuses with Idempotency-Key (a repeat within the hour gets the first status back)."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import regex

from syndicate.config import load_config
from syndicate.deliver import Message, MessageKey, handing_over, make_target
from syndicate.deliver import mastodon as mastodon_module
from syndicate.deliver.mastodon import idempotency_key
from syndicate.errors import ConfigError
from syndicate.ledger import LEDGER_FILE
from syndicate.send import send

from .conftest import child_env, serving

TOKEN = "masto-test-token-4b1d"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ALT = "A tide gauge on the harbour wall at low water"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeMastodon(ThreadingHTTPServer):
    """Mastodon's statuses and media API, plus the article's site serving the hero image.

    `upload_status` 202 makes uploads process: `processing_polls` GETs answer 206 before the
    media has a url. `scripted` answers to status POSTs come first (429, 5xx). `hold` seconds
    pass before the first status's answer (it is made, then its answer is late)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.statuses: dict[str, dict] = {}  # by Idempotency-Key, as Mastodon keeps them an hour
        self.created: list[dict] = []  # every status made
        self.media: dict[str, dict] = {}
        self.upload_status = 200
        self.processing_polls = 0
        self.scripted: deque[tuple[int, dict[str, str], dict]] = deque()
        self.upload_scripted: deque[tuple[int, dict[str, str], dict]] = deque()
        self.hold = 0.0
        self.hold_at = 1  # which status made is answered late, by `hold` seconds
        self.image_type = "image/png"
        self.released = threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeMastodon

    def _record(self) -> Seen:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
        self.server.seen.append(seen)
        return seen

    def _answer(self, status: int, body: dict | bytes, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            for name, value in (headers or {"Content-Type": "application/json"}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting
            self.close_connection = True

    def _authorised(self, seen: Seen) -> bool:
        if seen.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._answer(401, {"error": "The access token is invalid"})
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        seen = self._record()
        server = self.server
        if seen.path == "/img/hero.png":
            self._answer(200, PNG, {"Content-Type": server.image_type})
            return
        match = re.fullmatch(r"/api/v1/media/(\d+)", seen.path)
        if not match:
            self._answer(404, {"error": "Record not found"})
            return
        if not self._authorised(seen):
            return
        media = server.media[match[1]]
        if media["polls_left"]:
            media["polls_left"] -= 1
            self._answer(206, {"id": match[1], "url": None})
            return
        media["url"] = f"{server.url}/system/media/{match[1]}.png"
        self._answer(200, {"id": match[1], "url": media["url"], "description": media["description"]})

    def do_POST(self) -> None:  # noqa: N802
        seen = self._record()
        if not self._authorised(seen):
            return
        if seen.path == "/api/v2/media":
            self._upload(seen)
        elif seen.path == "/api/v1/statuses":
            self._status(seen)
        else:
            self._answer(404, {"error": "Record not found"})

    def _upload(self, seen: Seen) -> None:
        server = self.server
        if server.upload_scripted:
            status, headers, body = server.upload_scripted.popleft()
            self._answer(status, body, {"Content-Type": "application/json", **headers})
            return
        head = f"Content-Type: {seen.headers['Content-Type']}\r\n\r\n".encode()
        form = BytesParser(policy=policy.HTTP).parsebytes(head + seen.body)
        parts = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()}
        file = parts["file"]
        with server.lock:
            media_id = str(len(server.media) + 1)
            ready = server.upload_status == 200
            server.media[media_id] = {
                "bytes": file.get_payload(decode=True),
                "type": file.get_content_type(),
                "filename": file.get_filename(),
                "description": parts["description"].get_content() if "description" in parts else None,
                "polls_left": 0 if ready else server.processing_polls,
                "url": f"{server.url}/system/media/{media_id}.png" if ready else None,
            }
        self._answer(
            server.upload_status, {"id": media_id, "type": "image", "url": server.media[media_id]["url"]}
        )

    def _status(self, seen: Seen) -> None:
        server = self.server
        if server.scripted:
            status, headers, body = server.scripted.popleft()
            self._answer(status, body, {"Content-Type": "application/json", **headers})
            return
        form = parse_qsl(seen.body.decode(), keep_blank_values=True)
        key = seen.headers.get("Idempotency-Key")
        with server.lock:
            if key and key in server.statuses:
                self._answer(200, server.statuses[key])
                return
            fields = dict(form)
            media_ids = [v for k, v in form if k == "media_ids[]"]
            reply_to = fields.get("in_reply_to_id")
            if reply_to is not None and reply_to not in {s["id"] for s in server.created}:
                self._answer(404, {"error": "Record not found"})
                return
            if any(server.media.get(m, {}).get("url") is None for m in media_ids):
                self._answer(
                    422, {"error": "Validation failed: Cannot attach files that have not finished processing"}
                )
                return
            number = str(110000 + len(server.created) + 1)
            made = {
                "id": number,
                "url": f"{server.url}/@news/{number}",
                "content": fields.get("status"),
                "visibility": fields.get("visibility", "public"),
                "language": fields.get("language"),
                "media_ids": media_ids,
                "in_reply_to_id": reply_to,
            }
            server.created.append(made)
            if key:
                server.statuses[key] = made
        if server.hold and len(server.created) == server.hold_at:
            server.released.wait(server.hold)
        self._answer(200, made)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mastodon():
    with serving(FakeMastodon()) as server:
        yield server


ARTICLE = """---
title: 'Tide tables for a small harbour'
description: '{description}'
publish_date: '2026-11-20'
heroImage:
  url: '{image}'
  alt: '{alt}'
tags: [tides, open data]
---
Harbour engineers built a tide predictor on a tiny budget.
"""


def masto_site(
    site, server: FakeMastodon, monkeypatch, description: str = "How we predict tides.", **options
):
    """A site whose `mastodon` channel posts through target `masto` to `server`."""
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    site.article(
        "tides.md", ARTICLE.format(description=description, image=f"{server.url}/img/hero.png", alt=ALT)
    )
    site.data["channels"] = {"mastodon": {"kind": "social", "network": "mastodon", "targets": ["masto"]}}
    site.data["targets"] = {
        "masto": {"type": "mastodon", "url": server.url, "token": "${MASTODON_TOKEN}", **options}
    }
    site.write_config()
    return site


def target_for(site):
    target = make_target("masto", site.config())
    target.slept = []
    target.sleep = target.slept.append  # record the waits instead of waiting
    return target


def the_post(site) -> Message:
    """The composed post for tides.md, as `syndicate send` makes its message."""
    from syndicate.compose.social import compose_post
    from syndicate.content import load_articles

    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "mastodon", config)
    assert post is not None, problems
    return Message(MessageKey("mastodon", "masto", post.key, ""), post.content_hash, post.as_dict)


def deliver(target, message: Message):
    with target.open() as connection:
        return connection.send(message)


def requests_made(server: FakeMastodon) -> list[str]:
    return [f"{s.method} {s.path}" for s in server.seen]


def form_of(seen: Seen) -> list[tuple[str, str]]:
    return parse_qsl(seen.body.decode(), keep_blank_values=True)


def ledger_rows(site) -> list[tuple[str, int]]:
    """(status, attempts) of every delivery, read from the ledger's SQLite file itself."""
    with sqlite3.connect(site.root / ".syndicate" / LEDGER_FILE) as db:
        return db.execute("select status, attempts from deliveries").fetchall()


def mastodon_count(text: str) -> int:
    """Mastodon's length, counted here on its own: every http(s) URL is 23 characters, the rest
    grapheme clusters."""
    urls = re.findall(r"https?://\S+", text)
    rest = re.sub(r"https?://\S+", "", text)
    return len(regex.findall(r"\X", rest)) + 23 * len(urls)


def test_upload_then_poll_then_status_in_that_order(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch, visibility="unlisted", language="en")
    mastodon.upload_status, mastodon.processing_polls = 202, 2
    message = the_post(site)
    target = target_for(site)
    result = deliver(target, message)

    assert requests_made(mastodon) == [
        "GET /img/hero.png",
        "POST /api/v2/media",
        "GET /api/v1/media/1",
        "GET /api/v1/media/1",
        "GET /api/v1/media/1",
        "POST /api/v1/statuses",
    ]
    assert (result.outcome, result.detail) == ("sent", f"110001 {mastodon.url}/@news/110001")
    assert target.slept == [2.0, 2.0, 2.0]  # one wait before each poll
    image, upload, *polls, status = mastodon.seen
    assert "Authorization" not in image.headers  # the article's site never sees the token
    for seen in (upload, *polls, status):
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert upload.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    media = mastodon.media["1"]
    assert (media["bytes"], media["type"], media["filename"], media["description"]) == (
        PNG,
        "image/png",
        "hero.png",
        ALT,
    )
    assert status.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert status.headers["Idempotency-Key"] == idempotency_key(message)
    assert form_of(status) == [
        ("status", message.build()["text"]),
        ("visibility", "unlisted"),
        ("language", "en"),
        ("media_ids[]", "1"),
    ]
    assert [s["media_ids"] for s in mastodon.created] == [["1"]]


def test_a_ready_upload_is_not_polled_and_language_is_left_out_unless_known(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    result = deliver(target_for(site), the_post(site))
    assert result.outcome == "sent"
    assert requests_made(mastodon) == ["GET /img/hero.png", "POST /api/v2/media", "POST /api/v1/statuses"]
    assert [k for k, _ in form_of(mastodon.seen[-1])] == ["status", "visibility", "media_ids[]"]
    assert dict(form_of(mastodon.seen[-1]))["visibility"] == "public"


def test_the_idempotency_key_is_stable_across_processes_and_new_for_a_resend(site, mastodon, monkeypatch):
    key = MessageKey("mastodon", "masto", "mastodon:tides", "")
    here = idempotency_key(Message(key, "c0ffee", dict))
    code = (
        "from syndicate.deliver import Message, MessageKey\n"
        "from syndicate.deliver.mastodon import idempotency_key\n"
        "print(idempotency_key(Message(MessageKey('mastodon', 'masto', 'mastodon:tides', ''), 'c0ffee', dict)))"
    )
    env = child_env(PYTHONHASHSEED="12345")
    there = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here
    assert idempotency_key(Message(key, "c0ffee", dict, fresh_id="run-2")) != here
    assert idempotency_key(Message(key, "0ther", dict)) != here  # the post changed: a new status


def test_a_lost_answer_then_a_rerun_posts_once(site, mastodon, monkeypatch):
    """The status is made but its answer comes after the client's timeout: `unknown`. With
    schedule.unknown: resend the next run sends it again with the same Idempotency-Key and
    Mastodon answers with the status it made: one status on the server, the ledger `sent`."""
    masto_site(site, mastodon, monkeypatch, timeout=1, retries=3)
    site.data["schedule"] = {"unknown": "resend"}
    site.write_config()
    mastodon.hold = 2.5
    send(load_config(site.config_path), select=["tides"], now=NOW)
    assert ledger_rows(site)[0][0] == "unknown"
    statuses = [s for s in mastodon.seen if s.path == "/api/v1/statuses"]
    assert len(statuses) == 1  # a lost answer is never retried within the run
    mastodon.released.set()

    second = send(load_config(site.config_path), select=["tides"], now=NOW + timedelta(minutes=5))
    assert second.totals()["masto"]["sent"] == 1
    statuses = [s for s in mastodon.seen if s.path == "/api/v1/statuses"]
    assert len(statuses) == 2 and len(mastodon.created) == 1
    assert statuses[0].headers["Idempotency-Key"] == statuses[1].headers["Idempotency-Key"]

    assert ledger_rows(site) == [("sent", 2)]


def test_only_the_status_tells_the_ledger_the_post_is_handed_over(site, mastodon, monkeypatch):
    """The upload and the polls publish nothing: a crash during them must leave the message
    pending (sent in full next run), not `unknown` (never sent under the default policy)."""
    masto_site(site, mastodon, monkeypatch)
    mastodon.upload_status, mastodon.processing_polls = 202, 1
    told: list[str] = []
    target = target_for(site)
    with target.open() as connection, handing_over(lambda: told.append("handed")):
        assert connection.send(the_post(site)).outcome == "sent"
    assert len(mastodon.seen) == 5 and told == ["handed"]


def test_a_failing_server_at_upload_leaves_it_for_the_next_run(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch, retries=1)
    mastodon.upload_scripted.extend([(503, {}, {"error": "Service Unavailable"})] * 2)
    target = target_for(site)
    result = deliver(target, the_post(site))
    assert (result.outcome, result.detail) == (
        "retry",
        "the image upload: HTTP 503 Service Unavailable after 2 attempts",
    )
    assert mastodon.created == [] and len(target.slept) == 1


def test_an_image_mastodon_refuses_is_left_out(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    mastodon.upload_scripted.append((422, {}, {"error": "Validation failed: File content type is invalid"}))
    result = deliver(target_for(site), the_post(site))
    assert result.outcome == "sent" and mastodon.created[0]["media_ids"] == []
    assert result.detail.endswith(
        "; posted without the image: Mastodon refused the image (HTTP 422 Unprocessable Entity): "
        "Validation failed: File content type is invalid"
    )


def test_429_waits_as_retry_after_says(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    mastodon.scripted.append((429, {"Retry-After": "3"}, {"error": "Too many requests"}))
    target = target_for(site)
    result = deliver(target, the_post(site))
    assert result.outcome == "sent" and target.slept == [3]
    assert len(mastodon.created) == 1


def test_429_waits_until_x_ratelimit_reset(site, mastodon, monkeypatch, clock_at):
    """Mastodon's own throttle says when the limit resets (ISO 8601), not Retry-After."""
    clock_at(NOW)
    masto_site(site, mastodon, monkeypatch)
    reset = (NOW + timedelta(seconds=7)).isoformat().replace("+00:00", ".000000Z")
    mastodon.scripted.append((429, {"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"}, {}))
    target = target_for(site)
    result = deliver(target, the_post(site))
    assert result.outcome == "sent" and target.slept == [7]


def test_a_refused_token_is_one_clear_line_without_the_token(site, mastodon, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    masto_site(site, mastodon, monkeypatch)
    monkeypatch.setenv("MASTODON_TOKEN", "an-expired-token")
    target = target_for(site)
    result = deliver(target, the_post(site))
    assert (result.outcome, result.detail) == (
        "failed",
        "targets.masto: the token was refused (401): "
        "create a new access token with write:statuses and write:media",
    )
    assert requests_made(mastodon) == ["GET /img/hero.png", "POST /api/v2/media"]  # nothing posted
    captured = capsys.readouterr()
    for where in (caplog.text, captured.out, captured.err, repr(target.settings)):
        assert "an-expired-token" not in where


def test_a_token_refused_for_the_status_alone_is_the_same_line(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    mastodon.scripted.append((403, {}, {"error": "This action is outside the authorized scopes"}))
    result = deliver(target_for(site), the_post(site))
    assert result.outcome == "failed"
    assert result.detail.startswith("targets.masto: the token was refused (403): create a new access token")


def test_422_fails_with_mastodons_error(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    mastodon.scripted.append((422, {}, {"error": "Validation failed: Text character limit of 500 exceeded"}))
    target = target_for(site)
    result = deliver(target, the_post(site))
    assert (result.outcome, result.detail) == (
        "failed",
        "Mastodon refused the status (HTTP 422 Unprocessable Entity): "
        "Validation failed: Text character limit of 500 exceeded",
    )
    assert target.slept == []


def test_an_image_that_is_not_an_image_is_left_out_and_said(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    mastodon.image_type = "text/html"
    result = deliver(target_for(site), the_post(site))
    assert result.outcome == "sent"
    assert result.detail.endswith(
        "; posted without the image: the image is text/html (expected one of image/avif, "
        "image/gif, image/heic, image/jpeg, image/png, image/webp)"
    )
    assert requests_made(mastodon) == ["GET /img/hero.png", "POST /api/v1/statuses"]
    assert "media_ids[]" not in dict(form_of(mastodon.seen[-1]))


def test_an_image_over_the_size_limit_is_left_out(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    monkeypatch.setattr(mastodon_module, "MAX_IMAGE_BYTES", len(PNG) - 1)
    result = deliver(target_for(site), the_post(site))
    assert result.outcome == "sent"
    assert result.detail.endswith(
        f"; posted without the image: the image is {len(PNG):,} bytes (at most {len(PNG) - 1:,})"
    )
    assert requests_made(mastodon) == ["GET /img/hero.png", "POST /api/v1/statuses"]


def test_an_upload_that_never_finishes_processing_is_left_out(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    mastodon.upload_status, mastodon.processing_polls = 202, 1000
    target = target_for(site)
    result = deliver(target, the_post(site))
    assert result.outcome == "sent"
    assert result.detail.endswith("; posted without the image: Mastodon was still processing it after 60 s")
    assert len(target.slept) == 30  # bounded
    assert mastodon.created[0]["media_ids"] == []


def test_the_text_fits_500_as_mastodon_counts(site, mastodon, monkeypatch):
    """A long description is shortened until the post is 500 as Mastodon counts it: with a long
    article URL (counted 23) the text has more than 500 characters, and still fits."""
    long = " ".join(["Tide gauges, harmonic constituents and a great deal of patience."] * 20)
    site.data["site"]["base_url"] = (
        "https://example.com/logbook/a-rather-long-path/for-the-harbour-notes/2026/"
    )
    masto_site(site, mastodon, monkeypatch, description=long)
    assert deliver(target_for(site), the_post(site)).outcome == "sent"
    text = mastodon.created[0]["content"]
    (url,) = re.findall(r"https?://\S+", text)
    assert url.startswith(site.data["site"]["base_url"]) and len(url) > 70
    assert long not in text  # shortened to fit
    assert len(regex.findall(r"\X", text)) > 500 >= mastodon_count(text) > 450


def test_a_dry_run_writes_the_post_and_contacts_no_server(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    outcome = send(load_config(site.config_path), select=["tides"], dry_run=True, now=NOW)
    assert mastodon.seen == []
    (written,) = (outcome.dry_run_dir / "masto").rglob("*.json")
    post = json.loads(written.read_text(encoding="utf-8"))
    assert post["text"] == the_post(site).build()["text"]
    assert post["image"] == f"{mastodon.url}/img/hero.png"


def test_send_end_to_end_records_sent_in_a_sqlite_ledger(site, mastodon, monkeypatch):
    masto_site(site, mastodon, monkeypatch)
    outcome = send(load_config(site.config_path), select=["tides"], now=NOW)
    assert outcome.totals()["masto"]["sent"] == 1
    again = send(load_config(site.config_path), select=["tides"], now=NOW + timedelta(minutes=1))
    assert again.totals()["masto"]["sent"] == 0 and len(mastodon.created) == 1
    assert ledger_rows(site) == [("sent", 1)]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"url": "https://mastodon.example"}, r"targets\.masto\.token: is missing or empty"),
        (
            {"url": "http://mastodon.example", "token": "${MASTODON_TOKEN}"},
            r"targets\.masto\.url: is not https",
        ),
        (
            {"url": "https://mastodon.example/api/v1", "token": "${MASTODON_TOKEN}"},
            r"targets\.masto\.url: has more than the server's address \('/api/v1'; expected e\.g\. https://",
        ),
        (
            {"url": "https://mastodon.example", "token": "${MASTODON_TOKEN}", "visibility": "direct"},
            r"targets\.masto\.visibility",
        ),
        (
            {"url": "https://mastodon.example", "token": "${MASTODON_TOKEN}", "language": "English"},
            r"targets\.masto\.language: 'English' is not an ISO 639 language code",
        ),
    ],
    ids=["no-token", "plain-http", "a-path", "direct", "bad-language"],
)
def test_config_mistakes_are_one_line_errors(site, monkeypatch, settings, error):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    site.data["targets"]["masto"] = {"type": "mastodon", **settings}
    with pytest.raises(ConfigError, match=error) as caught:
        load_config(site.write_config())
    assert "\n" not in str(caught.value) and TOKEN not in str(caught.value)


def test_the_server_address_and_defaults(site, monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    site.data["targets"]["masto"] = {"type": "mastodon", "url": "https://mastodon.example/", "token": "t"}
    settings = site.config().targets["masto"]
    assert (settings.url, settings.visibility, settings.language) == (
        "https://mastodon.example",
        "public",
        None,
    )
    assert TOKEN not in repr(settings) and "'t'" not in repr(settings)


@pytest.mark.parametrize(
    ("channel", "network"),
    [("weekly", None), ("linkedin", "linkedin")],
    ids=["email", "linkedin"],
)
def test_a_channel_of_another_kind_cannot_target_mastodon(site, monkeypatch, channel, network):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    site.data["targets"]["masto"] = {
        "type": "mastodon",
        "url": "https://m.example",
        "token": "${MASTODON_TOKEN}",
    }
    site.data["channels"][channel]["targets"] = ["masto"]
    with pytest.raises(
        ConfigError,
        match=rf"config.yaml: channels\.{channel}\.targets: 'masto' is a mastodon target, which posts to Mastodon",
    ) as caught:
        site.config()
    assert "\n" not in str(caught.value)
