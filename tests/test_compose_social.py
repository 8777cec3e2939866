"""Social posts from the articles in tests/data/social, checked with independent counters."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import grapheme
import pytest
from twitter_text import extract_urls_with_indices, parse_tweet

from syndicate.compose.littletext import little_text, unescape_little_text
from syndicate.compose.social import (
    SocialPost,
    choose_hashtags,
    compose_post,
    compose_social_channel,
    describe,
    hashtag,
    write_post_files,
)
from syndicate.config import Config, config_from_dict
from syndicate.content import Article, load_articles
from syndicate.errors import ConfigError, TemplateError

from .conftest import DATA, REPO, base_config_dict

NETWORKS = ("linkedin", "x", "mastodon", "bluesky", "threads")
ARTICLES = DATA / "social"


def social_config(tmp_path: Path, **channel_extra) -> Config:
    data = base_config_dict()
    data["content"] = {"dir": str(ARTICLES)}
    for network in NETWORKS:
        data["channels"][network] = {
            "kind": "social",
            "network": network,
            "hashtags": ["lighthouse", "engineering"],
            "targets": ["social-outbox"],
            **channel_extra,
        }
    return config_from_dict(data, tmp_path / "config.yaml")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return social_config(tmp_path)


@pytest.fixture
def articles(config: Config) -> list[Article]:
    loaded = load_articles(config)
    assert not [p for p in loaded.problems if p.severity == "error"]
    return loaded.articles


def reference_length(network: str, text: str) -> int:
    """Each network's count from libraries the composer does not use."""
    if network == "x":
        return parse_tweet(text).weightedLength
    if network == "bluesky":
        return grapheme.length(text)
    if network == "linkedin":
        return len(text.encode("utf-16-le")) // 2
    if network == "threads":  # Meta: a character each, an emoji (a symbol, a keycap) its UTF-8 bytes
        return sum(
            len(g.encode("utf-8")) if any(unicodedata.category(c) in ("So", "Me") for c in g) else 1
            for g in grapheme.graphemes(text)
        )
    urls = [u["indices"] for u in extract_urls_with_indices(text) if u["url"].startswith("http")]
    pieces, position = [], 0
    for start, end in urls:
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    return sum(grapheme.length(p) for p in pieces) + 23 * len(urls)


def test_the_data_has_the_hard_cases(articles: list[Article]) -> None:
    by_slug = {a.slug: a for a in articles}
    assert len(by_slug["long-description"].description) >= 4990
    assert len(by_slug["long-title"].title) == 400
    assert len(articles) >= 6


@pytest.mark.parametrize("network", NETWORKS)
def test_no_post_exceeds_its_network_limit(network: str, config: Config, articles: list[Article]) -> None:
    posts, problems = compose_social_channel(articles, network, config)
    assert not [p for p in problems if p.severity == "error"]
    assert len(posts) == len(articles)
    limit = {"linkedin": 3000, "x": 280, "mastodon": 500, "bluesky": 300, "threads": 500}[network]
    for post in posts:
        assert post.limit == limit
        assert post.length == reference_length(network, post.text), post.key
        assert post.length <= limit, post.key


@pytest.mark.parametrize("network", NETWORKS)
def test_posts_keep_link_and_hashtags_whole(network: str, config: Config, articles: list[Article]) -> None:
    posts, _ = compose_social_channel(articles, network, config)
    for post in posts:
        assert post.article.url in post.text
        assert post.link == post.article.url
        assert all(tag in post.text.split() for tag in post.hashtags)
        assert post.key == f"{network}:{post.article.slug}"
        assert post.image == post.article.hero_image


def test_every_linkedin_post_contains_its_cta(config: Config, articles: list[Article]) -> None:
    posts, _ = compose_social_channel(articles, "linkedin", config)
    assert all(post.article.cta for post in posts)
    for post in posts:
        assert post.article.cta in post.text
        assert 3 <= len(post.hashtags) <= 5


