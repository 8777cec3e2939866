"""compose.article_html: an article's body made email-safe (links, images, code, tables) and as text."""

from __future__ import annotations

import os
import textwrap

import lxml.html
import mjml
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syndicate.compose.article_html import IMAGE_WIDTH, email_body
from syndicate.content.markdown import markdown

BUNDLE_URL = "https://site.example/posts/hello/"

# An invented article about a village bakery, with every kind of block a markdown body makes.
BAKERY = textwrap.dedent(
    """\
    The oven at [the mill](../mill-house/) was lit at four, as it was [every day](/about#hours).
    Write to [the baker](mailto:bread@site.example) or see [the map](https://maps.example/bake?x=1&y=2).

    ![The bakery's front window at dawn](cover.png)

    ## Flour and water

    - rye from [the farm](farm.html)
    - spelt, stone-ground
      - sieved twice

    1. mix
    2. rest

    | Loaf | Grams | Price |
    |:-----|------:|:-----:|
    | Cob  | 800   | £3.10 |
    | Bap  | 90    | £0.45 |

    ```python
    def proof(dough, hours=12):
        if hours < 8 and dough != "rye":
            return "<flat>"
        return dough
    ```

    > Bread is a morning thing.

    ![](steam.gif)

    See [footnotes](#notes).
    """
)


