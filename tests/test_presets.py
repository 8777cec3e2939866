"""Each preset on a site laid out as its generator documents: every post loads with the URL,
author, dates, image and a clean excerpt its own site gives it; pages, section pages, drafts
and excluded folders are passed over without an error."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from syndicate import load_config
from syndicate.content import Loaded, load_articles

from .conftest import REPO

SITES = REPO / "tests" / "data" / "sites"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
# What no excerpt may show: the generator's own syntax.
LEFTOVERS = ("{%", "%}", "{{", "}}", "<!--", "-->", "{:", "import ", "export ", "<Chart", "<span", " ,", " .")


def load(name: str) -> Loaded:
    config = load_config(SITES / name / "config.yaml")
    return load_articles(config)


def by_name(loaded: Loaded) -> dict:
    return {a.name: a for a in loaded.articles}


def skipped(loaded: Loaded) -> dict[str, str]:
    return {p.path.relative_to(SITES).as_posix(): p.message for p in loaded.skipped}


@pytest.fixture(autouse=True)
def _now(clock_at):
    clock_at(NOW)


@pytest.mark.parametrize("name", ["jekyll", "hugo", "astro", "eleventy", "zola", "nextjs"])
def test_every_preset_site_loads_with_no_error_and_clean_excerpts(name):
    loaded = load(name)
    assert loaded.errors == []
    assert loaded.articles
    for article in loaded.articles:
        assert article.excerpt, article.path
        for leftover in LEFTOVERS:
            assert leftover not in article.excerpt, (article.path, leftover, article.excerpt)
        assert article.url.startswith("https://")
        assert not any(p.field == "cta" for p in loaded.warnings if p.path == article.path) or not article.cta


def test_jekyll_dates_categories_permalinks_and_shared_names():
    loaded = load("jekyll")
    got = by_name(loaded)
    assert set(got) == {
        "keepers-logbook",
        "tide-tables@harbour/2019/06/01/tide-tables.html",
        "tide-tables@harbour/2021/06/01/tide-tables.html",
        "knots",
        "unlit",
    }
    log = got["keepers-logbook"]
    # A quoted date with a one-digit hour, as Jekyll itself reads it.
    assert log.publish_date == datetime(2013, 11, 22, 5, 0, tzinfo=UTC)
    assert log.url == "https://lamp.example/field-notes/2013/11/22/keepers-logbook.html"
    assert log.author == "Ines Varga"
    assert log.hero_image == "https://lamp.example/assets/img/logbook.jpg"
    assert log.hero_alt == "An open logbook beside a brass lamp"
    # The post's own excerpt_separator ends the excerpt; Liquid and kramdown never show.
    assert (
        log.excerpt == "Night watches. Every entry starts with the wind, then the lamp, then the ships seen."
    )
    # Two posts of one name in different years: both load, each at its own URL.
    first, second = (got[f"tide-tables@harbour/{y}/06/01/tide-tables.html"] for y in (2019, 2021))
    assert first.slug == second.slug == "tide-tables"
    assert first.url != second.url
    assert first.author == "Ines Varga and Tomas Berg"
    assert second.author == "Ines Varga, Tomas Berg and Ada Quill"
    assert second.updated_date == datetime(2021, 7, 1, tzinfo=UTC)
    assert first.excerpt == "Printing tables by hand took a week, see the notes, then the proofs."
    knots = got["knots"]
    assert knots.url == "https://lamp.example/knots/"  # its own permalink wins
    assert knots.excerpt == "Six knots, and when each one holds."  # Jekyll's `excerpt` field
    assert knots.cta == "Tell us your favourite knot" and knots.cta_url is None
    assert log.cta == "Follow the Lamp Room"  # site.cta where the article has none
    assert got["unlit"].draft and not got["unlit"].live(NOW)  # published: false
    assert skipped(loaded) == {
        "jekyll/README.md": "is excluded",
        "jekyll/_drafts/half-an-idea.md": "is excluded",
        "jekyll/about.md": "has no date: a page, not a post (the jekyll preset)",
    }
    assert [(p.field, p.message) for p in loaded.warnings if p.path.name == "2023-03-03-unlit.md"][-1] == (
        "published",
        "is false (this article is not sent until it is published)",
    )
    assert not any(p.field == "cta" for p in loaded.warnings)  # site.cta covers every post


def test_hugo_bundles_publish_date_expiry_and_sections():
    loaded = load("hugo")
    got = by_name(loaded)
    amsterdam = ZoneInfo("Europe/Amsterdam")
    walk = got["harbour-walk"]  # content/posts/harbour-walk/index.md: a page bundle
    assert walk.url == "https://harbour.example/posts/harbour-walk/"
    assert walk.publish_date == datetime(2024, 1, 9, 7, 30, tzinfo=UTC)  # publishDate wins over date
    assert walk.updated_date == datetime(2024, 1, 12, tzinfo=amsterdam)  # lastmod
    assert walk.author == "Noor Haddad and Piet Smit"
    assert walk.hero_image == "https://harbour.example/posts/harbour-walk/quay.jpg"  # beside the post
    assert walk.description == "Four miles of quay, two lighthouses and a café that opens at six."  # summary
    assert walk.excerpt == "We started at the east pier. Bring a coat."  # up to <!--more-->, no shortcodes
    assert walk.cta == "Subscribe to Harbour Notes" and walk.cta_url == "https://harbour.example/subscribe/"
    old, new = got["ferry@posts/2023/ferry"], got["ferry@posts/2024/ferry"]
    assert old.url == "https://harbour.example/posts/2023/ferry/"
    assert old.hero_image == "https://img.harbour.example/ferry-2023.jpg"  # PaperMod's cover table
    assert old.hero_alt == "A ferry leaving at dusk"
    assert new.publish_date == datetime(2024, 12, 30, 18, 0, tzinfo=UTC)  # "... UTC"
    assert new.expiry_date == datetime(2025, 1, 31, tzinfo=UTC)
    assert new.live(datetime(2025, 1, 30, tzinfo=UTC)) and not new.live(datetime(2025, 1, 31, tzinfo=UTC))
    assert got["storm"].draft
    assert skipped(loaded) == {
        "hugo/content/_index.md": "is a section page",
        "hugo/content/posts/_index.md": "is a section page",
        "hugo/content/about.md": "has no date: a page, not a post (the hugo preset)",
    }


def test_hugo_expiry_passed_and_future_publish_date_are_each_one_line(clock_at):
    clock_at(datetime(2025, 3, 1, tzinfo=UTC))
    loaded = load("hugo")
    expired = [p for p in loaded.warnings if p.field == "expiry_date"]
    assert [(p.path.parent.name, p.path.name, p.message) for p in expired] == [
        ("2024", "ferry.md", "2025-01-31T00:00:00+00:00 has passed (this article is no longer sent)")
    ]
    clock_at(datetime(2024, 1, 6, tzinfo=UTC))
    loaded = load("hugo")
    future = [p for p in loaded.warnings if p.field == "publishDate"]
    assert len(future) == 1 and future[0].path.parent.name == "harbour-walk"
    assert "is in the future" in future[0].message


def test_astro_blog_collection():
    loaded = load("astro")
    got = by_name(loaded)
    new_york = ZoneInfo("America/New_York")
    light = got["first-light"]
    assert light.publish_date == datetime(2022, 7, 8, tzinfo=new_york)  # 'Jul 08 2022'
    assert light.updated_date == datetime(2022, 7, 10, tzinfo=new_york)
    assert light.url == "https://observatory.example/blog/first-light/"
    assert light.hero_image == "https://observatory.example/blog-placeholder-3.jpg"
    assert light.excerpt == "The dome opened at 21:40 and the first frame was a star field."
    charts = got["charts"]  # .mdx: imports, exports and components gone, their text kept
    assert (
        charts.excerpt == "Start with Orion: it is easy to find. The rest of the winter follows from there."
    )
    assert got["deep-sky"].url == "https://observatory.example/blog/guides/deep-sky/"
    assert got["deep-sky"].publish_date == datetime(2023, 2, 1, 21, 0, tzinfo=new_york)


def test_eleventy_permalinks_bundles_and_pages():
    loaded = load("eleventy")
    got = by_name(loaded)
    assert got["first-post"].url == "https://bread.example/blog/first-post/"
    assert got["first-post"].author == "Maya Ortiz"  # a list of maps
    assert got["first-post"].excerpt == "The crust cracked as it cooled. Listen for it."
    assert got["second-post"].url == "https://bread.example/blog/second-post/"
    assert got["second-post"].hero_image == "https://bread.example/blog/second-post/starter.jpg"
    assert got["rye"].url == "https://bread.example/rye/"  # its own permalink
    assert got["rye"].publish_date == datetime(2019, 2, 14, tzinfo=UTC)  # from its file name
    templated = [p for p in loaded.warnings if p.field == "permalink"]
    assert len(templated) == 1 and "is a template" in templated[0].message
    assert got["templated"].url == "https://bread.example/blog/templated/"
    assert skipped(loaded) == {
        "eleventy/content/feed.md": "is false: this file makes no page (not an article)",
        "eleventy/content/index.md": "has no date: a page, not a post (the eleventy preset)",
    }


def test_zola_toml_extra_and_bundles():
    loaded = load("zola")
    got = by_name(loaded)
    spring = got["spring-tide"]  # 2024-03-01_spring-tide.md
    assert spring.publish_date == datetime(2024, 3, 1, tzinfo=UTC)
    assert spring.url == "https://tides.example/blog/spring-tide/"
    assert spring.hero_image == "https://img.tides.example/spring.jpg"  # [extra] image
    assert spring.cta == "Get the tide table"
    assert spring.author == "Lea Novak"
    neap = got["neap"]
    assert neap.url == "https://tides.example/blog/neap/"
    assert neap.hero_image == "https://tides.example/blog/neap/neap.png"
    assert neap.hero_alt == "A flat sea at low water"
    assert neap.updated_date == datetime(2024, 4, 3, tzinfo=UTC)
    assert got["custom-slug"].url == "https://tides.example/blog/custom-slug/"
    assert set(skipped(loaded)) == {"zola/content/_index.md", "zola/content/blog/_index.md"}


def test_nextjs_blog_starter():
    got = by_name(load("nextjs"))
    hello = got["hello-world"]
    assert hello.url == "https://workshop.example/posts/hello-world"
    assert hello.author == "Sam Okafor"
    assert hello.publish_date == datetime(2020, 3, 16, 5, 35, 7, 322000, tzinfo=UTC)
    assert hello.hero_image == "https://workshop.example/assets/blog/hello-world/cover.jpg"
    assert hello.description == "What we build, and why we write about it."
    assert got["dovetails"].hero_image == "https://img.workshop.example/dovetail.jpg"  # ogImage.url


def test_validate_counts_skipped_files_and_exits_0(tmp_path):
    from click.testing import CliRunner

    from syndicate.cli import cli

    config = SITES / "jekyll" / "config.yaml"
    result = CliRunner().invoke(
        cli, ["validate", "--config", str(config)], env={"SYNDICATE_NOW": NOW.isoformat()}
    )
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("5 article(s) ok, 0 error(s), ")
    assert last.endswith(", 3 file(s) skipped (not articles)")
    assert "skipped:" not in result.output


def test_the_readme_shows_a_config_block_per_preset():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("jekyll", "hugo", "astro", "eleventy", "zola", "nextjs"):
        assert f"preset: {name}" in readme
