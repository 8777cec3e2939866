"""What static-site generators process before markdown, taken out so it never reaches a reader.

A Jekyll, Hugo, Eleventy, Zola or Astro body is not plain markdown: Liquid tags, shortcodes,
kramdown attribute lists, MDX imports and components are expanded by the site's generator before
(or instead of) markdown. syndicate renders the body itself, so left alone they would show up
verbatim in emails and posts (`{% include note.html %}` as text). These functions remove them
from the raw body, before the one markdown parse, keeping the text a reader would see and never
touching fenced code or inline code, where such syntax is what the article is showing.

Each is one scan of the body, trying its patterns only where a construct can start, with a fast
path: a body without the characters a construct needs is returned as it is, so plain markdown
costs a few `in` checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A fenced code block from the start of its opening line (``` or ~~~, up to the closing fence of
# the same character and at least the same length, or the end of the body when unclosed, as
# commonmark has it). A backtick fence's info string cannot hold a backtick, so "```code```" at
# a line start stays an inline code span.
_FENCE = re.compile(
    r"[ \t]*(?:"
    r"(?P<bt>`{3,})[^`\n]*$(?:[\s\S]*?^[ \t]*(?P=bt)`*[ \t]*$|[\s\S]*)"
    r"|(?P<tl>~{3,})[^\n]*$(?:[\s\S]*?^[ \t]*(?P=tl)~*[ \t]*$|[\s\S]*))",
    re.MULTILINE,
)
# An inline code span: a backtick run closed by a run of the same length, within one paragraph
# (which a blank line or a fence ends).
_CODE = r"(?P<code>(?<!`)(?P<ticks>`+)(?!`)(?:(?!\n[ \t]*(?:\n|```|~~~))[\s\S])*?(?<!`)(?P=ticks)(?!`))"
_FENCE_MARK = re.compile(r"```|~~~")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_FENCE_LINE = re.compile(r"\n[ \t]*(?:```|~~~)")
_RUN = re.compile(r"`+|~+")
# Text that does not cross a paragraph's end (a blank line or a fence): an unclosed `{{` must not
# swallow the paragraphs or the code after it.
_PARAGRAPH_END = r"\n[ \t]*(?:\n|```|~~~)"
_LINE = rf"(?:[^\n]|(?!{_PARAGRAPH_END})\n)"
_PARAGRAPH_ENDS = re.compile(_PARAGRAPH_END)


def _fence_end(body: str, at: int) -> int | None:
    """Where the fenced code block whose opening fence starts at `at` ends, or None when the
    backticks or tildes there do not open one (not first on their line, or fewer than three)."""
    line = body.rfind("\n", 0, at) + 1
    if line < at and body[line:at].strip(" \t"):
        return None
    match = _FENCE.match(body, line)
    return match.end() if match and (match.group("bt") or match.group("tl")) else None


def _fence_spans(body: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block; empty without a fence marker (the usual body)."""
    spans: list[tuple[int, int]] = []
    if "```" not in body and "~~~" not in body:
        return spans
    at = 0
    for mark in _FENCE_MARK.finditer(body):
        if mark.start() < at:
            continue
        end = _fence_end(body, mark.start())
        if end is not None:
            spans.append((mark.start(), end))
            at = end
    return spans


def _fence_for(code: str, language: str) -> str:
    """`code` as a fenced block, the fence longer than any backtick run inside it."""
    ticks = "`" * max([3, *(len(run) + 1 for run in re.findall(r"`+", code))])
    return f"\n{ticks}{language}\n{code.strip(chr(10))}\n{ticks}\n"


