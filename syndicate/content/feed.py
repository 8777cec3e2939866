"""A feed as the content source (`content.feed`): RSS 2.0 and Atom read through feedparser,
JSON Feed 1.0/1.1 read here, from an http(s) URL or a local file; each entry an `Article`.

`read_feed(config)` reads it once: a feed that cannot be fetched or parsed is one `ContentError`.
`FeedPoller` keeps it for the daemon's rescans: each `poll()` asks again with a conditional GET
(If-None-Match / If-Modified-Since; a 304 keeps the articles it has), and a failure is one error
`Problem` while the articles read before are kept. An entry without a title, link or date is one
error `Problem` naming the feed, the entry and the field, and is skipped; the others are kept.

Entry HTML never reaches an email as written: the excerpt is its text, `body_html` keeps only a
short list of tags (links and images checked like a markdown body's), everything else escaped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from pathlib import Path, PosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..compose.textlength import shorten
from ..config import Config, Feed
from ..errors import ContentError
from . import fields
from .article import Article, FieldError, Problem, Severity, display, reprs
from .markdown import IMAGE_SCHEMES, LINK_SCHEMES, url_scheme

if TYPE_CHECKING:
    import requests

__all__ = ["FeedPath", "FeedPoller", "entry_path", "feed_path", "read_feed"]

EXPECTED = "expected an RSS 2.0, Atom or JSON Feed document"
EXCERPT_CHARS = 300
CHUNK = 64 * 1024

# One read entry as `load._assemble` takes it: its path, its article (None when unusable), problems.
Read = tuple[Path, Article | None, list[Problem]]


class FeedPath(PosixPath):
    """The path of a feed at a URL, or of one of its entries (`URL#id`): absolute and the same
    from any working folder (`/https:/host/feed.xml`, which the ledger records), shown as the URL."""

    _url: str | None = None

    @classmethod
    def of(cls, url: str) -> FeedPath:
        path = cls("/" + url)
        path._url = url
        return path

    def __str__(self) -> str:
        return self._url if self._url is not None else super().__str__()

    def __fspath__(self) -> str:
        return super().__str__()


def feed_path(config: Config) -> Path:
    """The configured feed's path: the file, or the URL as a `FeedPath`."""
    feed = _settings(config)
    return FeedPath.of(feed.url) if feed.is_url else config.root / feed.url


def entry_path(feed: Path, key: str) -> Path:
    """An entry's own stable pseudo path: the feed's, then `#` and its id (or link). Its own, so
    that what is said about one entry (in a preview, in the ledger) is not said of all of them,
    and `send FEED-FILE` names no article rather than one of them."""
    if isinstance(feed, FeedPath) and feed._url is not None:
        return FeedPath.of(f"{feed._url}#{key}")
    return Path(f"{feed}#{key}")


def read_feed(config: Config) -> list[Read]:
    """The configured feed, read once: its entries, or one `ContentError` for the whole feed."""
    return FeedPoller(config).read()


