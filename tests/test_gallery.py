"""The preview gallery: every draft on one page, problems beside their draft, local images, a real browser."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from syndicate import clock
from syndicate.config import load_config
from syndicate.errors import TemplateError
from syndicate.gallery import render_preview
from syndicate.serve import start_server
from syndicate.timeshow import show_time

from .conftest import DATA, EVERY_FIELD, REPO, assert_inert, chromium, needs_chromium

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
SCREENSHOTS = REPO / "artifacts" / "gallery"
# Added to a copy of the gallery by the browser test only: which images loaded, in the page and its frames.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const frames = [...document.querySelectorAll("iframe")];
  const images = [];
  [document, ...frames.map((f) => f.contentDocument)].forEach((doc, frame) => {
    for (const img of doc.images) images.push({src: img.src, frame, loaded: img.complete && img.naturalWidth > 0});
  });
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify({frames: frames.map((f) => f.contentDocument.title), images});
  document.body.appendChild(out);
});
</script>"""


def _page(index):
    return lxml.html.fromstring(index.read_text(encoding="utf-8"))


def _item(page, key):
    (element,) = page.xpath(f'//*[@data-key="{key}"]')
    return element


def _text(element) -> str:
    return " ".join(element.text_content().split())


NETWORKS = ("linkedin", "x", "mastodon", "bluesky", "threads")


def _on_every_network(site) -> None:
    """A social channel per network (named after it), all to the site's outbox."""
    for name in NETWORKS:
        site.data["channels"][name] = {"kind": "social", "network": name, "targets": ["social-outbox"]}


def _card_parts(card) -> dict:
    """What a post's card shows below its text: images, title, description, domain (None: not shown)."""

    def one(name):
        found = card.find_class(name)
        assert len(found) <= 1, name
        return _text(found[0]) if found else None

    return {
        "images": card.xpath(".//img/@src"),
        "post_image": card.xpath('.//img[@class="post-image"]/@src'),
        "title": one("card-title"),
        "description": one("card-description"),
        "domain": one("card-domain"),
        "compact": bool(card.xpath('.//*[contains(concat(" ", @class, " "), " compact ")]')),
    }


def test_gallery_shows_every_email_and_post_with_its_size_and_problems(email_site, tmp_path):
    email_site.data["content"]["preheader_chars"] = 100  # so that fog-signals' description is too long
    config = email_site.config()
    rendered = render_preview(config, None, None, tmp_path / "out", NOW)
    assert rendered.index == tmp_path / "out" / "index.html"
    page = _page(rendered.index)
    assert sorted(page.xpath("//@data-key")) == sorted(item.key for item in rendered.items)
    assert len(rendered.items) == 9  # a digest, 4 single emails, 4 LinkedIn posts

    digest = _item(page, "weekly:2024-03-11")
    row = _text(digest.find_class("inbox-row")[0])
    draft = next(i.draft for i in rendered.items if i.key == "weekly:2024-03-11")
    assert row.startswith(f"Test Weekly {draft.subject} – {draft.preheader}")
    assert row.endswith("Mon 11 Mar 2024, 08:00 GMT (+00:00)")  # its send in the queue
    assert f"HTML {draft.sent_bytes:,} / 100,000 bytes" in _text(digest)
    widths = [(f.get("src"), f.get("width")) for f in digest.iter("iframe")]
    assert widths == [("frames/weekly-2024-03-11.html", "640"), ("frames/weekly-2024-03-11.html", "375")]
    assert (tmp_path / "out" / "frames" / "weekly-2024-03-11.html").is_file()
    plain = digest.xpath(".//details/pre")[0].text_content()
    assert plain == (tmp_path / "out" / "weekly-2024-03-11.txt").read_text(encoding="utf-8")
    warnings = [_text(li) for li in digest.xpath('.//li[@class="warning"]')]
    assert "unsubscribe tokens are not signed (set site.unsubscribe_secret)" in warnings
    assert any("fog-signals.md: description: is 134 characters" in w for w in warnings)

    post = next(i.draft for i in rendered.items if i.key == "linkedin:harbour-economics")
    card = _item(page, "linkedin:harbour-economics")
    assert "linkedin" in card.get("class").split()
    assert _text(card.find_class("counter")[0]) == f"{post.length:,} / 3,000 characters"
    (text,) = card.find_class("text")
    assert text.text == post.text[: post.fold]
    assert _text(text.find_class("fold")[0]) == "…see more"
    assert text.find_class("after-fold")[0].text == post.text[post.fold :]
    # A problem with an article sits beside each draft that carries the article.
    assert "harbour-economics.md: description: is 152 characters" in _text(card)
    assert "harbour-economics.md" not in _text(_item(page, "linkedin:fog-signals"))

    other = _text(page.get_element_by_id("problems").getnext())
    assert "unfinished-draft.md: draft: is true" in other