def test_linkedin_hook_carries_the_title_before_the_fold(config: Config, articles: list[Article]) -> None:
    posts, problems = compose_social_channel(articles, "linkedin", config)
    for post in posts:
        hook = post.text.split("\n", 1)[0]
        assert len(hook.encode("utf-16-le")) // 2 <= 210
        title = post.article.title
        assert hook == title or (hook.endswith("…") and title.startswith(hook[:-1])), post.key
        if post.fold is not None:
            assert post.fold >= len(hook)
            assert len(post.text[: post.fold].encode("utf-16-le")) // 2 <= 210
    warned = {p.path.name for p in problems if p.field == "title"}
    assert warned == {"long-title.md"}


def test_long_description_is_cut_at_a_word_boundary(config: Config, articles: list[Article]) -> None:
    article = next(a for a in articles if a.slug == "long-description")
    for network in NETWORKS:
        post, _ = compose_post(article, network, config)
        kept = next(line for line in post.text.split("\n") if line.endswith("…"))[:-1]
        assert article.description.startswith(kept)
        assert article.description[len(kept)] in " ,.:;", network  # the cut fell between words
        assert len(kept) > 20


def test_no_grapheme_cluster_is_broken(config: Config, articles: list[Article]) -> None:
    templates = "".join(p.read_text(encoding="utf-8") for p in (REPO / "templates" / "social").glob("*.j2"))
    for network in NETWORKS:
        posts, _ = compose_social_channel(articles, network, config)
        for post in posts:
            a = post.article
            sources = " ".join(
                [a.title, a.subtitle or "", a.description or a.excerpt, a.cta or "", a.url, templates, "…"]
            )
            known = set(grapheme.graphemes(sources + " ".join(post.hashtags) + str(a.read_minutes)))
            assert set(grapheme.graphemes(post.text)) <= known, post.key


def test_cjk_weighs_double_on_x(config: Config, articles: list[Article]) -> None:
    article = next(a for a in articles if a.slug == "cjk")
    post, _ = compose_post(article, "x", config)
    assert post.text.startswith(article.title)
    assert post.length == parse_tweet(post.text).weightedLength <= 280
    assert len(post.text) < 200  # two weight units per CJK character


def test_four_hundred_character_title_is_shortened_with_a_warning(config: Config, articles: list[Article]):
    article = next(a for a in articles if a.slug == "long-title")
    for network in ("x", "bluesky"):
        post, problems = compose_post(article, network, config)
        assert post is not None and post.length <= post.limit
        assert [p.field for p in problems] == ["title"]
        first = post.text.split("\n", 1)[0]
        assert first.endswith("…") and article.title.startswith(first[:-1])


def test_linkedin_commentary_round_trips_to_the_human_text(config: Config, articles: list[Article]) -> None:
    posts, _ = compose_social_channel(articles, "linkedin", config)
    for post in posts:
        commentary = little_text(post.text, post.hashtags)
        assert unescape_little_text(commentary) == post.text
        for tag in post.hashtags:
            assert "{hashtag|\\#|" + tag[1:] + "}" in commentary
    emoji_post = next(p for p in posts if p.article.slug == "emoji")
    commentary = little_text(emoji_post.text, emoji_post.hashtags)
    assert "keeper\\@example.com" in commentary and "\\(v2.0\\)" in commentary


def test_bluesky_link_facet_points_at_the_link(config: Config, articles: list[Article]) -> None:
    posts, _ = compose_social_channel(articles, "bluesky", config)
    for post in posts:
        raw = post.text.encode("utf-8")
        links = [f for f in post.facets if f["features"][0]["$type"].endswith("#link")]
        uris = [f["features"][0]["uri"] for f in links]
        assert post.link in uris
        for facet in links:
            span = raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")
            assert span == facet["features"][0]["uri"]
        tags = [f["features"][0]["tag"] for f in post.facets if f["features"][0]["$type"].endswith("#tag")]
        assert sorted(tags) == sorted(t[1:] for t in post.hashtags)


