"""The bluesky target against a loopback XRPC server that checks every request against the
published lexicons (com.atproto.server.createSession / refreshSession, com.atproto.repo.uploadBlob /
createRecord / getRecord, app.bsky.feed.post, app.bsky.richtext.facet, app.bsky.embed.external)
and keeps the records it was given, as a PDS does; `syndicate send` end to end with the ledger in
a SQLite file."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import struct
import threading
import zlib
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import regex
from click.testing import CliRunner

from syndicate import clock
from syndicate.cli import cli
from syndicate.compose.networks.bluesky import bluesky_facets
from syndicate.compose.social import compose_post
from syndicate.content import load_articles
from syndicate.deliver import Message, MessageKey, make_target
from syndicate.deliver.bluesky import record_key
from syndicate.dispatch import dispatch
from syndicate.errors import ConfigError
from syndicate.ledger import Ledger, sqlite_url

from .conftest import serving

HANDLE = "news.example.org"
PASSWORD = "abcd-efgh-ijkl-mnop"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
NOW = datetime(2026, 12, 7, 8, 5, 0, 123456, tzinfo=UTC)


def png(width: int, height: int) -> bytes:
    """A valid PNG of grey stripes (a real PDS reads the image it is given)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png(120, 63)

# Formats of the AT Protocol's lexicon strings (atproto.com/specs/lexicon#string-formats).
TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
DID_RE = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
LANGUAGE = re.compile(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]+)*")
URI = re.compile(r"[a-z][a-z0-9+.-]*:\S+")
POST_KEYS = {"$type", "text", "entities", "facets", "reply", "embed", "langs", "labels", "tags", "createdAt"}


def graphemes(text: str) -> int:
    """Grapheme clusters as Unicode counts them (regex's \\X), not as the code under test does."""
    return len(regex.findall(r"\X", text))