def test_the_queue_lists_sends_after_now_in_the_site_timezone(email_site, tmp_path):
    rendered = render_preview(email_site.config(), None, None, tmp_path, NOW)
    rows = [[_text(td) for td in tr.iter("td")] for tr in _page(rendered.index).xpath("//table/tbody/tr")]
    assert [row[:4] for row in rows] == [
        ["Fri 8 Mar 2024, 00:00 GMT (+00:00)", "letters", "mail-outbox", "letters:harbour-economics"],
        ["Fri 8 Mar 2024, 00:00 GMT (+00:00)", "linkedin", "social-outbox", "linkedin:harbour-economics"],
        ["Sun 10 Mar 2024, 18:30 GMT (+00:00)", "letters", "mail-outbox", "letters:fog-signals"],
        ["Sun 10 Mar 2024, 18:30 GMT (+00:00)", "linkedin", "social-outbox", "linkedin:fog-signals"],
        ["Mon 11 Mar 2024, 08:00 GMT (+00:00)", "weekly", "mail-outbox", "weekly:2024-03-11"],
    ]
    only = render_preview(email_site.config(), None, "weekly", tmp_path / "weekly", NOW)
    assert len(_page(only.index).xpath("//table/tbody/tr")) == 1


def test_local_time_carries_the_zone_and_offset():
    summer = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    assert show_time(summer, ZoneInfo("Europe/London"), form="reader") == "Mon 1 Jul 2024, 13:00 BST (+01:00)"
    assert (
        show_time(summer, ZoneInfo("America/St_Johns"), form="reader") == "Mon 1 Jul 2024, 09:30 NDT (-02:30)"
    )


def test_user_text_is_escaped(email_site, tmp_path):
    shutil.copy(DATA / "email" / "hostile" / "hostile-title.md", email_site.content)
    rendered = render_preview(email_site.config(), None, "linkedin", tmp_path, NOW)
    source = rendered.index.read_text(encoding="utf-8")
    assert "<script" not in source
    assert "Q&amp;A: &lt;script&gt;alert(1)&lt;/script&gt;" in source
    card = _item(_page(rendered.index), "linkedin:hostile-title")
    assert 'Q&A: <script>alert(1)</script> "quotes"' in _text(card)