def _rewrite(
    body: str,
    trigger: re.Pattern[str],
    pattern: re.Pattern[str],
    replace: Callable[[re.Match[str], list[str]], tuple[str, int]],
    reach: dict[str, re.Pattern[str]] | None = None,
) -> str:
    """`body` with each match of `pattern` replaced by `replace(match, text before it)`, fenced
    code kept as it is.

    `pattern` is only tried where `trigger` finds a character a construct starts with: one
    quick scan for `{`, `<` or a backtick rather than a dozen alternatives tried at every
    position. `replace` returns the replacement and where the text it replaces ends (the
    match's end or further), and may trim the text already written (the space before a
    removed tag).

    `reach` keeps unclosed constructs from costing a scan each ("{{ " a thousand times): for
    an opener in it, a failed match means no later one can match before the next match of its
    pattern (a blank line, say) or the body's end, so those are not tried.
    """
    out: list[str] = []
    kept = at = 0
    dead: dict[str, int] = {}
    while (found := trigger.search(body, at)) is not None:
        start = found.start()
        char = body[start]
        if char in "`~" and body.startswith(char * 3, start):
            end = _fence_end(body, start)
            if end is not None:
                at = end
                continue
        opener = next((o for o in reach if body.startswith(o, start)), None) if reach else None
        if opener is not None and dead.get(opener, -1) > start:
            at = start + 1
            continue
        match = pattern.match(body, start)
        if match is None and opener is not None and reach is not None:
            horizon = reach[opener].search(body, start)
            dead[opener] = horizon.start() if horizon else len(body)
        if match is None or match.end() == start:
            # Inside a run of backticks or tildes nothing can start: skip it whole.
            at = _RUN.match(body, start).end() if char in "`~" else start + 1  # type: ignore[union-attr]
            continue
        out.append(body[kept:start])
        text, end = replace(match, out)
        out.append(text)
        kept = at = end
    if not out:
        return body
    out.append(body[kept:])
    return "".join(out)


# --- the excerpt separator --------------------------------------------------------------------

# `<!--more-->` in any spacing and case: Hugo, Jekyll (as a configured separator), Eleventy and
# Zola all recognise it as the end of the summary.
_MORE = re.compile(r"<!--\s*more\s*-->", re.IGNORECASE)


def split_excerpt(body: str, separator: str | None) -> str | None:
    """The body before its excerpt separator, or None when it has none.

    Recognised: `<!--more-->` (any spacing or case) and, when not None, the site's own
    separator (Jekyll's `excerpt_separator`), whichever comes first. A separator inside fenced
    code or an inline code span is an article *about* separators, not one, so it is skipped;
    so is one with only blank text before it (a body starting with the separator, or Jekyll's
    "\\n\\n" separator meeting the body's leading blank lines), which would give an empty
    excerpt rather than the fallback to the whole body.
    Call it on the raw body, before `strip_templating` (which removes HTML comments).
    """
    if "<!--" not in body and (not separator or separator not in body):
        return None
    fences: list[tuple[int, int]] | None = None
    candidates: list[tuple[int, int]] = [m.span() for m in _MORE.finditer(body)]
    if separator:
        at = body.find(separator)
        while at != -1:
            candidates.append((at, at + len(separator)))
            at = body.find(separator, at + 1)
    for start, end in sorted(candidates):
        if not body[:start].strip():
            continue
        if start > 0 and end < len(body) and body[start - 1] == "`" and body[end] == "`":
            continue
        if fences is None:
            fences = _fence_spans(body)
        if any(a <= start < b for a, b in fences):
            continue
        return body[:start]
    return None


# --- templating -------------------------------------------------------------------------------


def _tag(name: str) -> str:
    """A Liquid/Nunjucks tag `{% name ... %}`, whitespace control (`{%-`, `-%}`) included."""
    return rf"\{{%-?[ \t]*{name}\b[^%\n]*?-?%\}}"