def cid_of(data: bytes) -> str:
    """A CIDv1 (raw, sha-256) in base32, as a PDS names a blob."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


class Pds(ThreadingHTTPServer):
    """An XRPC server on 127.0.0.1 that keeps records and blobs like a PDS and refuses (400,
    listing it in `violations`) any request the lexicons do not allow.

    `script[nsid]` holds replies to give instead of handling a call: (status, headers, body),
    or "store-then-N" to store the record and answer N (a 5xx after the write). `hold` seconds
    pass before createRecord's answer (after the record is stored). `duplicate` is how a
    second create under an existing key is answered: 500 (the reference PDS, 0.4 and 0.5) or 409.
    """

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PdsHandler)
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []  # (method, nsid, headers, body)
        self.violations: list[str] = []
        self.records: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.script: dict[str, deque[Any]] = {}
        self.sessions = 0
        self.access: set[str] = set()
        self.expired: set[str] = set()
        self.refresh: set[str] = set()
        self.hold = 0.0
        self.duplicate = 500
        self.released = threading.Event()
        self.image = (PNG, "image/png")
        self.image_delay = 0.0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def nsids(self) -> list[str]:
        return [nsid for _, nsid, _, _ in self.calls]

    def new_session(self) -> dict[str, str]:
        self.sessions += 1
        access, refresh = f"access-{self.sessions}", f"refresh-{self.sessions}"
        self.access.add(access)
        self.refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "did": DID, "handle": HANDLE}


class _PdsHandler(BaseHTTPRequestHandler):
    server: Pds

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/hero.png":
            self.server.released.wait(self.server.image_delay)
            data, mime = self.server.image
            return self._answer(200, data, {"Content-Type": mime})
        nsid = parts.path.removeprefix("/xrpc/")
        self.server.calls.append(("GET", nsid, dict(self.headers), b""))
        if nsid != "com.atproto.repo.getRecord":
            return self._error(404, "MethodNotImplemented", nsid)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        problems = self._check_params(query)
        if problems:
            return self._refuse(nsid, problems)
        record = self.server.records.get(query["rkey"])
        if record is None:
            return self._error(400, "RecordNotFound", f"Could not locate record: {query['rkey']}")
        uri = f"at://{DID}/app.bsky.feed.post/{query['rkey']}"
        return self._json(200, {"uri": uri, "cid": cid_of(json.dumps(record).encode()), "value": record})

    def do_POST(self) -> None:
        nsid = urlsplit(self.path).path.removeprefix("/xrpc/")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append(("POST", nsid, dict(self.headers), body))
        script = self.server.script.get(nsid)
        step = script.popleft() if script else None
        if isinstance(step, tuple):
            status, headers, answer = step
            return self._answer(status, answer, headers)
        if nsid == "com.atproto.server.createSession":
            return self._create_session(body)
        if nsid == "com.atproto.server.refreshSession":
            token = self._bearer()
            if token not in self.server.refresh or body:
                return self._error(401, "InvalidToken", "Token could not be verified")
            self.server.refresh.discard(token)
            return self._json(200, self.server.new_session())
        refused = self._authorize()
        if refused:
            return
        if nsid == "com.atproto.repo.uploadBlob":
            return self._upload(body)
        if nsid == "com.atproto.repo.createRecord":
            return self._create_record(body, step)
        return self._error(404, "MethodNotImplemented", nsid)

    # -- the methods ---------------------------------------------------------------------------

    def _create_session(self, body: bytes) -> None:
        data, problems = self._json_input(
            body, {"identifier", "password"}, {"authFactorToken", "allowTakendown"}
        )
        if problems:
            return self._refuse("createSession", problems)
        if data["identifier"] != HANDLE or data["password"] != PASSWORD:
            return self._error(401, "AuthenticationRequired", "Invalid identifier or password")
        return self._json(200, self.server.new_session())

    def _upload(self, body: bytes) -> None:
        mime = self.headers.get("Content-Type") or ""
        if not body or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", mime):
            return self._refuse("uploadBlob", ["a blob needs a body and its Content-Type"])
        cid = cid_of(body)
        self.server.blobs[cid] = (body, mime)
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(body)}
        return self._json(200, {"blob": blob})

    def _create_record(self, body: bytes, step: Any) -> None:
        required = {"repo", "collection", "record"}
        data, problems = self._json_input(body, required, {"rkey", "validate", "swapCommit"})
        if not problems:
            problems = self._check_create(data)
        if problems:
            return self._refuse("createRecord", problems)
        rkey = data["rkey"]
        with self.server.lock:
            if rkey in self.server.records:
                if self.server.duplicate == 409:
                    return self._error(409, "RecordAlreadyExists", "Record already exists")
                return self._error(500, "InternalServerError", "Internal Server Error")
            self.server.records[rkey] = data["record"]
        if isinstance(step, str) and step.startswith("store-then-"):
            return self._error(int(step.rsplit("-", 1)[1]), "UpstreamFailure", "try again")
        if self.server.hold:
            self.server.released.wait(self.server.hold)
        uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
        cid = cid_of(json.dumps(data["record"]).encode())  # as getRecord names it
        return self._json(200, {"uri": uri, "cid": cid, "validationStatus": "valid"})

    # -- the lexicon checks ------------------------------------------------------------------------

    def _check_params(self, query: dict[str, str]) -> list[str]:
        problems = []
        if set(query) != {"repo", "collection", "rkey"}:
            problems.append(f"getRecord params {sorted(query)}")
        if query.get("repo") not in (DID, HANDLE):
            problems.append("getRecord repo")
        if query.get("collection") != "app.bsky.feed.post":
            problems.append("getRecord collection")
        return problems

    def _check_create(self, data: dict[str, Any]) -> list[str]:
        problems = []
        if data["repo"] != DID:
            problems.append(f"repo {data['repo']!r} is not the session's DID")
        if data["collection"] != "app.bsky.feed.post":
            problems.append("collection")
        rkey = data.get("rkey")
        if not isinstance(rkey, str) or not TID.fullmatch(rkey):
            problems.append(f"rkey {rkey!r} is not a TID (app.bsky.feed.post's key type)")
        record = data["record"]
        if not isinstance(record, dict):
            return [*problems, "record is not an object"]
        return problems + post_problems(record, self.server.blobs) + self._check_reply(record)

    def _check_reply(self, record: dict[str, Any]) -> list[str]:
        """app.bsky.feed.post#replyRef: `root` and `parent`, each a com.atproto.repo.strongRef
        (an at-uri and a cid) naming a post this repository holds, at that version."""
        reply = record.get("reply")
        if reply is None:
            return []
        if not isinstance(reply, dict) or set(reply) - {"$type"} != {"root", "parent"}:
            return [f"reply {reply!r} is not a replyRef (root and parent)"]
        problems = []
        for name in ("root", "parent"):
            ref = reply[name]
            if not isinstance(ref, dict) or set(ref) - {"$type"} != {"uri", "cid"}:
                problems.append(f"reply.{name} is not a strongRef")
                continue
            prefix = f"at://{DID}/app.bsky.feed.post/"
            held = self.server.records.get(str(ref["uri"]).removeprefix(prefix))
            if not str(ref["uri"]).startswith(prefix) or held is None:
                problems.append(f"reply.{name} names no post here: {ref['uri']!r}")
            elif ref["cid"] != cid_of(json.dumps(held).encode()):
                problems.append(f"reply.{name} cid is not the post's")
        return problems

    # -- plumbing ---------------------------------------------------------------------------------

    def _bearer(self) -> str:
        auth = self.headers.get("Authorization") or ""
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""

    def _authorize(self) -> bool:
        token = self._bearer()
        if token in self.server.expired:
            self._error(400, "ExpiredToken", "Token has expired")
            return True
        if token not in self.server.access:
            self._error(401, "AuthenticationRequired", "Authentication Required")
            return True
        return False

    def _json_input(
        self, body: bytes, required: set[str], optional: set[str]
    ) -> tuple[dict[str, Any], list[str]]:
        if (self.headers.get("Content-Type") or "").split(";")[0] != "application/json":
            return {}, ["Content-Type is not application/json"]
        try:
            data = json.loads(body)
        except ValueError:
            return {}, ["body is not JSON"]
        if not isinstance(data, dict):
            return {}, ["body is not an object"]
        problems = [f"missing {k}" for k in sorted(required - set(data))]
        problems += [f"unknown key {k}" for k in sorted(set(data) - required - optional)]
        problems += [
            f"{k} is not a string"
            for k in sorted(required)
            if k in data and k != "record" and not isinstance(data[k], str)
        ]
        return data, problems

    def _refuse(self, nsid: str, problems: list[str]) -> None:
        self.server.violations.extend(f"{nsid}: {p}" for p in problems)
        self._error(400, "InvalidRequest", "; ".join(problems))

    def _error(self, status: int, error: str, message: str) -> None:
        self._json(status, {"error": error, "message": message})

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._answer(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up waiting
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


def post_problems(record: dict[str, Any], blobs: dict[str, tuple[bytes, str]]) -> list[str]:
    """What app.bsky.feed.post (with its facets and an app.bsky.embed.external) does not allow."""
    problems = [f"record: unknown key {k}" for k in sorted(set(record) - POST_KEYS)]
    if record.get("$type") != "app.bsky.feed.post":
        problems.append(f"record $type {record.get('$type')!r}")
    text = record.get("text")
    if not isinstance(text, str):
        return [*problems, "text is missing or not a string"]
    if len(text.encode("utf-8")) > 3000 or graphemes(text) > 300:
        problems.append("text over 3000 bytes or 300 graphemes")
    created = record.get("createdAt")
    if not isinstance(created, str) or not DATETIME.fullmatch(created) or created.endswith("-00:00"):
        problems.append(f"createdAt {created!r} is not an RFC 3339 datetime")
    else:
        datetime.fromisoformat(created.replace("Z", "+00:00"))
    size = len(text.encode("utf-8"))
    for facet in record.get("facets", []):
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if set(facet) - {"index", "features", "$type"} or set(index) - {"byteStart", "byteEnd", "$type"}:
            problems.append(f"facet keys {sorted(facet)}")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= size):
            problems.append(f"facet index {index} outside the text's {size} UTF-8 bytes")
        features = facet.get("features")
        if not isinstance(features, list) or not features:
            problems.append("facet without features")
            continue
        for feature in features:
            kind = feature.get("$type")
            if kind == "app.bsky.richtext.facet#link":
                if not isinstance(feature.get("uri"), str) or not URI.fullmatch(feature["uri"]):
                    problems.append(f"link facet uri {feature.get('uri')!r}")
            elif kind == "app.bsky.richtext.facet#tag":
                tag = feature.get("tag")
                if not isinstance(tag, str) or len(tag.encode()) > 640 or graphemes(tag) > 64:
                    problems.append(f"tag facet {tag!r}")
            elif kind == "app.bsky.richtext.facet#mention":
                if not DID_RE.fullmatch(str(feature.get("did"))):
                    problems.append("mention facet did")
            else:
                problems.append(f"facet feature $type {kind!r}")
    langs = record.get("langs", [])
    if not isinstance(langs, list) or len(langs) > 3 or not all(LANGUAGE.fullmatch(str(x)) for x in langs):
        problems.append(f"langs {langs!r}")
    embed = record.get("embed")
    if embed is not None:
        problems += external_problems(embed, blobs)
    return problems


def external_problems(embed: dict[str, Any], blobs: dict[str, tuple[bytes, str]]) -> list[str]:
    if embed.get("$type") != "app.bsky.embed.external" or set(embed) != {"$type", "external"}:
        return [f"embed {sorted(embed)} of $type {embed.get('$type')!r}"]
    external = embed["external"]
    problems = [
        f"external: missing {k}"
        for k in ("uri", "title", "description")
        if not isinstance(external.get(k), str)
    ]
    problems += [
        f"external: unknown key {k}"
        for k in set(external) - {"uri", "title", "description", "thumb", "$type"}
    ]
    if isinstance(external.get("uri"), str) and not URI.fullmatch(external["uri"]):
        problems.append("external uri")
    thumb = external.get("thumb")
    if thumb is not None:
        if set(thumb) != {"$type", "ref", "mimeType", "size"} or thumb["$type"] != "blob":
            return [*problems, f"thumb {thumb!r} is not a blob ref"]
        link = (thumb.get("ref") or {}).get("$link")
        if link not in blobs:
            return [*problems, f"thumb refers to blob {link!r}, which was never uploaded"]
        data, mime = blobs[link]
        if thumb["mimeType"] != mime or thumb["size"] != len(data):
            problems.append("thumb mimeType/size differ from the uploaded blob's")
        if not mime.startswith("image/") or len(data) > 1_000_000:
            problems.append("thumb is not an image/* within 1,000,000 bytes")
    return problems


@pytest.fixture
def pds():
    with serving(Pds()) as server:
        yield server
        server.released.set()


ARTICLE = """\
---
title: 'Tides 🌊 of the Île-d’Yeu harbour'
description: 'Keepers’ notes 👨‍👩‍👧‍👦 on tides, café data and 🇫🇷 flags.'
publish_date: '2026-11-30'
heroImage: '{image}'
lang: fr
tags: [tides, open data]
---