def test_a_local_hero_image_is_copied_for_the_gallery_only(email_site, tmp_path):
    images = email_site.content / "images"
    images.mkdir()
    shutil.copy(REPO / "content" / "images" / "harbour-light.png", images / "light one.png")
    email_site.article(
        "local.md",
        """
        ---
        title: A Local Light
        publish_date: 2024-03-09
        heroImage: images/light%20one.png
        cta: Read it
        tags: [a, b, c]
        ---
        Body.
        """,
    )
    email_site.article(
        "missing.md",
        """
        ---
        title: A Missing Light
        publish_date: 2024-03-09
        heroImage: images/nowhere.png
        cta: Read it
        tags: [a, b, c]
        ---
        Body.
        """,
    )
    out = tmp_path / "out"
    render_preview(email_site.config(), None, None, out, NOW)
    absolute = "https://example.com/articles/images/light%20one.png"
    assert absolute in (out / "letters-local.html").read_text(encoding="utf-8")  # as sent
    frame = (out / "frames" / "letters-local.html").read_text(encoding="utf-8")
    assert 'src="../assets/images/light%20one.png"' in frame and absolute not in frame
    assert (out / "assets" / "images" / "light one.png").read_bytes() == (
        images / "light one.png"
    ).read_bytes()
    page = _page(out / "index.html")
    assert _item(page, "linkedin:local").xpath(".//img/@src") == ["assets/images/light%20one.png"]
    # Not a file in the content folder: the URL stays as it is.
    assert _item(page, "linkedin:missing").xpath(".//img/@src") == [
        "https://example.com/articles/images/nowhere.png"
    ]
    assert sorted(p.name for p in (out / "assets" / "images").iterdir()) == ["light one.png"]


def test_every_article_field_is_escaped_in_the_gallery(email_site, tmp_path):
    shutil.copy(EVERY_FIELD, email_site.content)
    _on_every_network(email_site)
    out = tmp_path / "out"
    render_preview(email_site.config(), None, None, out, NOW)
    page = assert_inert((out / "index.html").read_text(encoding="utf-8"))
    for frame in (out / "frames").iterdir():
        assert_inert(frame.read_text(encoding="utf-8"))
    title = "<script>alert(1)</script> {{ 7*7 }} {% if true %}evaluated{% endif %}"
    for key in ("letters:every-field", *(f"{name}:every-field" for name in NETWORKS)):
        assert title in _text(_item(page, key))
    # The card's title and description are the article's, as text; the image URL an attribute value.
    description = '</mj-text><mj-raw><script>alert(3)</script></mj-raw><mj-text>{{ site }} {{ "x"|upper }}'
    for name in ("linkedin", "x", "mastodon", "bluesky"):
        parts = _card_parts(_item(page, f"{name}:every-field"))
        assert parts["title"] == title, name
        assert parts["images"] == ['https://images.example.org/x.png"onerror="alert(6)'], name
    assert _card_parts(_item(page, "mastodon:every-field"))["description"] == description
    assert _card_parts(_item(page, "bluesky:every-field"))["description"] == description
    assert page.xpath("//iframe[not(@sandbox)]") == []  # the emails' own HTML runs no script either