def page_of(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(html, create_parent="div")


def style_of(element: lxml.html.HtmlElement) -> dict[str, str]:
    """An inline style attribute as {property: value}, later declarations winning."""
    pairs = (d.split(":", 1) for d in (element.get("style") or "").split(";") if ":" in d)
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.fixture
def bakery():
    return email_body(markdown.render(BAKERY), BUNDLE_URL)


def test_relative_links_and_images_resolve_against_the_articles_own_url(bakery):
    page = page_of(bakery.html())
    assert page.xpath("//a/@href") == [
        "https://site.example/posts/mill-house/",
        "https://site.example/about#hours",
        "mailto:bread@site.example",
        "https://maps.example/bake?x=1&y=2",
        "https://site.example/posts/hello/farm.html",
        "https://site.example/posts/hello/#notes",
    ]
    # A page bundle's image, beside its index: the article's folder, not site.base_url.
    assert page.xpath("//img/@src") == [
        "https://site.example/posts/hello/cover.png",
        "https://site.example/posts/hello/steam.gif",
    ]


def test_a_url_without_a_trailing_slash_resolves_as_a_browser_on_that_page_would():
    body = email_body('<p><img src="cover.png" alt="c"></p>', "https://site.example/posts/hello")
    assert page_of(body.html()).xpath("//img/@src") == ["https://site.example/posts/cover.png"]


def test_images_fit_the_column_and_keep_their_alt_text(bakery):
    cover, steam = page_of(bakery.html()).xpath("//img")
    assert cover.get("alt") == "The bakery's front window at dawn"
    assert steam.get("alt") == ""  # no alt in the markdown: decorative, not the file name
    for image in (cover, steam):
        assert image.get("width") == str(IMAGE_WIDTH) == "544"  # what Outlook reads
        assert style_of(image)["max-width"] == "100%" and style_of(image)["height"] == "auto"
    narrow = email_body('<p><img src="a.png" alt="a" width="120"></p>', BUNDLE_URL)
    assert page_of(narrow.html()).xpath("//img/@width") == ["120"]  # a smaller width is kept


def test_code_blocks_are_monospace_wrap_and_keep_their_text_verbatim(bakery):
    page = page_of(bakery.html())
    (pre,) = page.xpath("//pre")
    assert "monospace" in style_of(pre)["font-family"]
    assert style_of(pre)["white-space"] == "pre-wrap" and "background-color" in style_of(pre)
    assert pre.text_content() == (
        'def proof(dough, hours=12):\n    if hours < 8 and dough != "rye":\n'
        '        return "<flat>"\n    return dough\n'
    )
    inline = page_of(email_body("<p>Run <code>make</code> twice</p>", BUNDLE_URL).html()).xpath("//code")
    assert "monospace" in style_of(inline[0])["font-family"] and "background-color" in style_of(inline[0])


def test_tables_get_borders_padding_and_keep_column_alignment(bakery):
    page = page_of(bakery.html())
    (table,) = page.xpath("//table")
    assert style_of(table)["border-collapse"] == "collapse"
    cells = table.xpath(".//th | .//td")
    assert len(cells) == 9
    for cell in cells:
        assert style_of(cell)["border"].startswith("1px solid") and style_of(cell)["padding"]
    assert [style_of(c)["text-align"] for c in table.xpath(".//tr[1]/th")] == ["left", "right", "center"]
    assert table.getparent().tag == "div" and style_of(table.getparent())["overflow-x"] == "auto"


def test_the_text_reads_like_the_article(bakery):
    text = bakery.text()
    assert text.startswith("The oven at the mill (https://site.example/posts/mill-house/) was lit at\nfour,")
    blocks = text.split("\n\n")
    assert "[The bakery's front window at dawn]" in blocks
    assert "Flour and water\n---------------" in blocks  # a heading on its own line
    assert (
        "- rye from the farm (https://site.example/posts/hello/farm.html)\n"
        "- spelt, stone-ground\n  - sieved twice"
    ) in blocks
    assert "1. mix\n2. rest" in blocks
    assert "Loaf | Grams | Price\nCob | 800 | £3.10\nBap | 90 | £0.45" in blocks
    assert (
        'def proof(dough, hours=12):\n    if hours < 8 and dough != "rye":\n'
        '        return "<flat>"\n    return dough'
    ) in blocks  # verbatim: indentation, < and > as written
    assert "> Bread is a morning thing." in blocks
    assert "See footnotes (https://site.example/posts/hello/#notes)." in blocks
    assert "steam" not in text  # an image without alt text is left out
    words = " ".join(text.split())  # wrapped at 72 columns, never inside a URL
    assert (
        "Write to the baker (mailto:bread@site.example) or see the map (https://maps.example/bake?x=1&y=2)."
        in words
    )
    assert all(len(line) <= 72 or "://" in line for line in text.splitlines() if not line.startswith(" "))


def test_the_body_splits_into_top_level_blocks_for_cutting(bakery):
    assert len(bakery.blocks) == 10
    first_two = page_of(bakery.html(2))
    assert first_two.xpath("//img/@src") == ["https://site.example/posts/hello/cover.png"]
    assert first_two.xpath("//h2") == []
    assert bakery.text(1) == bakery.blocks[0].text
    assert email_body("", BUNDLE_URL).blocks == () and email_body(" \n", BUNDLE_URL).html() == ""


INJECTED = [
    "<script>alert(1)</script>",
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body { display: none }</style>",
    '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf"></embed>',
    '<form action="https://evil.example/"><input name="pw"><button>Go</button></form>',
    '<svg onload="alert(2)"><circle r="4"/></svg>',
    '<math><mi xlink:href="javascript:alert(3)">x</mi></math>',
    '<p onclick="alert(4)" onmouseover="alert(5)" class="x" style="background:url(javascript:alert(6))">p</p>',
    '<a href="javascript:alert(7)">a</a>',
    '<a href=" JaVaScRiPt:alert(8)">b</a>',
    '<a href="&#106;avascript:alert(9)">c</a>',
    '<a href="java\tscript:alert(10)">d</a>',
    '<a href="vbscript:msgbox(11)">e</a>',
    '<img src="javascript:alert(12)" alt="bad image" onerror="alert(13)">',
    '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="data image">',
    '<base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<!--[if mso]><script>alert(14)</script><![endif]-->",
    '<div><noscript><img src="https://evil.example/t.gif"></noscript></div>',
    '<video src="https://evil.example/v.mp4" autoplay></video><audio src="a.mp3"></audio>',
    '<p><a href="https://ok.example/" onfocus="alert(15)" target="_blank" rel="opener">ok</a></p>',
    "<mj-raw><script>alert(16)</script></mj-raw><details open ontoggle=alert(17)>t</details>",
]


@pytest.mark.parametrize("snippet", INJECTED)
def test_nothing_active_survives_even_html_injected_into_the_body(snippet):
    body = email_body(f"<p>Before</p>{snippet}<p>After</p>", BUNDLE_URL)
    html = body.html()
    page = page_of(html)
    banned = "script iframe style object embed form input button svg math base meta link noscript video audio"
    for tag in banned.split():
        assert page.xpath(f"//{tag}") == [], tag
    assert page.xpath("//*[starts-with(local-name(), 'mj-')]") == []
    assert page.xpath("//@*[starts-with(name(), 'on')] | //@class | //@target | //@rel | //@data") == []
    for url in page.xpath("//@href | //@src"):
        assert url.startswith(("https://", "mailto:")), url
    for style in page.xpath("//@style"):
        assert "url(" not in style and "javascript" not in style.lower()
    assert "alert(" not in body.text() and "evil" not in body.text()
    assert body.text().startswith("Before") and body.text().endswith("After")


def test_text_from_a_broken_link_or_image_is_kept_as_text():
    body = email_body(
        '<p><a href="javascript:alert(1)">the recipe</a> and <img src="data:x" alt="a loaf"></p>', BUNDLE_URL
    )
    assert page_of(body.html()).xpath("//a | //img") == []
    assert body.text() == "the recipe and a loaf"


# Pieces of markup, hostile and ordinary, that the property below strings together at random.
PIECES = [
    "<p>",
    "</p>",
    "<p",
    ">",
    "<",
    "/>",
    " ",
    "\n",
    '"',
    "'",
    "=",
    " onclick=alert(1)",
    " style=x",
    "<a href=",
    "</a>",
    "javascript:alert(2)",
    " JaVa\tScRiPt:",
    "&#106;",
    "https://x.example/",
    "../up",
    "<img src=",
    " alt=",
    "data:x",
    "<script>",
    "</script>",
    "<iframe>",
    "<style>",
    "<svg",
    "<math>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<table><tr><td>",
    "</td></tr></table>",
    "<pre><code>",
    "</code></pre>",
    "<ul><li>",
    "</li></ul>",
    "<ol start=",
    "<h2>",
    "</h2>",
    "<br>",
    "<blockquote>",
    "<mj-raw>",
    "{{ 7*7 }}",
    "\x00",
    "\x07",
    "\u2028",
    "&amp;",
    "&",
    "<object>",
    "<form>",
    "<embed ",
    "<base href=",
    "<div>",
    "</div>",
]


@settings(
    max_examples=int(os.environ.get("SYNDICATE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=40))
@example(["<ul><li>", "</li></ul>"])  # an empty <li>: lxml's HTML serialiser leaves it open
@example(["<p", " ", "{{ 7*7 }}"])  # an attribute named `{{`: lxml cannot delete it by name
def test_any_markup_gives_an_inert_body_and_its_text_never_an_error(pieces):
    body = email_body("".join(pieces), BUNDLE_URL)
    body.text()
    html = body.html()
    if not html:
        return
    page = page_of(html)
    assert (
        page.xpath("//script | //iframe | //style | //svg | //math | //object | //form | //embed | //base")
        == []
    )
    assert page.xpath("//@*[starts-with(name(), 'on')] | //*[starts-with(local-name(), 'mj-')]") == []
    for url in page.xpath("//@href | //@src"):
        assert url.startswith(("https://", "mailto:")), url
    # Every tag closed, as MJML's parser needs (it takes an mj-text's content as written).
    mjml.mjml2html(
        f"<mjml><mj-body><mj-section><mj-column><mj-text>{html}</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