Harbour engineers built a tide predictor on a tiny budget.
"""


@pytest.fixture
def sky(site, pds, monkeypatch, clock_at):
    """A site with a bluesky channel and target aimed at `pds`, an article with an image there."""
    clock_at(NOW)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)
    site.article("tides.md", ARTICLE.format(image=f"{pds.url}/hero.png"))
    site.data["channels"] = {
        "sky": {"kind": "social", "network": "bluesky", "hashtags": ["#tides"], "targets": ["bsky"]}
    }
    site.data["targets"] = {
        "bsky": {
            "type": "bluesky",
            "service": pds.url,
            "handle": HANDLE,
            "password": "${BLUESKY_APP_PASSWORD}",
            "timeout": 2,
            "retries": 2,
        }
    }
    site.data["site"]["language"] = "en"
    site.write_config()
    return site


def target_of(site, **options):
    site.data["targets"]["bsky"].update(options)
    target = make_target("bsky", site.config())
    target.slept = []
    target.sleep = target.slept.append  # record the waits instead of waiting
    return target


def the_post(site):
    config = site.config()
    loaded = load_articles(config)
    assert [p for p in loaded.problems if p.severity == "error"] == []
    post, problems = compose_post(loaded.articles[0], "sky", config)
    assert post is not None, problems
    return post


def message_for(post) -> Message:
    return Message(MessageKey("sky", "bsky", post.key, ""), post.content_hash, post.as_dict)


def test_session_image_upload_and_record_in_that_order(sky, pds):
    post = the_post(sky)
    target = target_of(sky)
    with target.open() as connection:
        result = connection.send(message_for(post))
    rkey = record_key(MessageKey("sky", "bsky", post.key, ""))
    assert (result.outcome, result.detail) == ("sent", f"at://{DID}/app.bsky.feed.post/{rkey}")
    assert pds.violations == []
    assert pds.nsids() == [
        "com.atproto.server.createSession",
        "com.atproto.repo.getRecord",  # nothing under the key yet
        "com.atproto.repo.uploadBlob",
        "com.atproto.repo.createRecord",
    ]
    session, lookup, upload, create = pds.calls
    assert json.loads(session[3]) == {"identifier": HANDLE, "password": PASSWORD}
    assert "Authorization" not in session[2]
    assert upload[3] == PNG and upload[2]["Content-Type"] == "image/png"
    assert upload[2]["Authorization"] == create[2]["Authorization"] == "Bearer access-1"
    request = json.loads(create[3])
    # From syndicate.clock (the seam clock_at set, running on from there), to the millisecond.
    created = request["record"].pop("createdAt")
    assert re.fullmatch(r"2026-12-07T08:05:\d\d\.\d{3}Z", created)
    assert NOW.replace(microsecond=123000) <= datetime.fromisoformat(created) <= clock.now()
    [(cid, (data, mime))] = pds.blobs.items()
    assert request == {
        "repo": DID,
        "collection": "app.bsky.feed.post",
        "rkey": rkey,
        "record": {
            "$type": "app.bsky.feed.post",
            "text": post.text,
            "facets": list(post.facets),
            "langs": ["fr"],  # the article's own lang, before site.language
            "embed": {
                "$type": "app.bsky.embed.external",
                "external": {
                    "uri": post.link,
                    "title": "Tides 🌊 of the Île-d’Yeu harbour",
                    "description": "Keepers’ notes 👨‍👩‍👧‍👦 on tides, café data and 🇫🇷 flags.",
                    "thumb": {
                        "$type": "blob",
                        "ref": {"$link": cid},
                        "mimeType": "image/png",
                        "size": len(PNG),
                    },
                },
            },
        },
    }
    assert (data, mime) == (PNG, "image/png")
    assert pds.records == {rkey: {**request["record"], "createdAt": created}}


def test_the_facets_address_the_link_and_tag_by_utf8_bytes(sky, pds):
    post = the_post(sky)
    with target_of(sky).open() as connection:
        assert connection.send(message_for(post)).outcome == "sent"
    [record] = pds.records.values()
    raw = record["text"].encode("utf-8")
    links, tags = [], []
    for facet in record["facets"]:
        [feature] = facet["features"]
        span = raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")
        if feature["$type"] == "app.bsky.richtext.facet#link":
            links.append((span, feature["uri"]))
        else:
            tags.append((span, "#" + feature["tag"]))
    assert links == [(post.link, post.link)]
    assert "#tides" in post.hashtags and len(tags) == len(post.hashtags)
    assert all(span == tag for span, tag in tags)
    assert len(raw) > len(record["text"])  # multi-byte characters before the facets: bytes, not characters


def test_a_long_post_stays_within_300_graphemes_counted_apart(sky, pds):
    """The description is long in code points (families of four, flags): the post is cut to 300
    grapheme clusters as regex's \\X counts them, and the server accepts it."""
    family = "👨‍👩‍👧‍👦"  # 7 code points, 1 grapheme
    long = " ".join([f"{family} tide {n} 🇫🇷" for n in range(80)])
    sky.article("tides.md", ARTICLE.format(image=f"{pds.url}/hero.png").replace("Keepers’ notes", long))
    post = the_post(sky)
    with target_of(sky).open() as connection:
        assert connection.send(message_for(post)).outcome == "sent"
    [record] = pds.records.values()
    assert graphemes(record["text"]) <= 300 < len(record["text"])  # more code points than the limit
    assert graphemes(record["text"]) > 250  # shortened to fit, not dropped
    assert pds.violations == []