class FeedPoller:
    """The configured feed kept read, for the daemon: `poll()` asks only for what changed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = _settings(config)
        self.path = feed_path(config)
        self.etag: str | None = None
        self.last_modified: str | None = None
        self._stamp: tuple[int, int] | None = None  # a local file's (mtime_ns, size) when last read
        # What the next poll asks "changed since?" with, kept only once a fetched body has parsed:
        # a malformed feed is fetched whole again at the next poll, and told again.
        self._pending: tuple[str | None, str | None, tuple[int, int] | None] = (None, None, None)
        self._reads: list[Read] = []
        self._by_hash: dict[str, Read] = {}

    def poll(self) -> list[Read]:
        """The feed's entries now; when it cannot be read, those read before and one error."""
        try:
            return self.read()
        except ContentError as exc:
            kept = sum(1 for _, article, _ in self._reads if article is not None)
            line = (
                f"{exc.args[0].removeprefix(f'{display(self.path)}: ')}; kept the {kept} articles read before"
            )
            return [*self._reads, (self.path, None, [Problem(self.path, "feed", "error", line)])]

    def read(self) -> list[Read]:
        """Fetch and parse, raising `ContentError` for a feed that cannot be used."""
        try:
            fetched = self._fetch_file() if not self.settings.is_url else self._fetch_url()
            if fetched is None:  # not modified: the same articles, the same objects
                return self._reads
            body, content_type, base = fetched
            entries = parse(body, content_type, base)
            self.etag, self.last_modified, self._stamp = self._pending
        except _Unusable as exc:
            raise ContentError(f"{display(self.path)}: {exc} ({EXPECTED})") from None
        reads: list[Read] = []
        by_hash: dict[str, Read] = {}
        for entry in entries:
            digest = entry.digest()
            read = self._by_hash.get(digest)
            if read is None:
                article, problems = entry_article(entry, self.config, self.path)
                read = (article.path if article else self.path, article, problems)
            by_hash[digest] = read
            reads.append(read)
        self._reads, self._by_hash = reads, by_hash
        return reads

    def _fetch_url(self) -> tuple[bytes, str, str] | None:
        import requests  # only a feed read over HTTP needs it (not validate of a folder)

        headers = {"User-Agent": user_agent(), "Accept": _ACCEPT}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        timeout = self.settings.timeout_seconds
        deadline = time.monotonic() + timeout
        try:
            with requests.get(
                self.settings.url, headers=headers, timeout=timeout, stream=True, verify=True
            ) as response:
                if response.status_code == 304:
                    return None
                if not 200 <= response.status_code < 300:
                    raise _Unusable(f"HTTP {response.status_code} {response.reason or ''}".rstrip())
                body = self._capped(response, deadline)
                etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
                content_type, base = response.headers.get("Content-Type", ""), response.url
        except requests.Timeout:
            raise _Unusable(f"did not answer within content.feed.timeout_seconds ({timeout:g} s)") from None
        except requests.RequestException as exc:
            raise _Unusable(f"cannot be fetched ({_reason(exc)})") from None
        self._pending = (etag, modified, None)
        return body, content_type, base

    def _capped(self, response: requests.Response, deadline: float) -> bytes:
        limit = self.settings.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Unusable(f"is {int(declared)} bytes, over content.feed.max_bytes ({limit})")
        chunks, size = [], 0
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _Unusable(f"is over content.feed.max_bytes ({limit} bytes); stopped reading")
            if time.monotonic() > deadline:
                seconds = self.settings.timeout_seconds
                raise _Unusable(f"took over content.feed.timeout_seconds ({seconds:g} s)")
            chunks.append(chunk)
        return b"".join(chunks)

    def _fetch_file(self) -> tuple[bytes, str, str] | None:
        limit = self.settings.max_bytes
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp == self._stamp:
                return None
            if info.st_size > limit:
                raise _Unusable(f"is {info.st_size} bytes, over content.feed.max_bytes ({limit})")
            with self.path.open("rb") as handle:
                body = handle.read(limit + 1)
        except OSError as exc:
            raise _Unusable(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        if len(body) > limit:
            raise _Unusable(f"is over content.feed.max_bytes ({limit} bytes)")
        self._pending = (None, None, stamp)
        return body, "", self.config.site.base_url


def user_agent() -> str:
    """`syndicate/VERSION (feed reader)`: the package is imported when this is asked, not before."""
    from .. import __version__

    return f"syndicate/{__version__} (feed reader)"


def _settings(config: Config) -> Feed:
    feed = config.content.feed
    if feed is None:
        raise ContentError("content.feed is not set (expected a feed URL or file)")
    return feed


_ACCEPT = (
    "application/feed+json, application/rss+xml, application/atom+xml, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


class _Unusable(Exception):
    """The whole feed cannot be used; the text is why, as one line."""


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return reprs.repr(text)[1:-1] if text else type(exc).__name__


# -- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One feed entry, as read from any of the three formats, before it is checked."""

    index: int
    id: str | None = None
    link: str | None = None
    title: str | None = None
    summary: str | None = None  # HTML
    content: str | None = None  # HTML, or text when content_is_text
    content_is_text: bool = False
    author: str | None = None
    published: datetime | None = None
    published_text: str | None = None  # as written, to name a date that could not be read
    updated: datetime | None = None
    updated_text: str | None = None
    image: str | None = None
    tags: tuple[str, ...] = ()
    base: str = ""  # what relative links resolve against

    def digest(self) -> str:
        """The entry's own fields (not its position in the feed): an edited entry changes it."""
        data = {k: v for k, v in asdict(self).items() if k != "index"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def parse(body: bytes, content_type: str, base: str) -> list[Entry]:
    """The entries of a feed document; `_Unusable` when it is not one."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if "json" in content_type.lower() or head == b"{":
        return _json_feed(body, base)
    return _xml_feed(body, content_type, base)


def _xml_feed(body: bytes, content_type: str, base: str) -> list[Entry]:
    import feedparser  # only a feed needs it: loaded when one is read

    headers = {"content-type": content_type or "application/xml", "content-location": base}
    # A file object, never bytes or str: feedparser opens a string naming a URL or file itself.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=True)
    if not parsed.entries and (parsed.bozo or not parsed.version):
        why = parsed.get("bozo_exception")
        raise _Unusable(f"is not a feed ({_reason(why)})" if why else "is not a feed")
    feed_author = _author(parsed.feed)
    atom = str(parsed.version).startswith("atom")
    return [_xml_entry(n, e, base, feed_author, atom) for n, e in enumerate(parsed.entries)]


def _xml_entry(index: int, e: Any, base: str, feed_author: str | None, atom: bool) -> Entry:
    # feedparser gives an entry without a link its id as one: right for an RSS guid (a permalink
    # unless it says otherwise), not for an Atom id, which names the entry and need not be a page.
    pages = [x for x in e.get("links", []) if x.get("rel", "alternate") == "alternate" and x.get("href")]
    link = _text(pages[0]["href"] if pages else None) if atom else _text(e.get("link"))
    content = next((c.get("value") for c in e.get("content", []) if c.get("value")), None)
    summary = e.get("summary")
    if summary and summary == content:
        summary = None
    return Entry(
        index=index,
        id=_text(e.get("id")),
        link=link,
        title=_text(html_text(e.get("title") or "")),
        summary=summary or None,
        content=content,
        author=_author(e) or feed_author,
        published=_parsed_time(e.get("published_parsed")),
        published_text=_text(e.get("published")),
        # Read as stored: feedparser answers `updated` with the published date when there is none.
        updated=_parsed_time(dict.get(e, "updated_parsed")),
        updated_text=_text(dict.get(e, "updated")),
        image=_xml_image(e),
        tags=_unique(_text(x.get("term") or x.get("label")) for x in e.get("tags", [])),
        base=link or base,
    )


def _xml_image(e: Any) -> str | None:
    for enclosure in e.get("enclosures", []):
        if str(enclosure.get("type", "")).startswith("image/") and enclosure.get("href"):
            return str(enclosure["href"])
    for media in e.get("media_content", []):
        kind = str(media.get("medium") or media.get("type") or "")
        if (kind == "image" or kind.startswith("image/")) and media.get("url"):
            return str(media["url"])
    for thumb in e.get("media_thumbnail", []):
        if thumb.get("url"):
            return str(thumb["url"])
    return None


def _author(node: Any) -> str | None:
    detail = node.get("author_detail") or {}
    return _text(detail.get("name")) or _text(node.get("author"))


def _parsed_time(value: Any) -> datetime | None:
    """feedparser's dates are UTC `struct_time`s."""
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


def _json_feed(body: bytes, base: str) -> list[Entry]:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Unusable(f"is not valid JSON ({_reason(exc)})") from None
    if not isinstance(doc, dict) or doc.get("version") not in JSON_FEED_VERSIONS:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise _Unusable(f"is JSON but not a JSON Feed (version {reprs.repr(version)})")
    items = doc.get("items")
    if not isinstance(items, list):
        raise _Unusable("is a JSON Feed without an items list")
    feed_author = _json_author(doc)
    return [_json_entry(n, item, base, feed_author) for n, item in enumerate(items)]


def _json_entry(index: int, item: Any, base: str, feed_author: str | None) -> Entry:
    if not isinstance(item, dict):
        return Entry(index=index)
    link = _text(item.get("url")) or _text(item.get("external_url"))
    html, text = _text(item.get("content_html")), _text(item.get("content_text"))
    raw_id = item.get("id")
    plain_id = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool)
    tags = item["tags"] if isinstance(item.get("tags"), list) else []
    return Entry(
        index=index,
        id=(str(raw_id).strip() or None) if plain_id else None,
        link=link,
        title=_text(item.get("title")),
        summary=escape(str(item["summary"])) if _text(item.get("summary")) else None,
        content=html or text,
        content_is_text=html is None and text is not None,
        author=_json_author(item) or feed_author,
        published=_iso_time(item.get("date_published")),
        published_text=_text(item.get("date_published")),
        updated=_iso_time(item.get("date_modified")),
        updated_text=_text(item.get("date_modified")),
        image=_text(item.get("image")) or _text(item.get("banner_image")),
        tags=_unique(_text(x) for x in tags),
        base=link or base,
    )


def _json_author(node: dict[str, Any]) -> str | None:
    authors = node.get("authors")  # 1.1
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return _text(authors[0].get("name"))
    author = node.get("author")  # 1.0
    return _text(author.get("name")) if isinstance(author, dict) else None


def _iso_time(value: Any) -> datetime | None:
    """RFC 3339, as JSON Feed writes dates; one without an offset is not an instant."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _unique(texts: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in texts if t))


def _text(value: Any) -> str | None:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    text = " ".join(str(value).split())
    return text or None


# -- entries as articles ----------------------------------------------------------------------


def entry_article(entry: Entry, config: Config, path: Path) -> tuple[Article | None, list[Problem]]:
    """One entry of the feed at `path` checked and normalised; the article is None when a problem
    is an error. Its problems name the feed's path, the entry and the field."""
    problems: list[Problem] = []
    where = f"entries[{entry.index}]"
    named = _named(entry)

    def problem(name: str, severity: Severity, message: str) -> None:
        problems.append(Problem(path, f"{where}.{name}", severity, message))

    def missing(name: str, expected: str) -> None:
        problem(name, "error", f"is missing in entry {named} (expected {expected}); the entry is skipped")

    if entry.title is None:
        missing("title", "a <title> or title")
    url = None
    if entry.link is None:
        missing("link", "the article's http(s) URL in <link> or url")
    else:
        try:
            url = fields.http_url("link", entry.link, entry.base or config.site.base_url)
        except FieldError:
            problem(
                "link",
                "error",
                f"{reprs.repr(entry.link)} is not an http(s) URL in entry {named} "
                "(expected the article's https://... address); the entry is skipped",
            )
    publish = entry.published or entry.updated
    if publish is None:
        written = entry.published_text or entry.updated_text
        if written is None:
            missing("published", "a published or updated date")
        else:
            problem(
                "published",
                "error",
                f"{reprs.repr(written)} is not a date in entry {named} "
                "(expected RFC 822 or ISO 8601 with an offset); the entry is skipped",
            )
    if entry.title is None or url is None or publish is None:
        return None, problems

    article_id = None
    if entry.id is not None:
        try:
            article_id = fields.id({"id": entry.id})
        except FieldError as bad:
            problem("id", "warning", f"{bad.message}; entry {named} is known by its link instead")
    hero = None
    if entry.image is not None:
        try:
            hero = fields.http_url("image", entry.image, url)
        except FieldError as bad:
            problem("image", "warning", f"{bad.message}; entry {named} has no image")
    if hero is not None and not hero.startswith("https://"):
        problem(
            "image", "warning", f"{reprs.repr(hero)} in entry {named} is not https (expected https://...)"
        )

    body = entry.content or entry.summary or ""
    if entry.content_is_text:
        text = body
        body_html = "".join(f"<p>{escape(p.strip())}</p>" for p in body.split("\n\n") if p.strip())
    else:
        text = html_text(body)
        body_html = safe_html(body, url)
    tz = config.site.tz
    slug = _slug(url, entry)
    return (
        Article(
            path=entry_path(path, article_id or url),
            slug=slug,
            title=entry.title,
            url=url,
            publish_date=publish.astimezone(tz),
            body_html=body_html,
            excerpt=shorten(text, EXCERPT_CHARS),
            read_minutes=fields.estimate_minutes(text, config.content.words_per_minute),
            content_hash=entry.digest(),
            description=html_text(entry.summary) or None if entry.summary and entry.content else None,
            author=entry.author,
            updated_date=entry.updated.astimezone(tz) if entry.updated and entry.published else None,
            hero_image=hero,
            tags=entry.tags,
            id=article_id,
            url_field="url",
        ),
        problems,
    )


def _named(entry: Entry) -> str:
    """How a problem line names an entry: its id and title, as far as it has them."""
    parts = (f"id {reprs.repr(entry.id)}" if entry.id else "", reprs.repr(entry.title) if entry.title else "")
    shown = ", ".join(p for p in parts if p)
    return f"{entry.index + 1} ({shown})" if shown else str(entry.index + 1)


def _slug(url: str, entry: Entry) -> str:
    """The last part of the entry's link (`/2024/03/tide-tables/` -> tide-tables), else its title."""
    last = next((p for p in reversed(urlsplit(url).path.split("/")) if p), "")
    for suffix in (".html", ".htm", ".php", ".aspx"):
        last = last.removesuffix(suffix)
    slug = fields.slugify(last) or fields.slugify(entry.title or "")
    return slug or "entry-" + hashlib.sha256((entry.id or url).encode()).hexdigest()[:10]


# -- HTML -----------------------------------------------------------------------------------

# Elements whose content is never text for a reader: dropped with everything in them.
_HIDDEN = {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math", "head"}
_BLOCK = {
    "p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "hr",
}  # fmt: skip
# What body_html keeps of an entry's markup: no attributes but a link's href and an image's src/alt.
_KEPT = {
    "p", "br", "a", "em", "strong", "b", "i", "u", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6", "hr", "img", "figure", "figcaption",
}  # fmt: skip
_VOID = {"br", "hr", "img"}


class _Reader(HTMLParser):
    def __init__(self, base: str, keep: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.base, self.keep = base, keep
        self.out: list[str] = []
        self.hidden = 0
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += tag not in _VOID
            return
        if self.hidden:
            return
        if not self.keep:
            if tag in _BLOCK:
                self.out.append(" ")
            return
        if tag not in _KEPT:
            return
        given = dict(attrs)
        if tag == "a":
            href = self._url(given.get("href"), LINK_SCHEMES)
            if href is None:
                return
            self.out.append(f'<a href="{escape(href)}">')
        elif tag == "img":
            src = self._url(given.get("src"), IMAGE_SCHEMES)
            if src is not None and src.startswith("https://"):
                self.out.append(f'<img src="{escape(src)}" alt="{escape(given.get("alt") or "")}">')
            return
        else:
            self.out.append(f"<{tag}>")
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN:
            self.handle_starttag(tag, attrs)
            if tag not in _VOID and self.keep and self.open and self.open[-1] == tag:
                self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
            return
        if self.hidden:
            return
        if not self.keep:
            if tag in _BLOCK:
                self.out.append(" ")
            return
        if tag in self.open:
            while self.open:
                top = self.open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(escape(data, quote=False) if self.keep else data)

    def _url(self, value: str | None, schemes: tuple[str, ...]) -> str | None:
        if not value:
            return None
        url = urljoin(self.base, value.strip())
        return url if url_scheme(url) in schemes else None

    def result(self) -> str:
        with contextlib.suppress(AssertionError):  # html.parser on broken markup
            self.close()
        if self.keep:
            self.out.extend(f"</{tag}>" for tag in reversed(self.open))
            return "".join(self.out)
        return " ".join("".join(self.out).split())


def html_text(html: str) -> str:
    """The text of HTML as a reader sees it: no tags, no scripts or styles, one line."""
    reader = _Reader("", keep=False)
    reader.feed(html)
    return reader.result()


def safe_html(html: str, base: str) -> str:
    """HTML keeping only `_KEPT` tags (no attributes but checked hrefs and https images); all
    other markup dropped, its text escaped."""
    reader = _Reader(base, keep=True)
    reader.feed(html)
    return reader.result()