_TEMPLATING = re.compile(
    "|".join(
        (
            _CODE,
            rf"(?P<comment>{_tag('comment')}[\s\S]*?{_tag('endcomment')})",
            rf"(?P<capture>{_tag('capture')}[\s\S]*?{_tag('endcapture')})",
            rf"(?P<raw>{_tag('raw')}(?P<rawbody>[\s\S]*?){_tag('endraw')})",
            r"(?P<highlight>\{%-?[ \t]*highlight[ \t]+(?P<lang>[\w+#.-]*)[^%\n]*?-?%\}"
            rf"(?P<hlbody>[\s\S]*?){_tag('endhighlight')})",
            r"(?P<schighlight>\{\{[<%][ \t]*highlight[ \t]+(?P<sclang>[\w+#.-]*)[^\n]*?[>%]\}\}"
            r"(?P<scbody>[\s\S]*?)\{\{[<%][ \t]*/[ \t]*highlight[ \t]*[>%]\}\})",
            rf"(?P<tag>\{{%{_LINE}*?%\}})",
            # Nunjucks and Tera (Eleventy, Zola) comments.
            r"(?P<hash>\{#[^{}]*#\})",
            # Hugo shortcodes, {{< x >}} and {{% x %}}; a paired one's inner text stays.
            rf"(?P<shortcode>\{{\{{[<%]{_LINE}*?[>%]\}}\}})",
            rf"(?P<output>\{{\{{{_LINE}*?\}}\}})",
            # An HTML comment, never across a fence (whose code it would take away).
            r"(?P<html_comment><!--(?:(?!\n[ \t]*(?:```|~~~))[\s\S])*?-->)",
            r"(?P<kramdown_comment>\{::comment\}[\s\S]*?\{:/(?:comment)?\})",
            # kramdown attribute lists ({: .lead}, {:toc}) and heading attributes ({#id},
            # {.class}) at a line's end or on a line of their own.
            r"(?P<attributes>\{(?P<toc>(?=:[ \t]*toc[ \t]*\}))?(?::|[#.][\w-])[^{}\n]*\}[ \t]*$)",
        )
    ),
    re.MULTILINE,
)
_TEMPLATING_START = re.compile(r"[{<`~]")
# Liquid tags and output end with their paragraph, an HTML comment before a fence.
_TEMPLATING_REACH = {"{{": _PARAGRAPH_ENDS, "{%": _PARAGRAPH_ENDS, "<!--": _FENCE_LINE}
# The list item kramdown replaces with the table of contents: "* TOC" on the line before {:toc}.
_TOC_ITEM = re.compile(r"^[ \t]*(?:[*+-]|\d+[.)])[ \t]+[^\n]*\n[ \t]*\Z", re.MULTILINE)
_PUNCTUATION = frozenset(",.;:!?)…\n")


def _templating(match: re.Match[str], out: list[str]) -> tuple[str, int]:
    kind = match.lastgroup
    end = match.end()
    if kind == "code":
        return match.group(), end
    if kind == "raw":
        return match.group("rawbody"), end
    if kind == "highlight":
        return _fence_for(match.group("hlbody"), match.group("lang")), end
    if kind == "schighlight":
        return _fence_for(match.group("scbody"), match.group("sclang")), end
    if kind == "attributes" and match.group("toc") is not None and out:
        out[-1] = _TOC_ITEM.sub("", out[-1])
    # Spaces before a construct in mid-line go when punctuation, a space or the line's end
    # follows: "by {{ site.author }}." gives "by." rather than "by .", "a {{ x }} b" "a b".
    after = match.string[end : end + 1]
    if out and (not after or after in _PUNCTUATION or after in " \t"):
        before = out[-1].rstrip(" \t")
        if before and before[-1] != "\n":
            out[-1] = before
    return "", end


def strip_templating(body: str) -> str:
    """The body without what a site generator expands before markdown.

    Removed: Liquid/Nunjucks tags (`{% include x %}`; a block's tags go and its text stays,
    so `{% raw %}` keeps what it protects), `{% comment %}` and `{% capture %}` blocks whole
    (neither is shown where it stands), Liquid output (`{{ site.author }}`), `{# comments #}`,
    Hugo shortcodes (`{{< figure >}}`, `{{% notice %}}`: a paired one keeps its inner text),
    HTML comments (`<!--more-->` too: split the excerpt off first), kramdown attribute lists
    (`{: .lead}`, and `{:toc}` with its "* TOC" line) and heading attributes (`{#id}`).
    `{% highlight x %}` and Hugo's `{{< highlight x >}}` become fenced code, which is what
    they render as. Fenced code and inline code spans are kept as they are: there this
    syntax is what the article shows.
    """
    if "{" not in body and "<!--" not in body:
        return body
    return _rewrite(body, _TEMPLATING_START, _TEMPLATING, _templating, _TEMPLATING_REACH)


