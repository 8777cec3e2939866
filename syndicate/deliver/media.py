"""The images social targets post with an article: fetched from its hero image URL, and what
each network answered for an upload, remembered.

Networks do not fetch a link card's image themselves (LinkedIn's Posts API, Bluesky's embeds):
the target downloads the hero image and uploads it first. `fetch_image` is that download, with
the limits a demanding operator wants: http(s) only (plain http only to loopback, as for every
target), no redirects to elsewhere than http(s), a size cap read as the bytes arrive (never a
whole unbounded body in memory), an image content type. `UploadCache` keeps what a network
answered for an upload (an image URN) in the state folder, per target and image URL, so a post
retried on a later run reuses the upload instead of uploading the same image again.
`alt_text` is the article's description of that image (`hero_alt`), within a network's limit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .. import __version__
from ..compose.textlength import ELLIPSIS, graphemes, shorten
from ..validation import is_loopback

__all__ = [
    "IMAGE_TYPES",
    "UPLOADS_FILE",
    "Image",
    "ImageUnavailable",
    "UploadCache",
    "alt_text",
    "fetch_image",
]

UPLOADS_FILE = "uploads.json"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MAX_REDIRECTS = 5


class ImageUnavailable(Exception):
    """The image could not be had; the message says why in a few words, never a secret."""


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str
    url: str


def fetch_image(
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 20.0,
    verify: bool | str = True,
    types: Collection[str] = IMAGE_TYPES,
) -> Image:
    """The image at `url`: at most `max_bytes`, of one of `types` (what the network takes). The
    request carries no credentials: it goes to the article's site, never to the network."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ImageUnavailable("the image URL is not https")
    try:
        # Not http_post's watched session: fetching an image hands nothing to the network, so
        # a crash now must leave the message pending, not in doubt.
        with requests.Session() as session:
            session.headers["User-Agent"] = f"syndicate/{__version__}"
            session.max_redirects = MAX_REDIRECTS
            with session.get(url, timeout=timeout, verify=verify, stream=True) as answer:
                if answer.status_code != 200:
                    raise ImageUnavailable(f"the image URL answered HTTP {answer.status_code}")
                content_type = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type not in types:
                    kind = content_type or "of no type"
                    raise ImageUnavailable(
                        f"the image is {kind} (expected one of {', '.join(sorted(types))})"
                    )
                declared = answer.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise ImageUnavailable(f"the image is {int(declared):,} bytes (at most {max_bytes:,})")
                data = bytearray()
                for chunk in answer.iter_content(_CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise ImageUnavailable(f"the image is over {max_bytes:,} bytes")
    except requests.RequestException as exc:
        raise ImageUnavailable(f"the image could not be fetched ({type(exc).__name__})") from None
    if not data:
        raise ImageUnavailable("the image is empty")
    return Image(bytes(data), content_type, url)


def alt_text(article: Any, limit: int) -> str:
    """The hero image's alt text of a social payload's `article` ("" when it gives none), at most
    `limit` characters (code points, as a JSON Schema maxLength counts): a longer one is cut at a
    word boundary, an ellipsis at the end, never inside a grapheme (an emoji, an accented letter)."""
    said = article.get("hero_alt") if isinstance(article, dict) else None
    text = said.strip() if isinstance(said, str) else ""
    if len(text) <= limit:
        return text
    text = " ".join(text.split())  # as `shorten` has it
    if len(text) <= limit:
        return text
    # `shorten` keeps at most `keep` graphemes, the ellipsis one of them: find the most graphemes
    # whose code points, with the ellipsis, are within the limit (an emoji may be several).
    clusters = graphemes(text)
    size, keep = len(ELLIPSIS), 1
    for cluster in clusters:
        size += len(cluster)
        if size > limit:
            break
        keep += 1
    # Fewer graphemes than it has: it is cut even when its graphemes alone would "fit".
    return shorten(text, min(keep, len(clusters) - 1))


class UploadCache:
    """target -> image URL -> what the network called the uploaded image, in a small private JSON
    file of the state folder (written whole, never half). A lost entry costs one upload again."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, target: str, url: str) -> str | None:
        found = self._read().get(target, {}).get(url)
        return found if isinstance(found, str) else None

    def put(self, target: str, url: str, ref: str) -> None:
        from ..state import write_private  # state imports config, which imports the target types

        with self._lock:
            entries = self._read()
            entries.setdefault(target, {})[url] = ref
            write_private(self.path, json.dumps(entries, indent=1, sort_keys=True) + "\n")

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            found = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: uploads are made again
        return found if isinstance(found, dict) else {}
