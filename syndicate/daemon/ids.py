"""The ids of the daemon's jobs, as one type.

A job id is persisted: APScheduler's job store keys each job by it, and a daemon started on a
store written before (by any earlier version) finds its jobs again only if the same job gets the
same id. So the strings are exactly what they have always been:

    article:<channel>:<target>:<slug>        one article's send at its publish date
    digest:<channel>:<target>                a digest channel's cron job
    digest-now:<channel>:<target>            a digest due now (on time, or caught up at a start)
    resume:<channel>:<target>:<draft key>    a digest a run left `started`, finished as composed
    retry:<any of the above>                 that job again after a failed delivery, backed off

`str(job_id)` is that string; `JobId.parse` reads one back. Channel and target names may hold
`:` (the config does not forbid it), and then the fields of a parsed id cannot be told apart;
its `kind` and `retry` always can, and they are all the daemon reads from a stored id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from ..keys import DraftId

__all__ = ["JobId", "Kind"]

Kind = Literal["article", "digest", "digest-now", "resume"]
_KINDS: tuple[str, ...] = get_args(Kind)
_RETRY = "retry:"


@dataclass(frozen=True, slots=True)
class JobId:
    """One job's id: its kind, its route, what it sends (a slug, a draft key, or nothing for the
    digest jobs, which pick their window when they fire) and whether it is the retry of that job."""

    kind: Kind
    channel: str
    target: str
    key: str | None = None
    retry: bool = False

    @classmethod
    def article(cls, channel: str, target: str, slug: str) -> JobId:
        return cls("article", channel, target, slug)

    @classmethod
    def digest(cls, channel: str, target: str) -> JobId:
        return cls("digest", channel, target)

    @classmethod
    def digest_now(cls, channel: str, target: str) -> JobId:
        return cls("digest-now", channel, target)

    @classmethod
    def resume(cls, draft: DraftId) -> JobId:
        return cls("resume", *draft)

    def retried(self) -> JobId:
        """The id of this job's retry: its own, since APScheduler drops a fired job's id just
        after starting it, while the retry must stay queued."""
        return replace(self, retry=True)

    def __str__(self) -> str:
        fields = (self.kind, self.channel, self.target) + (() if self.key is None else (self.key,))
        return (_RETRY if self.retry else "") + ":".join(fields)

    @classmethod
    def parse(cls, text: str) -> JobId | None:
        """The id `text` names, or None for one the daemon never makes (a foreign job)."""
        retry = text.startswith(_RETRY)
        kind, _, rest = text.removeprefix(_RETRY).partition(":")
        if kind not in _KINDS:
            return None
        has_key = kind in ("article", "resume")
        parts = rest.split(":", 2 if has_key else 1)
        if len(parts) != (3 if has_key else 2) or not all(parts):
            return None
        key = parts[2] if has_key else None
        return cls(kind, parts[0], parts[1], key, retry)  # type: ignore[arg-type]
