"""`content.feed`: RSS 2.0, Atom and JSON Feed entries as articles, served by a real HTTP server
on 127.0.0.1: every field of 50 entries, conditional GET (a 304 keeps the articles), a
malformed, too large or failing feed in one line, entries without a link, date or title skipped
with one line each, a local file, the config's forms, and the daemon sending a feed's entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicate import clock
from syndicate.config import config_from_dict
from syndicate.content import ArticleCache, display, identity, load_articles
from syndicate.content.feed import FeedPath
from syndicate.errors import ConfigError, ContentError
from syndicate.identity import identify

from .conftest import assert_inert, serving
from .test_daemon import running, wait_for

LONDON = ZoneInfo("Europe/London")
FIRST = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
SERVED_AT = "Mon, 30 Nov 2026 12:00:00 GMT"


# -- the test data: invented entries, written as RSS 2.0, Atom or JSON Feed -------------------


def entries(count: int = 50, start: datetime = FIRST) -> list[dict]:
    """`count` entries of a harbour blog, one every six hours from `start`, every field set."""
    return [
        {
            "id": f"tag:harbour.example.org,2026:note-{n}",
            "link": f"https://harbour.example.org/2026/notes/harbour-note-{n}/",
            "title": f"Harbour note {n} & tides",
            "summary": f"Summary of note {n}.",
            "content": (
                f"<p>Note {n} <b>bold</b> about the <a href='https://harbour.example.org/tides'>tides</a>."
                "<script>alert(1)</script><img src='http://track.example.org/p.gif' onerror='alert(1)'>"
                "<img src='https://img.harbour.example.org/chart.png' alt='Chart' width=9></p><p>Second paragraph.</p>"
            ),
            "author": f"Keeper {n % 3}",
            "published": start + timedelta(hours=6 * n),
            "updated": start + timedelta(hours=6 * n, minutes=30),
            "image": f"https://img.harbour.example.org/note-{n}.jpg",
            "tags": ["harbours", f"week-{n // 7}"],
        }
        for n in range(count)
    ]


def written(moment: datetime | str, rfc822: bool = False) -> str:
    """A date as a feed writes it; text as it is (a date that cannot be read)."""
    if isinstance(moment, str):
        return moment
    return format_datetime(moment) if rfc822 else moment.isoformat()


def rss(items: list[dict]) -> bytes:
    """Odd entries give their image as media:content, even ones as an enclosure."""

    def item(n: int, e: dict) -> str:
        parts = []
        if e.get("title") is not None:
            parts.append(f"<title>{escape(e['title'])}</title>")
        if e.get("link") is not None:
            parts.append(f"<link>{escape(e['link'])}</link>")
        parts.append(f'<guid isPermaLink="false">{escape(e["id"])}</guid>')
        if e.get("published") is not None:
            parts.append(f"<pubDate>{written(e['published'], rfc822=True)}</pubDate>")
        if e.get("updated") is not None:
            parts.append(f"<atom:updated>{written(e['updated'])}</atom:updated>")
        parts.append(f"<dc:creator>{escape(e['author'])}</dc:creator>")
        parts.extend(f"<category>{escape(t)}</category>" for t in e["tags"])
        parts.append(f"<description>{escape(e['summary'])}</description>")
        parts.append(f"<content:encoded>{escape(e['content'])}</content:encoded>")
        if n % 2:
            parts.append(f'<media:content url="{escape(e["image"])}" medium="image"/>')
        else:
            parts.append(f'<enclosure url="{escape(e["image"])}" type="image/jpeg" length="1000"/>')
        return "<item>" + "".join(parts) + "</item>"

    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:media="http://search.yahoo.com/mrss/">'
        "<channel><title>Harbour notes</title><link>https://harbour.example.org/</link>"
        "<description>Notes</description>"
        + "".join(item(n, e) for n, e in enumerate(items))
        + "</channel></rss>"
    ).encode()


def atom(items: list[dict]) -> bytes:
    def entry(e: dict) -> str:
        parts = [f"<id>{escape(e['id'])}</id>"]
        if e.get("title") is not None:
            parts.append(f"<title>{escape(e['title'])}</title>")
        if e.get("link") is not None:
            parts.append(f'<link rel="alternate" href="{escape(e["link"])}"/>')
        if e.get("published") is not None:
            parts.append(f"<published>{written(e['published'])}</published>")
        if e.get("updated") is not None:
            parts.append(f"<updated>{written(e['updated'])}</updated>")
        parts.append(f"<author><name>{escape(e['author'])}</name></author>")
        parts.extend(f'<category term="{escape(t)}"/>' for t in e["tags"])
        parts.append(f"<summary>{escape(e['summary'])}</summary>")
        parts.append(f'<content type="html">{escape(e["content"])}</content>')
        parts.append(f'<media:thumbnail url="{escape(e["image"])}"/>')
        return "<entry>" + "".join(parts) + "</entry>"

    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">'
        "<title>Harbour notes</title><id>tag:harbour.example.org,2026:feed</id>"
        "<updated>2026-11-30T12:00:00Z</updated>" + "".join(entry(e) for e in items) + "</feed>"
    ).encode()


def json_feed(items: list[dict], version: str = "1.1") -> bytes:
    def item(e: dict) -> dict:
        out = {
            "id": e["id"],
            "summary": e["summary"],
            "content_html": e["content"],
            "image": e["image"],
            "tags": e["tags"],
        }
        out |= {"authors": [{"name": e["author"]}]} if version == "1.1" else {"author": {"name": e["author"]}}
        if e.get("title") is not None:
            out["title"] = e["title"]
        if e.get("link") is not None:
            out["url"] = e["link"]
        if e.get("published") is not None:
            out["date_published"] = written(e["published"])
        if e.get("updated") is not None:
            out["date_modified"] = written(e["updated"])
        return out

    doc = {
        "version": "https://jsonfeed.org/version/1" + ("" if version == "1.0" else f".{version[2:]}"),
        "title": "Harbour notes",
        "items": [item(e) for e in items],
    }
    return json.dumps(doc).encode()


FORMATS = {
    "rss": (rss, "application/rss+xml; charset=utf-8"),
    "atom": (atom, "application/atom+xml"),
    "json-1.1": (json_feed, "application/feed+json"),
    "json-1.0": (lambda items: json_feed(items, "1.0"), "application/json"),
}


# -- the server ---------------------------------------------------------------------------


class FeedServer(ThreadingHTTPServer):
    """Serves one feed on 127.0.0.1 with an ETag and a Last-Modified, answering a conditional GET
    that matches with 304; records every request's headers. `endless` streams the body without a
    Content-Length until the client hangs up (counting what it wrote); `status` answers with that."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FeedHandler)
        self.body, self.content_type = b"", "application/rss+xml"
        self.etag: str | None = None
        self.last_modified = SERVED_AT
        self.status = 200
        self.declare_length = True
        self.endless = False
        self.written = 0
        self.requests: list[dict[str, str]] = []
        self.statuses: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/feed"

    def serve(self, body: bytes, content_type: str | None = None) -> None:
        """A new version of the feed: a new body and ETag."""
        self.body = body
        self.content_type = content_type or self.content_type
        self.etag = f'"v{len(self.statuses)}-{len(body)}"'


