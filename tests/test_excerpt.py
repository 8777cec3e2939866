"""The excerpt and the cleanup before it: what a site generator expands never reaches a reader,
block boundaries read as sentences, and code is never touched."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.compose.textlength import Shortener, graphemes, shorten
from syndicate.content.cleanup import inline_text, split_excerpt, strip_mdx, strip_templating
from syndicate.content.excerpt import excerpt_of
from syndicate.content.markdown import markdown


def excerpt(body: str, limit: int = 300) -> str:
    return excerpt_of(markdown.parse(body), limit)


def pipeline(body: str, separator: str | None = None, mdx: bool = False, limit: int = 300) -> str:
    """As load.py calls them: separator, MDX, templating, one parse, excerpt."""
    part = split_excerpt(body, separator)
    text = body if part is None else part
    if mdx:
        text = strip_mdx(text)
    return excerpt(strip_templating(text), limit)


# --- excerpt_of -------------------------------------------------------------------------------


def test_a_heading_ends_a_sentence():
    assert excerpt("## Highlights\n\nThe first paragraph") == "Highlights. The first paragraph."


def test_no_period_is_added_after_a_block_with_its_own_punctuation():
    body = '# Why tides?\n\nBecause: the moon.\n\n## Notes:\n\nWait for it…\n\n> She said "go."'
    assert excerpt(body) == 'Why tides? Because: the moon. Notes: Wait for it… She said "go."'


def test_no_space_before_a_comma_after_a_link():
    assert excerpt("Read the [docs](https://docs.example), then the rest.") == "Read the docs, then the rest."


def test_no_space_before_a_comma_or_full_stop_the_author_left():
    body = "See the [notes](/notes/) , then `make` , then the end . Use .NET ; voilà !"
    assert excerpt(body) == "See the notes, then make, then the end. Use .NET ; voilà !"


def test_list_items_blockquotes_and_table_cells_are_sentences():
    body = "- lanterns\n- ropes\n\n> Mind the step\n\n| Pier | Depth |\n|---|---|\n| North | 4 m |\n"
    assert excerpt(body) == "lanterns. ropes. Mind the step. Pier. Depth. North. 4 m."


def test_inline_code_is_kept_as_its_text_and_images_are_dropped():
    body = "Run `tide --now` first. See ![a chart of tides](chart.png), below."
    assert excerpt(body) == "Run tide --now first. See, below."


def test_code_blocks_and_html_blocks_are_skipped():
    body = "Before.\n\n```python\nprint('no')\n```\n\n    indented code\n\nAfter."
    assert excerpt(body) == "Before. After."


def test_raw_html_that_came_through_as_text_loses_its_tags_and_keeps_its_text():
    body = '<div class="note">\nA <span class="x">boxed</span> remark\n</div>'
    assert excerpt(body) == "A boxed remark."


def test_breaks_are_spaces():
    assert excerpt("one line\nanother  \nthird") == "one line another third."


def test_template_remnants_are_never_shown():
    body = "By {{ site.author }}, with {% include x.html %} and {: .lead} and <!-- hidden --> text"
    assert excerpt(body) == "By, with and and text."


def test_a_block_left_with_only_punctuation_is_dropped():
    assert (
        excerpt("Intro\n\n{{ site.tagline }}.\n\n![x](y.png)\n\n, {{ x }} then more") == "Intro. then more."
    )


def test_half_a_template_construct_is_never_shown():
    assert (
        excerpt("An {{ unclosed output and a stray %} and <!-- open")
        == "An unclosed output and a stray and open."
    )


def test_the_excerpt_is_cut_at_a_word_boundary():
    text = excerpt("The keeper climbed the stairs at dusk and wound the clock. " * 20, 60)
    assert text == shorten("The keeper climbed the stairs at dusk and wound the clock. " * 2, 60)
    assert text.endswith("…") and len(text) <= 60


def test_only_the_blocks_the_limit_needs_are_read():
    tokens = markdown.parse("First paragraph is long enough.\n\n" + "Later paragraph.\n\n" * 5)
    assert excerpt_of(tokens, 20) == "First paragraph is…"


@pytest.mark.parametrize("limit", [0, 1, 2, 5, 30])
def test_tiny_limits(limit):
    assert len(graphemes(excerpt("Word " * 40, limit))) <= limit


def test_non_ascii_text_is_cut_by_graphemes():
    body = "Tëst 👩‍👩‍👧 " * 60
    assert excerpt(body, 50) == shorten(" ".join(body.split()) + ".", 50)


def test_many_code_points_per_grapheme_still_get_an_ellipsis():
    word = "e\u0301" * 8  # é written as e + combining accent: two code points, one grapheme
    body = f"{word} {word}\n\n" * 30
    assert excerpt(body, 40) == shorten(" ".join(f"{word} {word}." for _ in range(30)), 40)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.sampled_from(list("ab ,.;:-")), max_size=120),
        st.text(alphabet=st.sampled_from(list("ab ,.-–é\u0301👍\u00a0🇬🇧")), max_size=120),
    ),
    st.integers(0, 80),
)
def test_the_quick_cut_agrees_with_shorten(text, limit):
    text = " ".join(text.split())
    assert shorten(text, limit) == Shortener(text)(limit)


# --- strip_templating -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Before.\n{% include note.html %}\nAfter.", "Before.\n\nAfter."),
        ("Written by {{ site.author }}.", "Written by."),
        ("Title: {{ page.title | upcase }} here", "Title: here"),
        ('Look:\n{{< figure src="x.png" >}}\nDone.', "Look:\n\nDone."),
        ("{{% notice %}}text{{% /notice %}}", "text"),
        ('{{< callout kind="tip" >}}\nA tip.\n{{< /callout >}}', "\nA tip.\n"),
        ("Shown <!-- a comment --> text", "Shown text"),
        ("A lead paragraph.\n{: .lead}\n\nNext.", "A lead paragraph.\n\n\nNext."),
        ("A lead paragraph. {: .lead}\nNext.", "A lead paragraph.\nNext."),
        ("## Harbour {#harbour}\n", "## Harbour\n"),
        ("Intro\n\n* TOC\n{:toc}\n\nBody", "Intro\n\n\n\nBody"),
        ("{% raw %}{{ kept }}{% endraw %}", "{{ kept }}"),
        ("A{% comment %}\nsecret {{ x }}\n{% endcomment %}B", "AB"),
        ("A{% capture note %}later{% endcapture %}B", "AB"),
        ("{%- if page.x -%}Shown{%- endif -%}", "Shown"),
        ("Tera {# a note #}text", "Tera text"),
    ],
)
def test_templating_is_removed(body, expected):
    assert strip_templating(body) == expected


def test_highlight_blocks_become_fenced_code():
    jekyll = "Code:\n{% highlight ruby linenos %}\nputs {{ 1 }}\n{% endhighlight %}\nEnd."
    assert strip_templating(jekyll) == "Code:\n\n```ruby\nputs {{ 1 }}\n```\n\nEnd."
    hugo = '{{< highlight go >}}\nfmt.Println("```")\n{{< /highlight >}}'
    assert strip_templating(hugo) == '\n````go\nfmt.Println("```")\n````\n'


def test_fenced_code_and_inline_code_are_untouched():
    body = (
        "Use `{{ site.title }}` or ``{% raw %}``.\n\n"
        "```liquid\n{% include note.html %}\n{{< figure >}}\n<!-- kept -->\n```\n\n"
        "~~~~\n{: .lead}\n~~~\nstill code {{ x }}\n~~~~\n"
        "After {{ gone }}."
    )
    expected = body.replace("After {{ gone }}.", "After.")
    assert strip_templating(body) == expected


def test_an_unclosed_fence_protects_the_rest():
    body = "Text {{ x }}\n```\n{{ y }}\n"
    assert strip_templating(body) == "Text\n```\n{{ y }}\n"


def test_an_unclosed_output_does_not_swallow_the_next_paragraph():
    assert strip_templating("An {{ open\n\nNext {{ x }} para") == "An {{ open\n\nNext para"


def test_a_stray_backtick_before_a_fence_does_not_swallow_it():
    body = "A stray ` tick\n```\n{{ code }} `\n```\nAfter {{ gone }}."
    assert strip_templating(body) == body.replace(" {{ gone }}", "")


def test_kramdown_extensions():
    body = 'Shown.\n{::comment}\nNot shown {{ x }}.\n{:/comment}\n{::options parse_block_html="true" /}\nEnd.'
    assert strip_templating(body) == "Shown.\n\n\nEnd."


@pytest.mark.parametrize(
    "piece",
    [
        "{{ ",
        "{% ",
        "{{< ",
        "{",
        "<!-- ",
        "`` x ` ",
        "<A ",
        "{/* ",
        "export const x = {\n\n",
        "a {{ b\n",
        '<A b="',
    ],
)
def test_unclosed_constructs_cost_one_scan_not_one_each(piece):
    body = piece * 20_000  # quadratic would take minutes
    started = time.perf_counter()
    strip_templating(body)
    strip_mdx(body)
    split_excerpt(body, "\n\n")
    pipeline(body[:20_000])
    assert time.perf_counter() - started < 5


def test_plain_markdown_is_returned_as_it_is():
    body = "# Plain\n\nNothing to do here, really: *none*.\n"
    assert strip_templating(body) is body
    assert strip_mdx(body) is body


# --- split_excerpt ----------------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["<!--more-->", "<!-- more -->", "<!--More-->", "<!--  MORE\t-->"])
def test_the_more_comment_splits(separator):
    assert split_excerpt(f"Summary here.\n\n{separator}\n\nThe rest.", None) == "Summary here.\n\n"


def test_the_site_separator_splits_too():
    assert split_excerpt("Short.\n<!--cut-->\nLong.", "<!--cut-->") == "Short.\n"
    assert split_excerpt("Para one.\n\nPara two.", "\n\n") == "Para one."
    assert split_excerpt("\n\nPara one.\n\nPara two.", "\n\n") == "\n\nPara one."


def test_the_first_separator_wins():
    assert split_excerpt("A ~~x~~ B <!--more--> C", "~~x~~") == "A "
    assert split_excerpt("A <!--more--> B ~~x~~ C", "~~x~~") == "A "


def test_without_a_separator_there_is_no_split():
    assert split_excerpt("Nothing here.", None) is None
    assert split_excerpt("Nothing <!-- else --> here.", "<!--cut-->") is None
    assert split_excerpt("<!--more-->\nAll of it.", None) is None  # nothing before it


def test_a_separator_in_code_is_not_one():
    body = "Hugo splits at `<!--more-->`.\n\n```\n<!--more-->\n```\n\nReal.\n<!--more-->\nRest."
    assert split_excerpt(body, None) == body[: body.index("Real.") + len("Real.\n")]


def test_the_separator_survives_until_the_split():
    body = "Teaser {{ site.x }}.\n<!-- more -->\nThe rest {% include y %}."
    assert pipeline(body) == "Teaser."
    assert strip_templating(body) == "Teaser.\n\nThe rest."


# --- strip_mdx --------------------------------------------------------------------------------

MDX = """import Chart from '../components/Chart'
import {
  Callout,
  Aside,
} from '../components'
export const meta = {
  title: 'Tides',

  tags: ['sea'],
}