def test_the_server_refuses_what_the_lexicons_do_not_allow(pds):
    """The checks the other tests rely on do refuse: a bad rkey, createdAt, facet, embed and thumb."""
    pds.blobs["bafkreix"] = (PNG, "image/png")
    good = {
        "$type": "app.bsky.feed.post",
        "text": "héllo https://e.org",
        "createdAt": "2026-12-07T08:05:00.123Z",
        "facets": [
            {
                "index": {"byteStart": 7, "byteEnd": 20},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://e.org"}],
            }
        ],
        "embed": {
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": "https://e.org",
                "title": "t",
                "description": "d",
                "thumb": {
                    "$type": "blob",
                    "ref": {"$link": "bafkreix"},
                    "mimeType": "image/png",
                    "size": len(PNG),
                },
            },
        },
    }
    assert post_problems(good, pds.blobs) == []
    bad = [
        {**good, "createdAt": "2026-12-07 08:05:00"},
        {**good, "createdAt": "2026-12-07T08:05:00"},
        {**good, "$type": "app.bsky.feed.like"},
        {**good, "text": "x" * 301},
        {
            **good,
            "facets": [{"index": {"byteStart": 7, "byteEnd": 21}, "features": good["facets"][0]["features"]}],
        },
        {**good, "embed": {"$type": "app.bsky.embed.images", "images": []}},
        {
            **good,
            "embed": {
                "$type": "app.bsky.embed.external",
                "external": {
                    **good["embed"]["external"],
                    "thumb": {
                        "$type": "blob",
                        "ref": {"$link": "bafkreiy"},
                        "mimeType": "image/png",
                        "size": len(PNG),
                    },
                },
            },
        },
        {**good, "langs": ["en", "fr", "de", "it"]},
        {**good, "title": "x"},
    ]
    assert all(post_problems(record, pds.blobs) for record in bad)