def test_each_network_card_is_laid_out_as_its_network_shows_a_link(email_site, tmp_path):
    """Per network: the avatar row, the text, then the link card with the pieces that network shows."""
    _on_every_network(email_site)
    images = email_site.content / "images"
    images.mkdir()
    shutil.copy(REPO / "content" / "images" / "harbour-light.png", images / "light.png")
    email_site.article(
        "local.md",
        """
        ---
        title: A Local Light
        publish_date: 2024-03-09
        heroImage: images/light.png
        tags: [a, b, c]
        ---
        The lamp & the lens, <b>kept</b> by hand.
        """,
    )
    rendered = render_preview(email_site.config(), None, None, tmp_path, NOW)
    page = _page(rendered.index)
    local = "assets/images/light.png"
    fog = "Why Fog Signals Went Quiet"
    fog_description = (
        "Diaphones, reeds and sirens once boomed across every headland. Satellite navigation made them "
        "optional, and neighbours made them rare."
    )
    excerpt = "The lamp & the lens, kept by hand."  # the excerpt is text: the markup is gone

    def parts(key):
        card = _item(page, key)
        assert card.get("data-kind") == "social"
        assert key.split(":")[0] in card.get("class").split()
        (who,) = card.find_class("who")  # the avatar/name row: site name, network, channel
        assert card.find_class("avatar") and who.find("strong").text == "Test Weekly"
        assert f" · {key.split(':')[0]}" in _text(who.find("small"))
        assert card.find_class("counter") and card.find_class("text")
        return _card_parts(card)

    # LinkedIn: thumbnail, title and domain, no description; no image: a compact row.
    assert parts("linkedin:local") == {
        "images": [local],
        "post_image": [],
        "title": "A Local Light",
        "description": None,
        "domain": "example.com",
        "compact": False,
    }
    assert parts("linkedin:fog-signals") == {
        "images": [],
        "post_image": [],
        "title": fog,
        "description": None,
        "domain": "example.com",
        "compact": True,
    }
    assert _text(_item(page, "linkedin:local").xpath(".//*[@class='who']/small")[0]).startswith("LinkedIn · ")
    # X: the large image with the title over it and "From example.com" beneath, no description;
    # no image: the summary row with domain, title and description.
    x_local = _item(page, "x:local")
    assert parts("x:local") == {
        "images": [local],
        "post_image": [],
        "title": "A Local Light",
        "description": None,
        "domain": "example.com",
        "compact": False,
    }
    assert x_local.xpath('.//*[contains(@class, "large")]/span[@class="card-title"]')
    assert _text(x_local.find_class("card-from")[0]) == "From example.com"
    assert parts("x:fog-signals") == {
        "images": [],
        "post_image": [],
        "title": fog,
        "description": fog_description,
        "domain": "example.com",
        "compact": True,
    }
    # Mastodon: image, domain, title and the page's description (the excerpt when none is given).
    assert parts("mastodon:local") == {
        "images": [local],
        "post_image": [],
        "title": "A Local Light",
        "description": excerpt,
        "domain": "example.com",
        "compact": False,
    }
    assert parts("mastodon:fog-signals") == {
        "images": [],
        "post_image": [],
        "title": fog,
        "description": fog_description,
        "domain": "example.com",
        "compact": True,
    }
    # Bluesky: the external embed's thumb, title, description as sent (none without one), domain.
    assert parts("bluesky:local") == {
        "images": [local],
        "post_image": [],
        "title": "A Local Light",
        "description": None,
        "domain": "example.com",
        "compact": False,
    }
    assert parts("bluesky:fog-signals") == {
        "images": [],
        "post_image": [],
        "title": fog,
        "description": fog_description,
        "domain": "example.com",
        "compact": False,
    }
    remote = parts("bluesky:harbour-economics")
    assert remote["images"] == ["https://images.example.org/breakwater.webp"]  # not local: as it is
    # Threads: an https hero image makes an IMAGE post (the picture, no link card); none: the link attachment.
    assert parts("threads:local") == {
        "images": [local],
        "post_image": [local],
        "title": None,
        "description": None,
        "domain": None,
        "compact": False,
    }
    assert parts("threads:fog-signals") == {
        "images": [],
        "post_image": [],
        "title": fog,
        "description": None,
        "domain": "example.com",
        "compact": False,
    }
    # Each card links to the article.
    for name in NETWORKS:
        links = _item(page, f"{name}:fog-signals").xpath(".//a/@href")
        assert "https://example.com/articles/fog-signals" in links, name
    assert (tmp_path / "assets" / "images" / "light.png").is_file()


def test_threads_without_images_shows_the_link_attachment_with_the_picture(email_site, tmp_path):
    email_site.data["targets"]["threads-api"] = {
        "type": "threads",
        "user_id": "1234",
        "token": "not-a-token",
        "image": False,
    }
    email_site.data["channels"]["threads"] = {
        "kind": "social",
        "network": "threads",
        "targets": ["threads-api"],
    }
    rendered = render_preview(email_site.config(), None, "threads", tmp_path, NOW)
    parts = _card_parts(_item(_page(rendered.index), "threads:harbour-economics"))
    assert parts["post_image"] == []
    assert parts["images"] == ["https://images.example.org/breakwater.webp"]
    assert parts["title"] == "Small Harbours, Big Ledgers: Who Pays for a Breakwater?"
    assert parts["domain"] == "example.com"


