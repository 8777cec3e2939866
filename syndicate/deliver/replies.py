"""Posting a thread (a post composed with `thread: true`, `SocialPost.thread`): its parts in order,
each a reply to the one before, all one message of the ledger.

A thread is posted part by part, and any part may fail, be refused or lose its answer. Parts
already up are never posted again: what each part became (its id on the network) is kept, as it
is made, in the state folder's uploads.json under the message's ledger key and content hash, so
a later attempt (a retry, or a resend of an `unknown` message) goes on from the first part not
yet up, replying to the last one that is. A network that can itself tell whether a part is up
(Bluesky: a record key derived per part) passes nothing to keep and asks the network instead.

The outcome is the message's: `sent` once every part is up; else the failing part's outcome
(`retry`, `unknown`, `failed`), its detail naming the part and what is up already. The first
part's request is what hands the message over (http_post), as for a single post.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import Message, Result
from .media import UploadCache

__all__ = ["PostedParts", "parts_of", "post_thread"]

# Posts one part: (its index, the part as composed {"text", "facets", ...}, the refs of the parts
# before it) -> what the network calls it (its id; the next part replies to it), or the Result
# that stops the thread for now.
PostPart = Callable[[int, dict[str, Any], list[str]], "str | Result"]


def parts_of(payload: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The parts of a thread's payload in order; None for a single post."""
    thread = payload.get("thread")
    if not isinstance(thread, list) or not thread:
        return None
    return [part for part in thread if isinstance(part, dict) and part.get("text")]


class PostedParts:
    """The refs of a message's parts already posted, in uploads.json (a private file written
    whole). A `--resend` (`fresh_id`) is a new thread, so it gets its own entry."""

    def __init__(self, cache: UploadCache | None, target: str, message: Message) -> None:
        self.cache = cache
        self.target = target
        self.slot = f"thread {message.key.digest()} {message.content_hash} {message.fresh_id}".rstrip()

    def get(self) -> list[str]:
        if self.cache is None:
            return []
        try:
            found = json.loads(self.cache.get(self.target, self.slot) or "[]")
        except ValueError:
            return []
        return [str(ref) for ref in found] if isinstance(found, list) else []

    def save(self, refs: list[str]) -> None:
        if self.cache is not None:
            self.cache.put(self.target, self.slot, json.dumps(refs))


def post_thread(message: Message, parts: list[dict[str, Any]], posted: PostedParts, post: PostPart) -> Result:
    """Every part not yet up, in order; the message's Result (see the module docstring)."""
    key = message.key
    refs = posted.get()[: len(parts)]
    if len(parts) < 2:
        return Result(key, "failed", "a thread with fewer than two parts (expected a composed thread)")
    for index in range(len(refs), len(parts)):
        got = post(index, parts[index], refs)
        if isinstance(got, Result):
            where = f"part {index + 1} of {len(parts)}"
            if refs:
                up = ", ".join(refs)
                where += f" (parts 1-{len(refs)} are up: {up}; the next attempt goes on from here)"
            return Result(key, got.outcome, f"{where}: {got.detail}")
        refs.append(got)
        posted.save(refs)
    return Result(key, "sent", f"thread of {len(parts)}: {', '.join(refs)}")
