"""Threads (`thread: true`): a post too long for its network split into numbered parts, each
within the limit by a counter the composer does not use (twitter-text for X, grapheme counts for
Bluesky and Mastodon), nothing shortened and nothing lost."""

from __future__ import annotations

import re

import grapheme
import pytest
from twitter_text import parse_tweet

from syndicate.compose.networks import network
from syndicate.compose.social import compose_post
from syndicate.compose.thread import MAX_PARTS, split_thread
from syndicate.content import load_articles
from syndicate.errors import ConfigError

from .test_compose_social import reference_length

# Invented copy, long enough for three or four posts on any of the three networks.
LONG = (
    "The breakwater at Port Varne was poured in 1911 from a barge that sank twice on the way. "
    "Keepers logged every storm since then in ledgers now scanned by volunteers; the scans show "
    "how the swell shifted when the northern sandbar moved. "
    "We spent a winter reading them: 4,300 entries, 212 gales, and one letter complaining about the "
    "fog horn's pitch. "
    "What follows is what the ledgers say about the next hundred years of the harbour, "
    "and what they cannot say — yet."
)

ARTICLE = f"""\
---
title: What the keepers' ledgers say about Port Varne
description: "{LONG}"
publish_date: 2024-01-02
cta: Tell us what your harbour's ledgers say.
tags: [harbours, archives]
---
Body.
"""

NUMBER = re.compile(r" (\d+)/(\d+)$")


def _channel(site, net: str, **extra) -> None:
    site.data["channels"]["posts"] = {
        "kind": "social",
        "network": net,
        "targets": ["social-outbox"],
        "hashtags": ["sea"],
        **extra,
    }


def _post(site, text: str = ARTICLE):
    site.article("ledgers.md", text)
    config = site.config()
    [article] = load_articles(config).articles
    return compose_post(article, "posts", config)


def _unnumbered(parts: list[str]) -> str:
    return " ".join(" ".join(NUMBER.sub("", p).split()) for p in parts)


@pytest.mark.parametrize("net", ["x", "bluesky", "mastodon"])
def test_a_long_post_becomes_a_numbered_thread_each_part_within_the_limit(site, net) -> None:
    _channel(site, net, thread=True)
    post, problems = _post(site)
    assert post is not None and not [p for p in problems if p.severity == "error"]
    parts = [part.text for part in post.thread]
    assert len(parts) >= 2
    limit = network(net).limit
    for index, part in enumerate(parts, 1):
        assert reference_length(net, part) <= limit, (index, part)
        if net == "bluesky":
            assert grapheme.length(part) <= 300 and len(part.encode("utf-8")) <= 3000
        assert NUMBER.search(part).groups() == (str(index), str(len(parts)))
    # Nothing shortened or lost: the parts hold the title, the whole description, the CTA, the
    # link and the hashtags, in order.
    whole = _unnumbered(parts)
    for piece in (post.article.title, LONG, post.article.cta, post.link, " ".join(post.hashtags)):
        assert " ".join(piece.split()) in whole, piece
    assert post.text == "\n\n".join(parts) and post.length == max(p.length for p in post.thread)
    assert post.length <= limit and not [p for p in problems if p.field in ("title", "cta")]


def test_x_parts_are_valid_tweets_by_twitter_text(site) -> None:
    _channel(site, "x", thread=True)
    post, _ = _post(site)
    assert post is not None
    for part in post.thread:
        parsed = parse_tweet(part.text)
        assert parsed.valid and parsed.weightedLength == part.length