def test_no_image_means_a_card_without_thumb_and_says_so(sky, pds):
    pds.image = (b"<html>not found</html>", "text/html")
    post = the_post(sky)
    with target_of(sky).open() as connection:
        result = connection.send(message_for(post))
    assert result.outcome == "sent"
    assert result.detail.endswith(
        "(link card without a thumbnail: the image is text/html "
        "(expected one of image/gif, image/jpeg, image/png, image/webp))"
    )
    assert "com.atproto.repo.uploadBlob" not in pds.nsids() and pds.violations == []
    [record] = pds.records.values()
    assert "thumb" not in record["embed"]["external"] and record["embed"]["external"]["uri"] == post.link


def test_an_image_over_the_lexicons_million_bytes_is_not_uploaded(sky, pds):
    pds.image = (b"\xff\xd8" + b"\0" * 1_000_000, "image/jpeg")
    post = the_post(sky)
    with target_of(sky).open() as connection:
        result = connection.send(message_for(post))
    assert (
        result.outcome == "sent"
        and "link card without a thumbnail: the image is 1,000,002 bytes (at most 1,000,000)" in result.detail
    )
    assert "com.atproto.repo.uploadBlob" not in pds.nsids() and pds.violations == []


def test_an_image_slower_than_timeout_leaves_the_card_without_thumb(sky, pds):
    pds.image_delay = 3.0
    post = the_post(sky)
    with target_of(sky, timeout=1).open() as connection:
        result = connection.send(message_for(post))
    assert result.outcome == "sent"
    assert result.detail.endswith(
        "(link card without a thumbnail: the image could not be fetched (ReadTimeout))"
    )
    assert "com.atproto.repo.uploadBlob" not in pds.nsids() and len(pds.records) == 1


def test_the_servers_message_never_carries_the_password_or_tokens(sky, pds):
    echo = json.dumps({"error": "InvalidRequest", "message": f"bad {PASSWORD} access-1 refresh-1"}).encode()
    pds.script["com.atproto.repo.createRecord"] = deque([(400, {"Content-Type": "application/json"}, echo)])
    post = the_post(sky)
    with target_of(sky).open() as connection:
        result = connection.send(message_for(post))
    assert (result.outcome, result.detail) == (
        "failed",
        "HTTP 400 InvalidRequest: bad [secret] [secret] [secret]",
    )


def test_an_answer_lost_after_the_record_was_stored_is_unknown_and_a_resend_posts_nothing_new(sky, pds):
    pds.hold = 4.0  # stored, then silent past the client's timeout
    post = the_post(sky)
    target = target_of(sky, timeout=1)
    with target.open() as connection:
        first = connection.send(message_for(post))
    rkey = record_key(MessageKey("sky", "bsky", post.key, ""))
    assert first.outcome == "unknown"
    assert first.detail == (
        "no answer after the request was sent (ReadTimeout: none within 1 s): the receiver may have it "
        f"(a resend is safe: it names record {rkey})"
    )
    pds.hold = 0.0
    with target.open() as connection:  # the next run sends it again (schedule.unknown: resend)
        again = connection.send(message_for(post))
    assert (again.outcome, again.detail) == (
        "sent",
        f"at://{DID}/app.bsky.feed.post/{rkey} (already posted: found under its record key)",
    )
    assert len(pds.records) == 1 and pds.nsids().count("com.atproto.repo.createRecord") == 1
    assert pds.violations == []


@pytest.mark.parametrize("duplicate", [500, 409])
def test_a_create_that_meets_its_own_record_counts_as_sent(sky, pds, duplicate):
    """The server stores the record, then answers 502: the retry meets the record under the same
    key (the reference PDS answers that with a 500, others with 409) and getRecord shows it is ours."""
    pds.duplicate = duplicate
    pds.script["com.atproto.repo.createRecord"] = deque(["store-then-502"])
    post = the_post(sky)
    target = target_of(sky, retries=1)
    with target.open() as connection:
        result = connection.send(message_for(post))
    assert result.outcome == "sent" and result.detail.endswith("(already posted: found under its record key)")
    assert pds.nsids().count("com.atproto.repo.createRecord") == 2 and len(pds.records) == 1
    assert pds.violations == []


def test_a_record_under_the_key_that_is_not_ours_is_left_alone(sky, pds):
    post = the_post(sky)
    rkey = record_key(MessageKey("sky", "bsky", post.key, ""))
    pds.records[rkey] = {
        "$type": "app.bsky.feed.post",
        "text": "someone else's",
        "createdAt": "2026-01-01T00:00:00Z",
    }
    with target_of(sky).open() as connection:
        result = connection.send(message_for(post))
    assert result.outcome == "failed" and f"record {rkey} already holds another post" in result.detail
    assert "com.atproto.repo.createRecord" not in pds.nsids()
    assert pds.records[rkey]["text"] == "someone else's"