def test_a_post_that_cannot_fit_is_an_error_and_the_others_still_compose(site) -> None:
    site.article("fine.md", "---\ntitle: Fine\npublish_date: 2024-01-01\ncta: Follow us.\n---\nBody.\n")
    site.article(
        "huge.md", f"---\ntitle: Huge\npublish_date: 2024-01-02\nsubtitle: {'word ' * 700}\n---\nBody.\n"
    )
    config = site.config()
    posts, problems = compose_social_channel(load_articles(config).articles, "linkedin", config)
    assert [p.article.slug for p in posts] == ["fine"]
    [error] = [p for p in problems if p.severity == "error"]
    assert error.path.name == "huge.md"
    assert "linkedin" in str(error) and "3000" in str(error)


def test_post_files_hold_the_text_and_the_data(config: Config, articles: list[Article], tmp_path: Path):
    post, _ = compose_post(articles[0], "linkedin", config)
    paths = write_post_files(post, tmp_path / "out")
    assert [p.suffix for p in paths] == [".txt", ".json"]
    assert paths[0].name == f"linkedin-{post.article.slug}.txt"
    assert paths[0].read_text(encoding="utf-8") == post.text + "\n"
    data = json.loads(paths[1].read_text(encoding="utf-8"))
    assert data == post.as_dict()
    assert data["text"] == post.text and data["length"] == post.length and data["limit"] == 3000


def test_describe_and_content_hash(config: Config, articles: list[Article]) -> None:
    post, _ = compose_post(articles[0], "linkedin", config)
    assert describe(post) == f"linkedin {post.length}/3000, fold at {post.fold}"
    x_post, _ = compose_post(articles[0], "x", config)
    assert describe(x_post) == f"x {x_post.length}/280"
    again, _ = compose_post(articles[0], "linkedin", config)
    assert again.content_hash == post.content_hash
    changed = SocialPost(**{**post.__dict__, "text": post.text + "!"})
    assert changed.content_hash != post.content_hash


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("ai", "#ai"),
        ("machine learning", "#MachineLearning"),
        ("#Already", "#Already"),
        ("open-source_tools", "#OpenSourceTools"),
        ("日本語", "#日本語"),
        ("2024", None),
        ("!!!", None),
    ],
)
def test_hashtag(tag: str, expected: str | None) -> None:
    assert hashtag(tag) == expected


def test_hashtags_article_first_then_channel_deduplicated_and_capped(tmp_path, articles) -> None:
    config = social_config(tmp_path, max_hashtags=3)
    article = next(a for a in articles if a.slug == "tide-tables")
    chosen = choose_hashtags(article, config.channels["linkedin"])
    assert chosen == ("#engineering", "#OpenData", "#FrugalInnovation")
    plain = next(a for a in articles if a.slug == "plain-no-description")
    assert choose_hashtags(plain, config.channels["x"]) == ("#notebooks", "#writing", "#craft")
    assert choose_hashtags(article, social_config(tmp_path).channels["x"]) == ("#engineering", "#OpenData")


def test_too_few_linkedin_hashtags_is_a_warning(site) -> None:
    site.article("a.md", "---\ntitle: A\npublish_date: 2024-01-01\ntags: [one]\ncta: Go.\n---\nBody.\n")
    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "linkedin", config)
    assert post is not None
    assert [(p.field, p.severity) for p in problems] == [("tags", "warning")]


def test_a_channel_that_is_not_social_is_a_config_error(config: Config, articles) -> None:
    with pytest.raises(ConfigError, match="channels.weekly: is an email channel"):
        compose_post(articles[0], "weekly", config)
    with pytest.raises(ConfigError, match="channels.nope: is not a channel"):
        compose_social_channel(articles, "nope", config)