class _FeedHandler(BaseHTTPRequestHandler):
    server: FeedServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        s = self.server
        s.requests.append(dict(self.headers))
        fresh = s.etag is not None and self.headers.get("If-None-Match") == s.etag
        status = 304 if fresh and s.status == 200 else s.status
        s.statuses.append(status)
        self.send_response(status)
        if s.etag:
            self.send_header("ETag", s.etag)
        self.send_header("Last-Modified", s.last_modified)
        if status == 304:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Type", s.content_type)
        if s.endless:
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream()
            return
        if s.declare_length:
            self.send_header("Content-Length", str(len(s.body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(s.body)
        self.close_connection = not s.declare_length

    def _stream(self) -> None:
        chunk = b"<!-- " + b"x" * 65_000 + b" -->\n"
        self.close_connection = True
        try:
            self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
            while self.server.written < 500_000_000:
                self.wfile.write(chunk)
                self.server.written += len(chunk)
        except OSError:  # the reader stopped and hung up
            return

    def log_message(self, *args) -> None:
        pass


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    with serving(FeedServer()) as server:
        yield server


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with feed_server() as server:
        yield server


def feed_site(site, source: str | dict, keep_folder: bool = False):
    """The site reading `source` as its feed; its content folder removed unless `keep_folder`."""
    site.data["content"]["feed"] = source
    if not keep_folder:
        site.content.rmdir()
    site.write_config()
    return site.config()


# -- every field of 50 entries ---------------------------------------------------------------


@pytest.mark.parametrize("kind", list(FORMATS))
def test_a_feed_of_50_entries_loads_every_field(site, feed, kind):
    write, content_type = FORMATS[kind]
    expected = entries()
    feed.serve(write(expected), content_type)
    loaded = load_articles(feed_site(site, feed.url))

    assert loaded.problems == []
    assert len(loaded.articles) == 50
    for article, e in zip(loaded.articles, expected, strict=True):
        n = expected.index(e)
        assert article.title == f"Harbour note {n} & tides"
        assert article.url == e["link"] and article.url_field == "url"
        assert article.slug == f"harbour-note-{n}"
        assert article.id == e["id"] and identity(article) == f"id:{e['id']}"
        assert article.publish_date == e["published"] and article.publish_date.tzinfo == LONDON
        assert article.updated_date == e["updated"] and article.created_date is None
        assert article.author == f"Keeper {n % 3}"
        assert article.hero_image == e["image"]
        assert article.tags == ("harbours", f"week-{n // 7}")
        assert article.description == f"Summary of note {n}."
        assert article.excerpt == f"Note {n} bold about the tides. Second paragraph."
        assert article.read_minutes == 1
        assert str(article.path) == f"{feed.url}#{e['id']}"  # the feed's, and the entry's id
    body = loaded.articles[7].body_html
    assert_inert(body)
    assert "<b>bold</b>" in body and '<a href="https://harbour.example.org/tides">tides</a>' in body
    assert "alert" not in body and "track.example.org" not in body  # no script; an http image dropped
    assert '<img src="https://img.harbour.example.org/chart.png" alt="Chart">' in body
    assert len({a.content_hash for a in loaded.articles}) == 50
    assert feed.requests[0]["User-Agent"].startswith("syndicate/")


def test_an_entry_is_its_guid_in_the_ledger_when_its_link_changes(site, feed):
    items = entries(5)
    feed.serve(rss(items))
    config = feed_site(site, feed.url)
    identify(config, load_articles(config).articles, record=True, new_ledger=True)
    items[3]["link"] = "https://harbour.example.org/2026/notes/renamed-note/"
    feed.serve(rss(items))
    articles, renamed = identify(config, load_articles(config).articles, record=True)
    moved = next(a for a in articles if a.id == items[3]["id"])
    assert (moved.slug, moved.stem) == ("renamed-note", "harbour-note-3")  # its sends keep their names
    assert renamed == []  # the same entry path: nothing to tell


def test_feed_and_folder_are_both_loaded(site, feed):
    site.article(
        "2026-11-01-local-note.md",
        "---\ntitle: Local note\ncta: Reply.\ndescription: A note.\n---\nBody.\n",
    )
    feed.serve(rss(entries(3)))
    loaded = load_articles(feed_site(site, {"url": feed.url, "timeout_seconds": 5}, keep_folder=True))
    assert sorted(a.slug for a in loaded.articles) == [
        "harbour-note-0",
        "harbour-note-1",
        "harbour-note-2",
        "local-note",
    ]


def test_a_local_feed_file_relative_to_the_config(site):
    (site.root / "feeds").mkdir()
    (site.root / "feeds" / "harbour.atom").write_bytes(atom(entries(4)))
    loaded = load_articles(feed_site(site, "feeds/harbour.atom"))
    assert [a.slug for a in loaded.articles] == [f"harbour-note-{n}" for n in range(4)]
    assert [display(a.path) for a in loaded.articles] == [
        f"{site.root}/feeds/harbour.atom#tag:harbour.example.org,2026:note-{n}" for n in range(4)
    ]
    cache = ArticleCache(site.config())
    assert len(cache.refresh()) == 4 and cache.refresh() == {}  # unchanged file: not read again
    edited = entries(4)
    edited[2]["summary"] = "Summary of note 2, longer now."
    (site.root / "feeds" / "harbour.atom").write_bytes(atom(edited))
    assert list(cache.refresh()) == ["harbour-note-2"]


def test_feed_config_forms_and_refusals(site):
    data = site.data
    data["content"]["feed"] = "https://harbour.example.org/feed.xml"
    plain = config_from_dict(data, site.config_path).content.feed
    data["content"]["feed"] = {"url": "https://harbour.example.org/feed.xml", "max_bytes": 5000}
    full = config_from_dict(data, site.config_path).content.feed
    assert plain is not None and full is not None
    assert (plain.url, plain.timeout_seconds, plain.max_bytes) == (full.url, 10, 10_000_000)
    assert full.max_bytes == 5000
    for bad in ("file:///etc/passwd", "ftp://h.example/feed"):
        data["content"]["feed"] = bad
        with pytest.raises(ConfigError) as refused:
            config_from_dict(data, site.config_path)
        assert str(refused.value) == (
            f"{site.config_path}: content.feed.url: {bad!r} is not allowed "
            "(expected an http(s) URL or a local file path)"
        )


# -- conditional GET ------------------------------------------------------------------------


def test_repoll_is_a_conditional_get_and_a_304_keeps_the_articles(site, feed):
    feed.serve(rss(entries()))
    cache = ArticleCache(feed_site(site, feed.url))

    first = cache.refresh()
    assert len(first) == 50 and len(cache.loaded.articles) == 50
    known = list(cache.loaded.articles)

    assert cache.refresh() == {}  # not modified: nothing changed
    assert cache.refresh() == {}
    assert feed.statuses == [200, 304, 304]
    assert "If-None-Match" not in feed.requests[0] and "If-Modified-Since" not in feed.requests[0]
    for asked in feed.requests[1:]:
        assert asked["If-None-Match"] == feed.etag
        assert asked["If-Modified-Since"] == SERVED_AT
    assert all(a is b for a, b in zip(cache.loaded.articles, known, strict=True))  # the very same

    edited = entries()
    edited[4]["title"] = "Harbour note 4, corrected"
    feed.serve(rss(edited))
    changed = cache.refresh()
    assert feed.statuses[-1] == 200
    assert list(changed) == ["harbour-note-4"]  # only the edited entry: the others kept as they were
    assert changed["harbour-note-4"].title == "Harbour note 4, corrected"
    assert changed["harbour-note-4"].content_hash != known[4].content_hash


# -- failures: one line each ------------------------------------------------------------------


def test_a_malformed_feed_is_one_line_and_the_known_articles_are_kept(site, feed):
    feed.serve(rss(entries()))
    config = feed_site(site, feed.url)
    cache = ArticleCache(config)
    cache.refresh()

    feed.serve(b"<html><body>Maintenance <b>mode</p", "text/html")
    assert cache.refresh() == {}  # nothing dropped, nothing changed
    assert len(cache.loaded.articles) == 50
    [problem] = cache.loaded.problems
    line = str(problem)
    assert line.startswith(f"{feed.url}: feed: is not a feed (")
    assert line.endswith(
        "(expected an RSS 2.0, Atom or JSON Feed document); kept the 50 articles read before"
    )
    assert "\n" not in line
    assert cache.refresh() == {} and [str(p) for p in cache.loaded.problems] == [
        line
    ]  # still broken: still told
    assert feed.statuses[-2:] == [200, 200]  # asked in full: not "changed since" the broken version

    with pytest.raises(ContentError) as refused:  # a one-off load: the same line, as an error
        load_articles(config)
    assert str(refused.value).startswith(f"{feed.url}: is not a feed (")
    assert "\n" not in str(refused.value)

    feed.serve(rss(entries()))  # fixed: the problem goes
    cache.refresh()
    assert cache.loaded.problems == [] and len(cache.loaded.articles) == 50


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_too_large_feed_is_refused_in_one_line(site, feed, declared):
    big = rss(entries(50))
    feed.serve(big)
    feed.declare_length = declared
    config = feed_site(site, {"url": feed.url, "max_bytes": 20_000})
    with pytest.raises(ContentError) as refused:
        load_articles(config)
    message = str(refused.value)
    assert message.startswith(f"{feed.url}: is ")
    assert "over content.feed.max_bytes (20000" in message and "\n" not in message


def test_an_endless_feed_is_stopped_at_the_cap(site, feed):
    feed.endless = True
    config = feed_site(site, {"url": feed.url, "max_bytes": 1_000_000})
    with pytest.raises(
        ContentError, match=r"is over content.feed.max_bytes \(1000000 bytes\); stopped reading"
    ):
        load_articles(config)
    assert feed.written < 50_000_000  # it stopped reading long before the server would have


def test_http_errors_and_json_that_is_no_feed_are_one_line(site, feed):
    config = feed_site(site, feed.url)
    feed.serve(b"gone")
    feed.status = 503
    with pytest.raises(ContentError) as refused:
        load_articles(config)
    assert str(refused.value) == (
        f"{feed.url}: HTTP 503 Service Unavailable (expected an RSS 2.0, Atom or JSON Feed document)"
    )
    feed.status = 200
    feed.serve(b'{"version": "2", "items": []}', "application/json")
    with pytest.raises(ContentError, match=r": is JSON but not a JSON Feed \(version '2'\)"):
        load_articles(config)


def test_a_feed_that_does_not_answer_in_time_is_one_line(site, silent_server):
    url = f"http://127.0.0.1:{silent_server}/feed"
    config = feed_site(site, {"url": url, "timeout_seconds": 0.5})
    with pytest.raises(ContentError) as refused:
        load_articles(config)
    assert str(refused.value) == (
        f"{url}: did not answer within content.feed.timeout_seconds (0.5 s) "
        "(expected an RSS 2.0, Atom or JSON Feed document)"
    )


@pytest.mark.parametrize("kind", ["rss", "atom", "json-1.1"])
def test_entries_without_link_date_or_title_are_skipped_one_line_each(site, feed, kind):
    write, content_type = FORMATS[kind]
    items = entries(8)
    items[1]["link"] = None
    items[3]["published"] = items[3]["updated"] = None
    items[4]["title"] = None
    items[6]["link"] = "javascript:alert(1)"
    items[7]["published"], items[7]["updated"] = "someday soon", None
    feed.serve(write(items), content_type)
    loaded = load_articles(feed_site(site, feed.url))
    assert [a.slug for a in loaded.articles] == ["harbour-note-0", "harbour-note-2", "harbour-note-5"]
    assert [str(p) for p in loaded.problems] == [
        f"{feed.url}: entries[1].link: is missing in entry 2 (id 'tag:harbour.example.org,2026:note-1', "
        "'Harbour note 1 & tides') (expected the article's http(s) URL in <link> or url); the entry is skipped",
        f"{feed.url}: entries[3].published: is missing in entry 4 (id 'tag:harbour.example.org,2026:note-3', "
        "'Harbour note 3 & tides') (expected a published or updated date); the entry is skipped",
        f"{feed.url}: entries[4].title: is missing in entry 5 (id 'tag:harbour.example.org,2026:note-4') "
        "(expected a <title> or title); the entry is skipped",
        f"{feed.url}: entries[6].link: 'javascript:alert(1)' is not an http(s) URL in entry 7 "
        "(id 'tag:harbour.example.org,2026:note-6', 'Harbour note 6 & tides') "
        "(expected the article's https://... address); the entry is skipped",
        f"{feed.url}: entries[7].published: 'someday soon' is not a date in entry 8 "
        "(id 'tag:harbour.example.org,2026:note-7', 'Harbour note 7 & tides') "
        "(expected RFC 822 or ISO 8601 with an offset); the entry is skipped",
    ]
    assert all(p.severity == "error" for p in loaded.problems)


def test_the_feed_path_is_the_same_from_any_working_folder(tmp_path, monkeypatch):
    path = FeedPath.of("https://harbour.example.org/feed.xml")
    monkeypatch.chdir(tmp_path)
    assert str(path) == "https://harbour.example.org/feed.xml"
    assert Path(path).is_absolute() and path == FeedPath.of("https://harbour.example.org/feed.xml")


# -- the daemon -----------------------------------------------------------------------------


def test_the_daemon_sends_a_feed_entry_when_it_is_due(site, feed, clock_at):
    clock_at(datetime(2026, 12, 7, 8, 5, tzinfo=UTC))
    due = (clock.now() + timedelta(seconds=2)).replace(microsecond=0)
    items = entries(5, start=due - timedelta(hours=6 * 4))  # 0..3 in the past, 4 due in 2 s
    feed.serve(rss(items))
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["mail-outbox"]}}
    site.data["schedule"] = {"rescan_seconds": 0.2}
    outbox = site.root / "outbox" / "email"
    with running(feed_site(site, feed.url)) as (daemon, events):
        assert daemon.jobs() == {"article:letters:mail-outbox:harbour-note-4": due}
        wait_for(lambda: len(list(outbox.glob("*.eml"))) == 1, log=events)
        wait_for(lambda: len(feed.statuses) >= 3, log=events)  # rescans poll again: 304s
        polled = len(feed.statuses)
        feed.serve(b"<html>Maintenance</html>", "text/html")  # the feed breaks: one line, articles kept
        wait_for(lambda: any(e["event"] == "invalid" for e in events), log=events)
        wait_for(lambda: len(feed.statuses) >= polled + 3, log=events)
        assert len(daemon.articles.loaded.articles) == 5
    invalid = [e["reason"] for e in events if e["event"] == "invalid"]
    assert len(invalid) == 1 and invalid[0].startswith(f"{feed.url}: feed: is not a feed")
    assert invalid[0].endswith("; kept the 5 articles read before")
    [sent] = outbox.glob("*.eml")
    assert b"Harbour note 4" in sent.read_bytes()
    assert feed.statuses[0] == 200 and set(feed.statuses[1:polled]) == {304}
    assert [e["event"] for e in events].count("sent") == 1
    skipped = {e["draft"] for e in events if e["event"] == "skipped"}
    assert skipped == {f"letters:harbour-note-{n}" for n in range(4)}  # catch_up: skip, as for files