def test_the_record_key_is_a_tid_stable_per_message_and_new_for_a_deliberate_resend():
    key = MessageKey("sky", "bsky", "sky:tides", "")
    assert record_key(key) == record_key(MessageKey("sky", "bsky", "sky:tides", ""))
    assert TID.fullmatch(record_key(key))
    others = {record_key(MessageKey("sky", "bsky", f"sky:{n}", "")) for n in range(1000)}
    assert len(others) == 1000 and all(TID.fullmatch(k) for k in others)
    assert record_key(key, "nonce-1") != record_key(key) and TID.fullmatch(record_key(key, "nonce-1"))
    # Its timestamp (the top 53 bits, microseconds) is in 2023-2024: never in the future.
    value = 0
    for char in record_key(key):
        value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(char)
    assert 2023 <= datetime.fromtimestamp((value >> 10) / 1e6, UTC).year <= 2024


def test_429_waits_for_retry_after_then_posts(sky, pds):
    pds.script["com.atproto.repo.createRecord"] = deque([(429, {"Retry-After": "7"}, b"{}")])
    post = the_post(sky)
    target = target_of(sky)
    with target.open() as connection:
        result = connection.send(message_for(post))
    assert result.outcome == "sent" and target.slept == [7]
    assert pds.nsids().count("com.atproto.repo.createRecord") == 2 and len(pds.records) == 1


def test_429_with_only_ratelimit_reset_waits_until_the_reset(sky, pds):
    """Bluesky's own rate limiter says when the window resets (Unix seconds), with no Retry-After."""
    reset = int(NOW.timestamp()) + 42
    headers = {"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    pds.script["com.atproto.repo.createRecord"] = deque([(429, headers, b'{"error":"RateLimitExceeded"}')])
    post = the_post(sky)
    target = target_of(sky)
    with target.open() as connection:
        result = connection.send(message_for(post))
    assert result.outcome == "sent" and len(target.slept) == 1 and 40 <= target.slept[0] <= 42


def test_a_refused_login_is_one_line_naming_the_target_and_the_app_password(sky, pds, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "wrong-password-1234")
    post = the_post(sky)
    target = target_of(sky)
    with Ledger(sqlite_url(sky.root / "ledger.sqlite")) as ledger:
        report = dispatch([message_for(post)], target, ledger)
    assert report.error == (
        f"targets.bsky: Bluesky refused the login of {HANDLE} (HTTP 401 AuthenticationRequired: "
        "Invalid identifier or password); renew the app password (Settings > Privacy and security > "
        "App passwords) and set it in targets.bsky.password"
    )
    assert report.sent == 0 and report.pending == 1 and pds.records == {}
    assert "wrong-password-1234" not in report.error + caplog.text + repr(target.settings)


def test_a_401_on_the_post_fails_with_a_clear_line(sky, pds):
    pds.script["com.atproto.repo.createRecord"] = deque(
        [
            (
                401,
                {"Content-Type": "application/json"},
                b'{"error":"AuthenticationRequired","message":"Bad token scope"}',
            )
        ]
    )
    post = the_post(sky)
    with target_of(sky).open() as connection:
        result = connection.send(message_for(post))
    assert (result.outcome, result.detail) == (
        "failed",
        "HTTP 401 AuthenticationRequired: Bluesky refused the session of targets.bsky (renew its app "
        "password, or the account is suspended): Bad token scope",
    )
    assert pds.records == {}


def test_a_400_fails_with_the_servers_error(sky, pds):
    said = b'{"error":"InvalidRequest","message":"Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"}'
    pds.script["com.atproto.repo.createRecord"] = deque([(400, {"Content-Type": "application/json"}, said)])
    post = the_post(sky)
    with target_of(sky).open() as connection:
        result = connection.send(message_for(post))
    assert (result.outcome, result.detail) == (
        "failed",
        "HTTP 400 InvalidRequest: Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
    )


def test_an_expired_token_is_refreshed_once_and_the_post_made(sky, pds):
    post = the_post(sky)
    target = target_of(sky)
    with target.open() as connection:
        pds.expired.add("access-1")  # expires while the connection is open
        result = connection.send(message_for(post))
    assert result.outcome == "sent" and pds.violations == []
    assert pds.nsids() == [
        "com.atproto.server.createSession",
        "com.atproto.repo.getRecord",
        "com.atproto.repo.uploadBlob",  # ExpiredToken
        "com.atproto.server.refreshSession",
        "com.atproto.repo.uploadBlob",
        "com.atproto.repo.createRecord",
    ]
    assert pds.calls[3][2]["Authorization"] == "Bearer refresh-1"
    assert pds.calls[4][2]["Authorization"] == pds.calls[5][2]["Authorization"] == "Bearer access-2"
    assert len(pds.records) == 1


def test_a_refused_refresh_fails_the_post_without_posting(sky, pds):
    post = the_post(sky)
    with target_of(sky).open() as connection:
        pds.expired.add("access-1")
        pds.refresh.clear()
        result = connection.send(message_for(post))
    assert result.outcome == "failed"
    assert result.detail.startswith(
        "HTTP 401 InvalidToken: Bluesky refused to refresh the session of targets.bsky"
    )
    assert pds.records == {}


def test_email_is_refused_without_a_request(sky, pds):
    from .sample_mail import email_for

    target = target_of(sky)
    with target.open() as connection:
        before = len(pds.calls)
        result = connection.send(
            Message(
                MessageKey("weekly", "bsky", "w", "a@example.org"), "h", lambda: email_for("a@example.org")
            )
        )
    assert (
        result.outcome == "failed" and "posts social posts only" in result.detail and len(pds.calls) == before
    )


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"service": "http://bsky.example.org"}, "targets.bsky.service: is not https"),
        ({"handle": "not a handle"}, "targets.bsky.handle: 'not a handle' is not a handle"),
        ({"password": ""}, "targets.bsky.password: is missing or empty (expected an app password"),
        ({"url": "https://bsky.social"}, "targets.bsky.url: is not a known key"),
    ],
)
def test_config_mistakes_are_one_line_errors(sky, settings, error):
    sky.data["targets"]["bsky"].update(settings)
    with pytest.raises(ConfigError, match=re.escape(error)):
        sky.config()