# Tides {meta.title}

{/* a note for editors */}

<Callout type="warning">
The **spring tide** comes twice a month.
</Callout>

<Chart data={{ high: [1, 2], low: { a: 1 } }}
  label="tides" />

Text with <Aside>a side remark</Aside> and <>a fragment</>.

```jsx
import Chart from '../components/Chart'
<Callout type="x">kept</Callout>
```

Inline `<Chart />` and `{x}` stay.

export default function Layout({ children }) {
  return children
}
"""


def test_mdx_esm_and_components_go_and_their_text_stays():
    out = strip_mdx(MDX)
    assert "import" not in out.split("```")[0]
    assert "export" not in out.replace("```jsx", "").split("```")[-1]
    assert "tags:" not in out and "title: 'Tides'" not in out
    assert "# Tides \n" in out
    assert "The **spring tide** comes twice a month." in out
    assert "<Callout" not in out.split("```")[0] and "</Callout>" not in out.split("```")[0]
    assert "Chart data" not in out and "label=" not in out
    assert "Text with a side remark and a fragment." in out
    assert "editors" not in out


def test_mdx_code_is_untouched():
    out = strip_mdx(MDX)
    assert "```jsx\nimport Chart from '../components/Chart'\n<Callout type=\"x\">kept</Callout>\n```" in out
    assert "Inline `<Chart />` and `{x}` stay." in out


def test_mdx_excerpt():
    assert pipeline(MDX, mdx=True) == (
        "Tides. The spring tide comes twice a month. Text with a side remark and a fragment. "
        "Inline <Chart /> and {x} stay."
    )


def test_an_import_on_the_first_line_and_lowercase_tags():
    assert strip_mdx("import X from 'x'\n\nHi <b>there</b>.") == "\n\nHi there."


def test_a_bracket_in_an_import_string_does_not_swallow_the_text_after_it():
    assert strip_mdx("import a from './a(b'\n\nText.\n") == "\n\nText.\n"
    assert strip_mdx("export const f = () => {\n  a()\n\n  return ')'\n}\n\nText.") == "\n\nText."


def test_text_indented_inside_components_is_text_not_code():
    body = (
        '<Steps>\n  <Step title="one">\n\n    Climb the ladder.\n\n    ```sh\n    open hatch\n    ```\n\n'
        "  </Step>\n</Steps>\n\n- item\n\n      still the item's text\n"
    )
    out = strip_mdx(body)
    assert "\nClimb the ladder.\n" in out
    assert "\n```sh\nopen hatch\n```\n" in out
    assert "\n  still the item's text\n" in out
    assert pipeline(body, mdx=True) == "Climb the ladder. item. still the item's text."


def test_an_escaped_brace_is_text():
    assert strip_mdx("Sets like \\{a\\} stay.") == "Sets like \\{a\\} stay."


# --- inline_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[Ann](https://a.example)", "Ann"),
        ("Tips for `tide --now`", "Tips for tide --now"),
        ("**Bold** and _em_ and *also*", "Bold and em and also"),
        ("Fish &amp; chips &lt;3", "Fish &amp; chips &lt;3"),  # the author's text, as typed
        ("A  title\nover   lines & more", "A title over lines & more"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("<b>Tag</b> kept as text, ![logo](l.png) alt kept", "<b>Tag</b> kept as text, logo alt kept"),
        ("[**Strong link**][ref]", "Strong link"),
        ("`**not bold**`", "**not bold**"),
        ("\\*literal\\*", "*literal*"),
        ("**a " * 500, "**a " * 499 + "**a"),
        ("See <https://a.example>", "See https://a.example"),
    ],
)
def test_inline_text(text, expected):
    assert inline_text(text) == expected


def test_inline_text_without_markdown_is_returned_as_it_is():
    title = "A plain title: no marks at all"
    assert inline_text(title) == title


# --- properties -------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "word",
        "Tide",
        " ",
        "\n",
        "\n\n",
        ",",
        ".",
        "## ",
        "- ",
        "> ",
        "{% include x.html %}",
        "{{ site.author }}",
        "{{< figure src=x >}}",
        "{{% notice %}}",
        "{{% /notice %}}",
        "<!-- c -->",
        "<!--more-->",
        "{: .lead}",
        "{:toc}",
        "{",
        "}",
        "%",
        "<",
        ">",
        "!",
        "-",
        "#",
        "<div>",
        "[link](x)",
        "![img](y)",
        "\n```\ncode {{ x }}\n```\n",
        "é",
        "👍",
    ]
)
_BODIES = st.lists(_PIECES, max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(_BODIES, st.integers(1, 120), st.booleans())
def test_the_excerpt_is_short_and_clean(body, limit, mdx):
    text = pipeline(body, mdx=mdx, limit=limit)
    assert len(graphemes(text)) <= limit
    for remnant in ("{%", "{{", "<!--", "%}", "}}", "-->"):
        assert remnant not in text


@settings(max_examples=200, deadline=None)
@given(_BODIES)
def test_fenced_code_survives_cleanup(body):
    fence = "```\n{% raw %} {{ x }} <!-- y --> <Z a={b} />\nimport q from 'q'\n```"
    assert fence in strip_templating(f"{body}\n\n{fence}\n")
    assert fence in strip_mdx(f"{body}\n\n{fence}\n")