@pytest.mark.parametrize(
    ("net", "target"),
    [
        ("x", {"type": "x", "token": "t"}),
        ("mastodon", {"type": "mastodon", "url": "https://mastodon.example", "token": "t"}),
    ],
)
def test_a_native_target_that_attaches_the_image_shows_the_picture_not_a_card(
    email_site, tmp_path, net, target
):
    """X and Mastodon show an attached image instead of the link's card: their targets upload it."""
    email_site.data["targets"]["native"] = target
    email_site.data["channels"][net] = {"kind": "social", "network": net, "targets": ["native"]}
    rendered = render_preview(email_site.config(), None, net, tmp_path, NOW)
    parts = _card_parts(_item(_page(rendered.index), f"{net}:harbour-economics"))
    assert parts["post_image"] == parts["images"] == ["https://images.example.org/breakwater.webp"]
    assert parts["title"] is None and parts["domain"] is None
    if net == "x":  # a target that posts no image: the link's card again
        email_site.data["targets"]["native"]["image"] = False
        rendered = render_preview(email_site.config(), None, net, tmp_path / "off", NOW)
        parts = _card_parts(_item(_page(rendered.index), f"{net}:harbour-economics"))
        assert parts["post_image"] == [] and parts["domain"] == "example.com"


def test_a_thread_shows_its_parts_as_replies_under_the_first(email_site, tmp_path):
    email_site.data["channels"]["x"] = {
        "kind": "social",
        "network": "x",
        "targets": ["social-outbox"],
        "thread": True,
    }
    long = " ".join(f"Sentence {n} about the breakwater and its ledgers." for n in range(1, 16))
    email_site.article(
        "long.md", f"---\ntitle: A Long Story\ndescription: '{long}'\npublish_date: 2024-03-09\n---\nB.\n"
    )
    rendered = render_preview(email_site.config(), None, "x", tmp_path, NOW)
    post = next(i.draft for i in rendered.items if i.key == "x:long")
    assert len(post.thread) >= 3
    card = _item(_page(rendered.index), "x:long")
    texts = [_text(t) for t in card.find_class("text")]
    assert texts == [" ".join(p.text.split()) for p in post.thread]
    replies = card.xpath('.//ol[@class="replies"]/li')
    assert len(replies) == len(post.thread) - 1
    first = card.find_class("text")[0]
    assert first.getnext().get("class").startswith("link-card")  # the card under the first part


def test_card_text_is_escaped_on_every_network(email_site, tmp_path):
    shutil.copy(DATA / "email" / "hostile" / "hostile-title.md", email_site.content)
    _on_every_network(email_site)
    rendered = render_preview(email_site.config(), None, None, tmp_path, NOW)
    source = rendered.index.read_text(encoding="utf-8")
    assert "<script" not in source
    page = _page(rendered.index)
    title = 'Q&A: <script>alert(1)</script> "quotes"'
    for name in NETWORKS:
        card = _item(page, f"{name}:hostile-title")
        assert title in _text(card), name
        assert card.xpath(".//img/@src") == ['https://images.example.org/q"a.webp'], name
        if name != "threads":  # an IMAGE post there: no card title
            assert _card_parts(card)["title"] == title, name
    description = 'An article whose title tries to run a script & break out of "attributes".'
    assert _card_parts(_item(page, "bluesky:hostile-title"))["description"] == description