def test_the_service_defaults_to_bsky_social_and_only_bluesky_channels_may_use_it(sky):
    del sky.data["targets"]["bsky"]["service"]
    assert sky.config().targets["bsky"].url == "https://bsky.social"
    sky.data["channels"]["li"] = {"kind": "social", "network": "linkedin", "targets": ["bsky"]}
    with pytest.raises(ConfigError, match="'bsky' is a bluesky target, which posts to Bluesky"):
        sky.config()


def test_syndicate_send_posts_once_and_a_dry_run_contacts_nothing(sky, pds):
    """End to end, with the ledger in .syndicate/ledger.sqlite: a dry run, a send, a second send."""
    runner = CliRunner()
    dry = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert pds.calls == [] and not (sky.root / ".syndicate" / "ledger.sqlite").exists()
    sent = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
    assert sent.exit_code == 0, sent.output
    assert len(pds.records) == 1 and pds.violations == []
    again = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
    assert again.exit_code == 0, again.output
    assert len(pds.records) == 1 and pds.nsids().count("com.atproto.repo.createRecord") == 1
    with Ledger.from_config(sky.config()) as ledger:
        counts = ledger.counts()
    assert sum(c.get("sent", 0) for c in counts.values()) == 1
    assert PASSWORD not in dry.output + sent.output + again.output


def test_syndicate_send_after_a_lost_answer_resends_safely(sky, pds):
    """A lost answer leaves the post `unknown`; with schedule.unknown: resend the next run sends it
    again, and the record key makes that a no-op on the server: one record."""
    sky.data["targets"]["bsky"]["timeout"] = 1
    pds.hold = 4.0
    sky.write_config()
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
    assert first.exit_code != 0 and "unknown" in first.output and len(pds.records) == 1
    pds.hold = 0.0
    sky.data["schedule"] = {"unknown": "resend"}
    sky.write_config()
    second = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
    assert second.exit_code == 0, second.output
    assert len(pds.records) == 1 and pds.nsids().count("com.atproto.repo.createRecord") == 1
    with Ledger.from_config(sky.config()) as ledger:
        counts = ledger.counts()
    assert sum(c.get("sent", 0) for c in counts.values()) == 1
    assert pds.violations == []


def test_facets_from_the_composer_pass_the_servers_check():
    """bluesky_facets' offsets against the same checker, on text with 4-byte characters before a link."""
    text = "🌊🇫🇷 é https://example.com/a?x=1 #tides"
    record = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2026-12-07T08:05:00Z",
        "facets": bluesky_facets(text, ["#tides"]),
    }
    assert post_problems(record, {}) == [] and len(record["facets"]) == 2


# -- a real PDS ----------------------------------------------------------------------------------
# With SYNDICATE_TEST_PDS naming a folder where `npm install @atproto/pds@0.4` was run (0.5 needs
# Node 22; 0.4.217 runs on Node 20), the reference PDS itself runs on loopback, its DIDs kept by
# the little did:plc directory below: it validates records with the real lexicons and keeps them.