def _config_with_template(site, text: str) -> Config:
    folder = site.root / "templates" / "social"
    folder.mkdir(parents=True)
    (folder / "custom.txt.j2").write_text(text, encoding="utf-8")
    site.data["templates"] = "templates"
    site.data["channels"]["linkedin"]["template"] = "social/custom.txt.j2"
    site.article("a.md", "---\ntitle: A\npublish_date: 2024-01-01\n---\nBody.\n")
    return site.config()


def test_undefined_template_variable_names_template_and_line(site) -> None:
    config = _config_with_template(site, "{{ title }}\n\n{{ article.no_such_field }}\n")
    with pytest.raises(TemplateError, match=r"social/custom.txt.j2:3: .*no_such_field"):
        compose_social_channel(load_articles(config).articles, "linkedin", config)


def test_runtime_error_in_a_template_names_template_and_line(site) -> None:
    config = _config_with_template(site, "{{ title }}\n{{ article.read_minutes + 'x' }}\n")
    with pytest.raises(TemplateError, match=r"social/custom.txt.j2:2: TypeError: .*a.md"):
        compose_social_channel(load_articles(config).articles, "linkedin", config)


def test_template_syntax_error_names_template_and_line(site) -> None:
    config = _config_with_template(site, "{{ title }}\n{% if %}\n")
    with pytest.raises(TemplateError, match=r"custom.txt.j2:2: "):
        compose_social_channel([], "linkedin", config)


def test_missing_template_is_a_template_error(site) -> None:
    site.data["channels"]["linkedin"]["template"] = "social/absent.txt.j2"
    config = site.config()
    with pytest.raises(TemplateError, match="social/absent.txt.j2: no such template"):
        compose_social_channel([], "linkedin", config)


def test_templates_are_plain_text_not_html(site) -> None:
    site.article("a.md", "---\ntitle: Fish & Chips <hot>\npublish_date: 2024-01-01\n---\nBody.\n")
    config = site.config()
    post, _ = compose_post(load_articles(config).articles[0], "linkedin", config)
    assert post.text.startswith("Fish & Chips <hot>")


def test_bluesky_posts_stay_under_3000_bytes_too(site) -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 25 UTF-8 bytes, 1 grapheme
    description = " ".join([family] * 250)
    site.article(
        "f.md", f"---\ntitle: Families\npublish_date: 2024-01-01\ndescription: '{description}'\n---\nB.\n"
    )
    site.data["channels"]["sky"] = {"kind": "social", "network": "bluesky", "targets": ["social-outbox"]}
    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "sky", config)
    assert grapheme.length(post.text) <= 300
    assert len(post.text.encode("utf-8")) <= 3000
    assert post.text.count(family) > 50  # shortened, not emptied
    assert not problems


def test_cannot_fit_error_names_channel_network_and_limit(site) -> None:
    site.article(
        "huge.md", f"---\ntitle: Huge\npublish_date: 2024-01-02\nsubtitle: {'word ' * 700}\n---\nB.\n"
    )
    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "linkedin", config)
    assert post is None
    [error] = [p for p in problems if p.severity == "error"]
    assert str(error).startswith(
        f"{site.content / 'huge.md'}: linkedin: the linkedin post for channel linkedin is "
    )
    assert "expected at most 3000" in str(error)


@pytest.mark.parametrize("net", ["x", "bluesky", "mastodon", "linkedin", "threads"])
def test_the_cta_goes_on_every_network_when_it_fits(site, net) -> None:
    site.data["channels"]["social"] = {"kind": "social", "network": net, "targets": ["social-outbox"]}
    site.article(
        "short.md",
        "---\ntitle: Harbour lights\ndescription: Why the lights change colour.\npublish_date: 2024-01-02\n"
        "cta: Follow us for the next one.\n---\nB.\n",
    )
    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "social", config)
    assert post is not None and "Follow us for the next one." in post.text
    assert "Why the lights change colour." in post.text
    assert not [p for p in problems if p.field == "cta"]