# --- MDX ----------------------------------------------------------------------------------------

# A JSX expression, balanced to three levels: `{x}`, `data={{a: 1}}`, `style={{a: {b: 1}}}`.
_BRACES0 = r"\{[^{}]*\}"
_BRACES1 = rf"\{{(?:[^{{}}]|{_BRACES0})*\}}"
_BRACES = rf"\{{(?:[^{{}}]|{_BRACES1})*\}}"
_ATTRIBUTES = rf"""(?:[^<>{{}}"'`]|"[^"]*"|'[^']*'|{_BRACES})*"""
_MDX = re.compile(
    "|".join(
        (
            _CODE,
            # ESM: from a line's start (the newline before it is kept) to the blank line after it.
            r"\n(?P<esm>(?:import|export)[ \t]+\S[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*)",
            r"(?P<comment>\{/\*[^{}]*?\*/\})",
            # Components (<Callout>, <Chart />, <motion.div>), fragments and, as MDX reads every
            # tag as JSX, plain tags too; their text content stays.
            rf"(?P<jsx></?(?:[A-Za-z][\w.-]*(?=[\s/>]){_ATTRIBUTES})?/?>)",
            rf"(?P<expression>(?<!\\){_BRACES})",
        )
    ),
)
_MDX_START = re.compile(r"[{<`~]")
_MDX_START_ESM = re.compile(r"[{<`~\n]")


_STRINGS = re.compile(r""""[^"\n]*"|'[^'\n]*'|`[^`]*`""")


def _depth(code: str) -> int:
    """Brackets opened and not closed in a piece of an ESM statement, strings left out (a
    bracket in `from "a(b"` must not make the statement swallow the paragraphs after it)."""
    if "'" in code or '"' in code or "`" in code:
        code = _STRINGS.sub("", code)
    return sum(code.count(c) for c in "{[(") - sum(code.count(c) for c in "}])")


def _mdx(match: re.Match[str], out: list[str]) -> tuple[str, int]:
    kind = match.lastgroup
    end = match.end()
    if kind == "code":
        return match.group(), end
    if kind == "esm":
        body = match.string
        depth = _depth(match.group("esm"))
        while depth > 0 and end < len(body):
            blank = _BLANK_LINE.search(body, end + 1)
            more = blank.start() if blank else len(body)
            depth += _depth(body[end:more])
            end = more
        return "\n", end
    return "", end


def strip_mdx(body: str) -> str:
    """An `.mdx` body as markdown: ESM and JSX out, the text a reader sees kept.

    `import`/`export` statements go, each up to the blank line that ends it in MDX (further,
    when its brackets are still open: `export const meta = {` with a blank line inside).
    Component tags go and their content stays (`<Callout type="x">Text</Callout>` gives
    "Text"), self-closing ones and those with `{...}` attributes over several lines included;
    `{/* comments */}` and other `{expressions}` go, since only the site's build can evaluate
    them. MDX has no indented code blocks, so text indented inside components (`<Tab>` in
    `<Tabs>`) is moved left rather than becoming code. Fenced code and inline code spans are
    kept as they are. Call before `strip_templating`.
    """
    if "{" not in body and "<" not in body and "import" not in body and "export" not in body:
        return body
    if "import" in body or "export" in body:
        # ESM is looked for after each newline; one put first finds a statement on line one.
        text = _rewrite("\n" + body, _MDX_START_ESM, _MDX, _mdx)[1:]
    else:
        text = _rewrite(body, _MDX_START, _MDX, _mdx)
    if text is not body and ("\n    " in text or "\n\t" in text):
        text = _unindent(text)
    return text


_LIST_ITEM = re.compile(r"[ \t]*(?:[*+-]|\d{1,9}[.)])(?:[ \t]+|$)")


