"""Social posts: what one social channel makes of one article, within its network's rules.

A post is data (`SocialPost`): preview writes it, dry-run shows it and delivery sends it, so what
a user previews is what gets posted. The text comes from a Jinja2 template per network; when it is
too long the description is shortened at a word boundary, then (with a warning) the title. The
link, the CTA and the hashtags are never cut. A post that still cannot fit is a `Problem`, not an
exception, so one long article never stops the others.

Everything that differs between networks (limit, how length is counted, hashtag advice, the
"see more" fold, facets) is asked of the channel's `Network` (`compose.networks`): nothing here
names a network.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
import regex

from ..config import Config, SocialChannel
from ..content import Article, Problem
from ..errors import ConfigError
from ..keys import article_key
from ..naming import JSON, TEXT, draft_files
from ..state import write_private
from ..templating import get_template, render_template, site_view
from .networks import Network, network
from .textlength import Shortener, graphemes
from .thread import split_thread

# A title is never shortened below this many graphemes: past that the post says nothing.
MIN_TITLE = 20


@dataclass(frozen=True)
class PostPart:
    """One post of a thread, as posted: its text (numbered), its length and its facets."""

    text: str
    length: int
    facets: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "length": self.length, "facets": list(self.facets)}


@dataclass(frozen=True)
class SocialPost:
    """One post for one network; `text` is final, as a reader will see it.

    A post too long for its network on a channel with `thread: true` is a thread: `thread` holds
    its parts in order (each within the limit; `text` is them all, a blank line apart, and
    `length` the longest part's). Either way it is one post to the ledger."""

    network: str
    text: str
    link: str
    image: str | None
    hashtags: tuple[str, ...]
    article: Article
    key: str
    length: int
    limit: int
    fold: int | None = None
    facets: tuple[dict[str, Any], ...] = ()
    thread: tuple[PostPart, ...] = ()

    @property
    def content_hash(self) -> str:
        """Changes exactly when what would be posted changes (the ledger compares it)."""
        payload: dict[str, Any] = {
            "network": self.network,
            "text": self.text,
            "link": self.link,
            "image": self.image,
            "facets": list(self.facets),
        }
        if self.thread:  # (only then: a single post's hash is what it was before threads)
            payload["thread"] = [part.text for part in self.thread]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    @property
    def unit(self) -> str:
        """What `length` and `limit` count, in the network's words ("graphemes")."""
        return network(self.network).unit

    def as_dict(self) -> dict[str, Any]:
        """What outbox .json files and webhooks carry (`thread`: only for a thread)."""
        found: dict[str, Any] = {
            "key": self.key,
            "network": self.network,
            "text": self.text,
            "link": self.link,
            "image": self.image,
            "hashtags": list(self.hashtags),
            "facets": list(self.facets),
            "length": self.length,
            "limit": self.limit,
            "unit": self.unit,
            "fold": self.fold,
            "content_hash": self.content_hash,
            "article": self.article.as_dict(),
        }
        if self.thread:
            found["thread"] = [part.as_dict() for part in self.thread]
        return found


def compose_social_channel(
    articles: Iterable[Article], channel_name: str, config: Config
) -> tuple[list[SocialPost], list[Problem]]:
    """Every article's post for one social channel, and what went wrong or was changed on the way."""
    composer = _Composer.for_channel(channel_name, config)
    posts: list[SocialPost] = []
    problems: list[Problem] = []
    for article in articles:
        post, found = composer.compose(article)
        problems.extend(found)
        if post is not None:
            posts.append(post)
    return posts, problems


def compose_post(
    article: Article, channel_name: str, config: Config
) -> tuple[SocialPost | None, list[Problem]]:
    """One article's post; None (with an error Problem) when it cannot fit the network's limit."""
    return _Composer.for_channel(channel_name, config).compose(article)


def describe(post: SocialPost) -> str:
    """One line for the preview table, e.g. "linkedin 812/3000, fold at 208"."""
    line = f"{post.network} {post.length}/{post.limit}"
    if post.thread:
        line += f", thread of {len(post.thread)}"
    if network(post.network).fold_at is not None:
        line += f", fold at {post.fold}" if post.fold is not None else ", no fold"
    return line


def write_post_files(post: SocialPost, out_dir: Path) -> list[Path]:
    """`<key>.txt` (the text as posted) and `<key>.json` (`as_dict()`), in `out_dir`."""
    text_path, json_path = draft_files(out_dir, post.key, TEXT, JSON)
    write_private(text_path, post.text + "\n")
    write_private(json_path, json.dumps(post.as_dict(), ensure_ascii=False, indent=2) + "\n")
    return [text_path, json_path]


def hashtag(tag: str) -> str | None:
    """A tag as a hashtag: "machine learning" -> "#MachineLearning"; None when nothing is left."""
    words = regex.findall(r"[\p{L}\p{N}\p{M}]+", tag)
    if not words:
        return None
    body = words[0] if len(words) == 1 else "".join(w[:1].upper() + w[1:] for w in words)
    return None if body.isdigit() else "#" + body


def choose_hashtags(article: Article, channel: SocialChannel) -> tuple[str, ...]:
    """The article's own tags first, then the channel's, without repeats, up to the channel's cap."""
    net = network(channel.network)
    cap = channel.max_hashtags if channel.max_hashtags is not None else net.max_hashtags
    if net.hashtag_ceiling is not None:  # what the network takes at most, even when a channel asks more
        cap = min(cap, net.hashtag_ceiling)
    chosen: dict[str, str] = {}
    for tag in (*article.tags, *channel.hashtags):
        tag_text = hashtag(tag)
        if tag_text is not None:
            chosen.setdefault(tag_text.casefold(), tag_text)
    return tuple(chosen.values())[:cap]


@dataclass(frozen=True)
class _Composer:
    channel_name: str
    channel: SocialChannel
    net: Network
    site: dict[str, Any]
    template: jinja2.Template

    @classmethod
    def for_channel(cls, channel_name: str, config: Config) -> _Composer:
        channel = config.channels.get(channel_name)
        if not isinstance(channel, SocialChannel):
            social = ", ".join(n for n, c in config.channels.items() if isinstance(c, SocialChannel))
            what = "not a channel" if channel is None else f"an {channel.kind} channel"
            raise ConfigError(
                f"channels.{channel_name}: is {what} (expected a social channel: {social or 'none defined'})"
            )
        net = network(channel.network)
        name = channel.template or f"social/{net.name}.txt.j2"
        template = get_template(config, name, "text", plugins=[net.templates] if net.templates else [])
        return cls(channel_name, channel, net, site_view(config.site), template)

    def compose(self, article: Article) -> tuple[SocialPost | None, list[Problem]]:
        net = self.net
        tags = choose_hashtags(article, self.channel)
        problems: list[Problem] = []
        if len(tags) < net.min_hashtags:
            problems.append(
                Problem(
                    article.path,
                    "tags",
                    "warning",
                    f"give only {len(tags)} hashtags for {self.channel_name} (expected {net.min_hashtags} "
                    f"to {net.max_hashtags} on {net.label}; "
                    f"add tags to the article or channels.{self.channel_name}.hashtags)",
                )
            )

        own = article.social.get(net.name)
        if own is not None:
            return self._own_copy(article, own, tags, problems)

        def render(cta: str | None) -> Callable[[str, str], str]:
            return lambda title, description: self._render(article, title, description, tags, cta)

        if self._threads(article):
            # The whole text, nothing shortened: a thread when it does not fit one post.
            whole = render(article.cta)(article.title, article.description or article.excerpt or "")
            if not (net.fits(whole) and net.hook_fits(whole)):
                thread = self._thread(article, whole, tags)
                if thread is not None:
                    return thread, problems

        fitted = _fit(article, self.channel_name, net, render(article.cta))
        if article.cta and (isinstance(fitted, Problem) or fitted[1]):
            # The call to action goes on every network when it fits: dropped only for a post
            # that cannot fit with it, or whose title it would cut when the title fits without.
            bare = _fit(article, self.channel_name, net, render(None))
            if not isinstance(bare, Problem) and (isinstance(fitted, Problem) or not bare[1]):
                fitted = bare
                problems.append(
                    Problem(
                        article.path,
                        "cta",
                        "warning",
                        f"left out of channel {self.channel_name}'s {net.name} post: it does not fit "
                        f"in {net.limit} {net.unit} with the title (expected a shorter cta)",
                    )
                )
        if isinstance(fitted, Problem):
            return None, [*problems, fitted]
        text, title_cut = fitted
        if title_cut:
            room = f"in {net.limit}"
            if net.fold_at is not None:
                room = f"before the see-more fold (about {net.fold_at})"
            problems.append(
                Problem(
                    article.path,
                    "title",
                    "warning",
                    f"is {len(graphemes(article.title))} characters: channel {self.channel_name} "
                    f"shortens it in its {net.name} post (expected a title that fits {room})",
                )
            )
        return self._post(article, text, tags), problems

    def _threads(self, article: Article) -> bool:
        """Whether a post too long for one may become a thread: the article's `thread:` if it
        says, else the channel's; never on a network whose posts cannot be replied to in a chain."""
        wanted = self.channel.thread if article.thread is None else article.thread
        return wanted and self.net.replies

    def _thread(self, article: Article, text: str, tags: tuple[str, ...]) -> SocialPost | None:
        """`text` as a thread (None when it cannot be split: a word too long for one part, or
        too many parts); the caller then shortens it to one post, or says why it cannot."""
        net = self.net
        parts = split_thread(text, lambda part: net.fits(part) and net.hook_fits(part))
        if parts is None or len(parts) < 2:
            return None
        thread = tuple(PostPart(p, net.measure(p), net.facets(p, tags)) for p in parts)
        whole = "\n\n".join(parts)
        return replace(
            self._post(article, whole, tags),
            length=max(part.length for part in thread),
            fold=None,
            thread=thread,
        )

    def _post(self, article: Article, text: str, tags: tuple[str, ...]) -> SocialPost:
        net = self.net
        return SocialPost(
            network=net.name,
            text=text,
            link=article.url,
            image=article.hero_image,
            hashtags=tags,
            article=article,
            key=article_key(self.channel_name, article),
            length=net.measure(text),
            limit=net.limit,
            fold=net.fold(text),
            facets=net.facets(text, tags),
        )

    def _own_copy(
        self, article: Article, own: str, tags: tuple[str, ...], problems: list[Problem]
    ) -> tuple[SocialPost | None, list[Problem]]:
        """The article's own text for this network (frontmatter `social.<network>`), with its
        link added at the end when the text does not hold it; never shortened: it is the
        author's, so a text that does not fit is an error naming the field."""
        net = self.net
        text = own if article.url in own else f"{own}\n\n{article.url}"
        if not net.fits(text) and self._threads(article):
            thread = self._thread(article, text, tags)
            if thread is not None:
                return thread, problems
        if not net.fits(text):
            return None, [
                *problems,
                Problem(
                    article.path,
                    f"social.{net.name}",
                    "error",
                    f"is {net.size(text)} with the link "
                    f"(expected at most {net.limit} {net.unit} on {net.label})",
                ),
            ]
        return self._post(article, text, tags), problems

    def _render(
        self, article: Article, title: str, description: str, tags: tuple[str, ...], cta: str | None
    ) -> str:
        context = {
            "article": article,
            "site": self.site,
            "network": self.channel.network,
            "title": title,
            "description": description,
            "cta": cta,
            "link": article.url,
            "hashtags": list(tags),
        }
        return _tidy(render_template(self.template, context, during=f"while composing {article.path}"))


def _fit(
    article: Article, channel_name: str, net: Network, render: Callable[[str, str], str]
) -> tuple[str, bool] | Problem:
    """The longest post that fits: the text and whether the title had to be shortened.

    A network with a "see more" fold first gets a title short enough to end before it (the hook).
    """
    title = Shortener(article.title)
    description = Shortener(article.description or article.excerpt or "")
    shortest_title = min(MIN_TITLE, len(title))

    def fits(text: str) -> bool:
        return net.fits(text) and net.hook_fits(text)

    keep_title = len(title)
    if not net.hook_fits(render(title.text, description.text)):
        found = _largest(shortest_title, len(title), lambda k: net.hook_fits(render(title(k), "")))
        keep_title = found if found is not None else shortest_title

    keep = _largest(0, len(description), lambda k: fits(render(title(keep_title), description(k))))
    if keep is not None:
        return render(title(keep_title), description(keep)), keep_title < len(title)
    cut_title = _largest(shortest_title, keep_title, lambda k: fits(render(title(k), "")))
    if cut_title is not None:
        return render(title(cut_title), ""), True
    least = render(title(shortest_title), "")
    return Problem(
        article.path,
        net.name,
        "error",
        f"the {net.name} post for channel {channel_name} is {net.size(least)} with no description and the "
        f"title cut to {shortest_title} (expected at most {net.limit}; shorten the cta, the hashtags or the "
        "template)",
    )


def _largest(low: int, high: int, ok: Callable[[int], bool]) -> int | None:
    """The largest k in [low, high] with ok(k), for ok true up to some k and false after."""
    if ok(high):
        return high  # the common case: everything fits
    if not ok(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _tidy(text: str) -> str:
    """Templates leave blank lines where optional parts were empty: at most one blank line between parts."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