def test_bluesky_parts_have_their_own_facets_at_their_own_byte_offsets(site) -> None:
    _channel(site, "bluesky", thread=True)
    post, _ = _post(site)
    assert post is not None
    linked = [part for part in post.thread if post.link in part.text]
    assert len(linked) == 1
    for part in post.thread:
        data = part.text.encode("utf-8")
        for facet in part.facets:
            span = data[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")
            feature = facet["features"][0]
            assert span == (feature.get("uri") or "#" + feature.get("tag", ""))
    assert any(f["features"][0].get("uri") == post.link for f in linked[0].facets)


def test_a_part_never_cuts_a_word_and_prefers_sentence_ends(site) -> None:
    _channel(site, "x", thread=True)
    post, _ = _post(site)
    assert post is not None
    words = set(" ".join((post.article.title, LONG, post.article.cta or "")).split())
    for part in post.thread[:-1]:
        body = NUMBER.sub("", part.text)
        assert body.split()[-1] in words  # ends on a whole word of the text
        assert body.rstrip()[-1] in ".;:!?—", body  # at a sentence (or clause) end, not mid-phrase


def test_a_post_that_fits_stays_one_post(site) -> None:
    _channel(site, "x", thread=True)
    post, _ = _post(site, ARTICLE.replace(LONG, "Short and to the point."))
    assert post is not None and post.thread == ()
    assert "thread" not in post.as_dict() and not NUMBER.search(post.text)


def test_without_thread_the_long_post_is_shortened_as_before(site) -> None:
    _channel(site, "x")
    post, _ = _post(site)
    assert post is not None and post.thread == () and len(post.text) < len(LONG)
    assert parse_tweet(post.text).weightedLength <= 280


def test_the_article_s_own_thread_field_wins_over_the_channel(site) -> None:
    _channel(site, "x")
    post, _ = _post(site, ARTICLE.replace("tags:", "thread: true\ntags:"))
    assert post is not None and len(post.thread) >= 2
    _channel(site, "x", thread=True)
    post, _ = _post(site, ARTICLE.replace("tags:", "thread: false\ntags:"))
    assert post is not None and post.thread == ()


def test_an_own_copy_too_long_for_one_post_becomes_a_thread(site) -> None:
    _channel(site, "mastodon", thread=True)
    own = "Storm notes. " * 60
    text = ARTICLE.replace("tags:", f"social:\n  mastodon: '{own.strip()}'\ntags:")
    post, problems = _post(site, text)
    assert post is not None and not [p for p in problems if p.severity == "error"]
    assert len(post.thread) == 2
    assert _unnumbered([p.text for p in post.thread]) == " ".join(f"{own} {post.link}".split())


def test_the_content_hash_changes_with_the_parts_and_a_single_post_s_is_as_before(site) -> None:
    _channel(site, "x", thread=True)
    threaded, _ = _post(site)
    _channel(site, "x")
    single, _ = _post(site)
    assert threaded is not None and single is not None
    assert threaded.content_hash != single.content_hash
    assert "thread" in threaded.as_dict() and len(threaded.as_dict()["thread"]) == len(threaded.thread)


def test_a_thread_on_a_network_without_threads_is_a_config_error_naming_the_channel(site) -> None:
    _channel(site, "linkedin", thread=True)
    with pytest.raises(
        ConfigError, match=r"channels\.posts.*thread: linkedin posts cannot go on as a thread"
    ):
        site.config()


def test_an_article_asking_for_a_thread_on_linkedin_gets_one_post(site) -> None:
    _channel(site, "linkedin")
    post, _ = _post(site, ARTICLE.replace("tags:", "thread: true\ntags:"))
    assert post is not None and post.thread == ()


def test_split_cuts_at_the_strongest_boundary_and_counts_its_own_digits() -> None:
    def fits(text: str) -> bool:
        return len(text) <= 40

    assert split_thread("short", fits) == ["short"]
    parts = split_thread("One two three. Four five six seven.\n\nEight nine ten eleven twelve.", fits)
    assert parts == ["One two three. Four five six seven. 1/2", "Eight nine ten eleven twelve. 2/2"]
    many = split_thread(" ".join(["word"] * 120), fits)
    assert many is not None and len(many) == 18 and many[-1].endswith(" 18/18")
    assert all(fits(p) for p in many)
    assert split_thread("x" * 41, fits) is None  # one word longer than a part
    assert split_thread(" ".join(["word"] * 400), fits) is None  # over MAX_PARTS
    assert MAX_PARTS == 20