def _indent(line: str) -> int:
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def _unindent(text: str) -> str:
    """Lines that commonmark would read as indented code (four spaces in, after a blank line,
    outside a list item's content) moved left: MDX reads them as text. A fenced block moves
    with its opening line, so its closing fence still closes it."""
    fences = _fence_spans(text)
    lines = text.split("\n")
    out: list[str] = []
    offset = 0
    blank_before = True
    content: int | None = None  # where the text of the list item in force starts
    shift = 0  # what is taken off each line of a fenced block being moved
    fence_end = -1
    next_fence = 0  # the first fenced block not yet passed
    for line in lines:
        start = offset
        offset += len(line) + 1
        if start < fence_end:
            out.append(_dedent(line, shift))
            continue
        if not line.strip():
            blank_before = True
            out.append(line)
            continue
        indent = _indent(line)
        item = _LIST_ITEM.match(line)
        if blank_before and content is not None and indent < content and not item:
            content = None  # a paragraph left of the item's text ends the list
        keep = content if content is not None else 0
        take = indent - keep if blank_before and indent >= keep + 4 else 0
        while next_fence < len(fences) and fences[next_fence][0] < start:
            next_fence += 1
        fence = next_fence < len(fences) and fences[next_fence][0] < offset
        if fence:
            fence_end, shift = fences[next_fence][1], take
        moved = _dedent(line, take)
        if item and not fence:
            marker = _LIST_ITEM.match(moved)
            content = marker.end() if marker else None
        out.append(moved)
        blank_before = False
    return "\n".join(out)


def _dedent(line: str, width: int) -> str:
    """`line` with up to `width` columns of leading whitespace taken off."""
    taken = 0
    index = 0
    while index < len(line) and taken < width and line[index] in " \t":
        taken += 1 if line[index] == " " else 4 - taken % 4
        index += 1
    return line[index:]


# --- inline text ------------------------------------------------------------------------------

_INLINE = re.compile(
    "|".join(
        (
            r"(?P<code>(?<!`)(?P<ticks>`+)(?!`)(?P<codetext>.+?)(?<!`)(?P=ticks)(?!`))",
            r"!\[(?P<alt>[^\[\]]*)\]\([^()]*\)",
            r"\[(?P<linktext>[^\[\]]*)\](?:\([^()]*\)|\[[^\[\]]*\])",
            r"<(?P<autolink>(?:https?|mailto):[^<>\s]+)>",
            # Emphasis runs to the next delimiter of its kind, never further: one pass, however
            # many unmatched ones a field holds.
            r"(?P<strong>\*\*|__)(?=\S)(?P<strongtext>(?:(?!(?P=strong)).)+?)(?<=\S)(?P=strong)",
            r"\*(?=[^\s*])(?P<em>[^*]+?)(?<=[^\s*])\*",
            r"(?<![\w\\])_(?=[^\s_])(?P<em_>[^_]+?)(?<=[^\s_])_(?!\w)",
            r"\\(?P<escaped>[!-/:-@\[-`{-~])",
        )
    ),
    re.DOTALL,
)
_INLINE_MARKS = frozenset("[`*_<\\")


def _inline(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "code":
        text = match.group("codetext")
        return text[1:-1] if len(text) > 2 and text[0] == text[-1] == " " else text
    if kind in ("alt", "autolink", "escaped"):
        return match.group(kind)
    return _INLINE.sub(_inline, match.group(kind or 0))


def inline_text(text: str) -> str:
    """A frontmatter field's markdown as the plain text a reader would see.

    Titles and descriptions are often written in markdown (`'[Ann](https://a.example)'`,
    `` `code` ``, `**bold**`) but land in subject lines, preheaders and posts, where the marks
    would show. Links keep their text, images their alt text, emphasis and code their content;
    whitespace is collapsed. Anything else is the author's text, kept as written: `<b>` or
    `&amp;` in a title is shown as typed (escaped where it is HTML), never read as markup. Text
    with none of the characters ``[`*_<\\`` is returned as it is: most fields cost one scan.
    """
    if _INLINE_MARKS.isdisjoint(text):
        return " ".join(text.split())
    return " ".join(_INLINE.sub(_inline, text).split())