class _Plc(BaseHTTPRequestHandler):
    """did:plc as far as a PDS needs it: each DID's last operation, and its document."""

    ops: dict[str, dict[str, Any]] = {}

    def do_POST(self) -> None:
        self.ops[self.path.strip("/")] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(200, b"")

    def do_GET(self) -> None:
        did, *rest = self.path.strip("/").split("/")
        op = self.ops.get(did)
        if op is None:
            return self._send(404, b"")
        if rest == ["data"]:
            keys = ("verificationMethods", "rotationKeys", "alsoKnownAs", "services")
            return self._send(200, json.dumps({"did": did, **{k: op[k] for k in keys}}).encode())
        methods = [
            {"id": f"{did}#{name}", "type": "Multikey", "controller": did, "publicKeyMultibase": key[8:]}
            for name, key in op["verificationMethods"].items()
        ]
        services = [
            {"id": f"#{name}", "type": s["type"], "serviceEndpoint": s["endpoint"]}
            for name, s in op["services"].items()
        ]
        doc = {
            "id": did,
            "alsoKnownAs": op["alsoKnownAs"],
            "verificationMethod": methods,
            "service": services,
        }
        return self._send(200, json.dumps({"@context": ["https://www.w3.org/ns/did/v1"], **doc}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


PDS_SCRIPT = """
const { PDS, envToCfg, envToSecrets, readEnv } = require('@atproto/pds')
;(async () => {
  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  await pds.start()
  console.log('listening')
})().catch((err) => { console.error(err); process.exit(1) })
"""


@pytest.fixture
def real_pds(tmp_path):
    """(service URL, handle, app password) of a reference PDS on loopback, with one account."""
    import os
    import subprocess
    import time

    import requests

    from .conftest import free_port

    folder = os.environ.get("SYNDICATE_TEST_PDS")
    if not folder:
        pytest.skip("SYNDICATE_TEST_PDS is not set (a folder with node_modules/@atproto/pds)")
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Plc)) as plc:
        port = free_port()
        env = {
            **os.environ,
            "PDS_PORT": str(port),
            "PDS_HOSTNAME": "localhost",
            "PDS_DEV_MODE": "true",
            "PDS_JWT_SECRET": "test-jwt-secret",
            "PDS_ADMIN_PASSWORD": "test-admin",
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": hashlib.sha256(b"rotation").hexdigest(),
            "PDS_DATA_DIRECTORY": str(tmp_path / "pds"),
            "PDS_BLOBSTORE_DISK_LOCATION": str(tmp_path / "blobs"),
            "PDS_DID_PLC_URL": f"http://127.0.0.1:{plc.server_address[1]}",
            "PDS_INVITE_REQUIRED": "false",
        }
        (tmp_path / "pds").mkdir()
        node = subprocess.Popen(
            ["node", "-e", PDS_SCRIPT], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            service = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if requests.get(f"{service}/xrpc/_health", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            else:
                pytest.fail("the PDS did not start within 30 s")
            account = {
                "handle": "syndicate-bot.test",
                "email": "bot@example.com",
                "password": "long-pass-123",
            }
            made = requests.post(f"{service}/xrpc/com.atproto.server.createAccount", json=account, timeout=10)
            assert made.status_code == 200, made.text
            auth = {"Authorization": f"Bearer {made.json()['accessJwt']}"}
            app = requests.post(
                f"{service}/xrpc/com.atproto.server.createAppPassword",
                json={"name": "syndicate"},
                headers=auth,
                timeout=10,
            )
            assert app.status_code == 200, app.text
            yield service, account["handle"], app.json()["password"], made.json()["did"]
        finally:
            node.terminate()
            node.wait(10)


def test_a_real_pds_takes_the_post_with_its_card_and_thumbnail_once(sky, pds, real_pds, monkeypatch):
    """The reference PDS validates the record (lexicon, TID rkey, blob ref) and keeps one record
    however often the message is sent; its own answer to the second create is a 500."""
    import requests

    service, handle, app_password, did = real_pds
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", app_password)
    target = target_of(sky, service=service, handle=handle)
    post = the_post(sky)  # its image is served by `pds` (only the image: the posts go to the PDS)
    with target.open() as connection:
        first = connection.send(message_for(post))
        again = connection.send(message_for(post))
    rkey = record_key(MessageKey("sky", "bsky", post.key, ""))
    assert (first.outcome, first.detail) == ("sent", f"at://{did}/app.bsky.feed.post/{rkey}")
    assert (again.outcome, again.detail) == (
        "sent",
        f"{first.detail} (already posted: found under its record key)",
    )
    listed = requests.get(
        f"{service}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
        timeout=10,
    ).json()["records"]
    assert [r["uri"] for r in listed] == [first.detail]
    value = listed[0]["value"]
    assert value["text"] == post.text and graphemes(value["text"]) <= 300
    thumb = value["embed"]["external"]["thumb"]
    assert thumb["mimeType"] == "image/png" and thumb["size"] == len(PNG)
    assert thumb["ref"]["$link"] == cid_of(PNG)  # the PDS names the blob by the CID of its bytes
    assert post_problems(value, {cid_of(PNG): (PNG, "image/png")}) == []
    # The reference PDS's answer to a second create under the same key (why the target looks first).
    session = requests.post(
        f"{service}/xrpc/com.atproto.server.createSession",
        json={"identifier": handle, "password": app_password},
        timeout=10,
    ).json()
    duplicate = requests.post(
        f"{service}/xrpc/com.atproto.repo.createRecord",
        json={"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": value},
        headers={"Authorization": f"Bearer {session['accessJwt']}"},
        timeout=10,
    )
    assert duplicate.status_code == 500


class _Slow(BaseHTTPRequestHandler):
    """Passes every request on to the real PDS at `upstream`; holds createRecord's answer
    `hold` seconds after the PDS gave it (the post is stored, the client hears nothing)."""

    upstream = ""
    hold = 0.0
    released = threading.Event()

    def _pass(self) -> None:
        import requests

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(
            self.command, self.upstream + self.path, data=body, headers=headers, timeout=30
        )
        if self.path.startswith("/xrpc/com.atproto.repo.createRecord") and type(self).hold:
            type(self).released.wait(type(self).hold)
        try:
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = _pass

    def log_message(self, *args) -> None:
        pass


def test_syndicate_send_to_a_real_pds_after_a_lost_answer_posts_once(sky, pds, real_pds, monkeypatch):
    """`syndicate send` through a proxy that holds createRecord's answer past `timeout`: the post is
    `unknown`; the next run (schedule.unknown: resend) sends it again and the PDS still has one."""
    import requests

    service, handle, app_password, did = real_pds
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", app_password)
    _Slow.upstream, _Slow.hold = service, 4.0
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Slow)) as proxy:
        bsky = sky.data["targets"]["bsky"]
        bsky.update(service=f"http://127.0.0.1:{proxy.server_address[1]}", handle=handle, timeout=1)
        sky.write_config()
        runner = CliRunner()
        first = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
        assert first.exit_code != 0 and "unknown" in first.output, first.output
        _Slow.hold = 0.0
        sky.data["schedule"] = {"unknown": "resend"}
        sky.write_config()
        second = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
        assert second.exit_code == 0, second.output
        third = runner.invoke(cli, ["--config", str(sky.config_path), "send", "--all"])
        assert third.exit_code == 0, third.output
        _Slow.released.set()
    listed = requests.get(
        f"{service}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
        timeout=10,
    ).json()["records"]
    assert len(listed) == 1
    with Ledger.from_config(sky.config()) as ledger:
        counts = ledger.counts()
    assert sum(c.get("sent", 0) for c in counts.values()) == 1
    assert app_password not in first.output + second.output + third.output