def test_a_cta_that_cannot_fit_is_left_out_with_a_warning_naming_it(site) -> None:
    site.data["channels"]["social"] = {"kind": "social", "network": "x", "targets": ["social-outbox"]}
    site.article(
        "long.md",
        "---\ntitle: Harbour lights\npublish_date: 2024-01-02\n"
        f"cta: {'Follow us on every network we are on. ' * 8}\n---\nB.\n",
    )
    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "social", config)
    assert post is not None and "Follow us" not in post.text and "Harbour lights" in post.text
    [warning] = [p for p in problems if p.field == "cta"]
    assert warning.severity == "warning" and "left out of channel social's x post" in str(warning)


OWN_COPY = """\
---
title: Harbour lights
description: Why the lights change colour.
publish_date: 2024-01-02
cta: Follow us.
tags: [harbours, lights]
social:
  x: "Red to port, green to starboard: a short thread-free take. #harbours"
  mastodon: |
    Why do harbour lights change colour?
    Read it here: https://example.com/articles/own-copy
---
Body.
"""


def test_an_article_s_own_text_for_a_network_replaces_the_template_s(site) -> None:
    site.data["channels"].update(
        {
            "x": {"kind": "social", "network": "x", "targets": ["social-outbox"]},
            "toots": {"kind": "social", "network": "mastodon", "targets": ["social-outbox"]},
        }
    )
    site.article("own-copy.md", OWN_COPY)
    config = site.config()
    [article] = load_articles(config).articles
    x_post, _ = compose_post(article, "x", config)
    assert x_post is not None
    assert x_post.text == (
        "Red to port, green to starboard: a short thread-free take. #harbours\n\n"
        "https://example.com/articles/own-copy"
    )  # the link added: the text did not hold it
    toot, _ = compose_post(article, "toots", config)
    assert toot is not None
    assert (
        toot.text
        == "Why do harbour lights change colour?\nRead it here: https://example.com/articles/own-copy"
    )
    linkedin_post, _ = compose_post(article, "linkedin", config)  # no own text: the template's
    assert linkedin_post is not None and linkedin_post.text.startswith("Harbour lights")
    assert article.as_dict()["social"]["x"].startswith("Red to port")


def test_an_own_text_that_does_not_fit_is_an_error_naming_the_field(site) -> None:
    site.data["channels"]["x"] = {"kind": "social", "network": "x", "targets": ["social-outbox"]}
    site.article("long-copy.md", OWN_COPY.replace("a short thread-free take.", "word " * 60))
    config = site.config()
    post, problems = compose_post(load_articles(config).articles[0], "x", config)
    assert post is None
    [error] = [p for p in problems if p.severity == "error"]
    assert error.field == "social.x" and "(expected at most 280" in str(error)


@pytest.mark.parametrize(("social", "field"), [("'just text'", "social"), ("{x: [1, 2]}", "social.x")])
def test_a_social_field_that_is_not_network_texts_refuses_the_article(site, social, field) -> None:
    site.article("bad.md", f"---\ntitle: Bad\npublish_date: 2024-01-02\nsocial: {social}\n---\nB.\n")
    loaded = load_articles(site.config())
    assert loaded.articles == []
    [error] = [p for p in loaded.problems if p.severity == "error"]
    assert error.field == field


def test_threads_takes_one_topic_tag_even_when_a_channel_asks_for_more(tmp_path: Path) -> None:
    config = social_config(tmp_path, max_hashtags=3)
    [article, *_] = load_articles(config).articles
    threads, _ = compose_post(article, "threads", config)
    mastodon, _ = compose_post(article, "mastodon", config)
    assert threads is not None and mastodon is not None
    assert len(threads.hashtags) == 1 and len(mastodon.hashtags) > 1
    assert sum(word.startswith("#") for word in threads.text.split()) == 1