@pytest.mark.parametrize(
    "hero",
    [
        "../outside.png",
        "%2e%2e/outside.png",
        "images/..%2f..%2foutside.png",
        "images/linked.png",
        "/outside.png",
    ],
)
def test_a_hero_image_is_copied_only_from_inside_the_content_folder(site, tmp_path, hero):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"private bytes, not an image")
    (site.content / "images").mkdir()
    (site.content / "images" / "linked.png").symlink_to(outside)
    site.article("a.md", f"---\ntitle: T\npublish_date: 2024-03-01\nheroImage: '{hero}'\ncta: Go\n---\nB.\n")
    out = tmp_path / "out"
    render_preview(site.config(), None, None, out, NOW)
    assert not (out / "assets").exists()
    copied = [p for p in out.rglob("*") if p.is_file() and p.read_bytes() == outside.read_bytes()]
    assert copied == []
    assert all(src.startswith("https://") for src in _page(out / "index.html").xpath("//img/@src"))


def test_a_post_that_cannot_fit_is_a_card_with_its_error(email_site, tmp_path):
    email_site.data["channels"]["x"] = {"kind": "social", "network": "x", "targets": ["social-outbox"]}
    email_site.article(
        "loud.md",
        f"""
        ---
        title: A Hashtag Longer Than a Post
        publish_date: 2024-03-06
        tags: [{"Lighthouse" * 30}]
        ---
        Body.
        """,
    )
    rendered = render_preview(email_site.config(), None, "x", tmp_path, NOW)
    card = _item(_page(rendered.index), "x:loud")
    assert "failed" in card.get("class").split()
    (error,) = card.xpath('.//li[@class="error"]')
    assert _text(error).startswith("x: the x post for channel x is")
    assert "counter" not in lxml.html.tostring(card, encoding="unicode")


def test_a_broken_gallery_template_is_a_template_error(email_site, tmp_path):
    folder = email_site.root / "mytemplates" / "preview"
    folder.mkdir(parents=True)
    (folder / "gallery.html.j2").write_text("<p>\n{% for x in emails %}\n", encoding="utf-8")
    email_site.data["templates"] = "mytemplates"
    with pytest.raises(TemplateError, match=r"mytemplates/preview/gallery\.html\.j2:2: Unexpected end"):
        render_preview(email_site.config(), None, None, tmp_path, NOW)


@needs_chromium
def test_example_gallery_in_headless_chromium(tmp_path):
    """The repository's example content: every draft shown, local images load, screenshots written."""
    config = load_config(REPO / "config.yaml")
    out = tmp_path / "preview"
    rendered = render_preview(config, None, None, out, clock.now())
    page = rendered.index.read_text(encoding="utf-8")
    (out / "check.html").write_text(page.replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    server = start_server(out, 0)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        dom = chromium(tmp_path / "profile", "--dump-dom", f"{base}/check.html")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name, size in (("desktop", "1280,3600"), ("mobile", "375,5200")):
            shot = SCREENSHOTS / f"{name}.png"
            shot.unlink(missing_ok=True)
            chromium(
                tmp_path / "profile", f"--screenshot={shot}", f"--window-size={size}", f"{base}/index.html"
            )
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    finally:
        server.shutdown()
        server.server_close()

    tree = lxml.html.fromstring(dom)
    emails = [i for i in rendered.items if i.kind == "email"]
    posts = [i for i in rendered.items if i.kind == "social"]
    assert emails and len(posts) == 6
    assert sorted(tree.xpath("//@data-key")) == sorted(i.key for i in rendered.items)
    for item in rendered.items:
        assert " ".join(item.title.split()) in _text(tree), item.key
    for leftover in ("{{", "{%", "{#", "<mj-", "__syndicate"):
        assert leftover not in dom
    check = json.loads(tree.get_element_by_id("image-check").text)
    assert check["frames"] == [i.title for i in emails for _ in (1, 2)]  # desktop and mobile
    local = [img for img in check["images"] if img["src"].startswith(base)]
    # The example article with a relative hero image: in the page's LinkedIn card and both frames.
    assert {img["frame"] for img in local} == {0, 1, 2}
    broken = [img for img in local if not img["loaded"]]
    assert not broken


def test_the_readme_names_the_screenshot_folder():
    assert "`artifacts/gallery/`" in (REPO / "README.md").read_text(encoding="utf-8")
