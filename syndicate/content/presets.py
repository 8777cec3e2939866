"""What each static-site generator means by its frontmatter and folders, in one place.

A preset (`content.preset`) reads a site as its generator does: which fields are the publish
date, the image, the author; which files are posts and which are section pages or drafts; what
URL a post gets when it names none. Each is taken from the generator's own documentation:

- Jekyll: posts are `_posts/YYYY-MM-DD-title.md`; `date`, `published: false`, `excerpt`,
  `excerpt_separator`, `image` (text or `{path: ...}` as jekyll-seo-tag reads it),
  `last_modified_at`; the default permalink style `date`:
  `/:categories/:year/:month/:day/:title:output_ext`.
- Hugo: `date`, with `publishDate` winning over it; `expiryDate`, `lastmod`, `summary`, `images`
  (a list), `authors`, PaperMod's `cover: {image: ...}`; `_index.md` are section pages; a page
  bundle is `post/index.md`; the URL is the file's path under `content/`, its last part the slug.
- Astro (the blog template's collection): `pubDate`, `updatedDate`, `heroImage`; dates such as
  `Jul 08 2022`; posts at `/blog/<id>/`.
- Eleventy: `date` or a dated file name, a `permalink` of its own (`false`: no page), the URL
  the input path minus its extension.
- Zola: TOML `+++` frontmatter, `date`, `updated`, `draft`, `slug`, `path`, `authors` and an
  `[extra]` table; `_index.md` sections, `post/index.md` bundles, URL `/<section>/<slug>/`.
- Next.js (the blog-starter): `_posts/<slug>.md` with `date`, `excerpt`, `coverImage`,
  `author: {name, picture}`, `ogImage: {url}`; posts at `/posts/<slug>`.

The user's own `content.aliases` come first; a preset's aliases are tried in order, the first
field present winning, so Hugo's `publishDate` beats its `date`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Aliases every load knows, preset or not: (field in the file, field syndicate reads).
DEFAULT_ALIASES: tuple[tuple[str, str], ...] = (
    ("date", "publish_date"),
    ("image", "heroImage"),
    ("cover", "heroImage"),
    ("authors", "author"),
    ("expiryDate", "expiry_date"),
    ("lastmod", "updated_date"),
    ("updatedDate", "updated_date"),
)
# Files that are never articles, under any preset (globs against the path in the content folder).
ALWAYS_SKIPPED: tuple[str, ...] = ("README.*", "**/README.*", "CHANGELOG.*", "LICENSE*", "node_modules/**")
DEFAULT_PERMALINK = ":slug"


@dataclass(frozen=True)
class Preset:
    """How one generator lays out a site: see the module docstring for the sources."""

    name: str
    aliases: tuple[tuple[str, str], ...]
    permalink: str
    exclude: tuple[str, ...] = ()
    # Section and list pages (Hugo's, Zola's `_index.md`): not articles, skipped without an error.
    section_pages: tuple[str, ...] = ("_index.md", "_index.markdown")
    # A file with no date at all is a page (about, contact), not a post: skipped, counted.
    skip_undated: bool = True
    # The generator runs a template language over the body before markdown (Liquid, shortcodes,
    # Nunjucks, Tera): its tags are taken out (content/cleanup.py).
    templating: bool = True


PRESETS: dict[str, Preset] = {
    "jekyll": Preset(
        "jekyll",
        (
            ("date", "publish_date"),
            ("last_modified_at", "updated_date"),
            ("image", "heroImage"),
        ),
        "/:categories/:year/:month/:day/:title:output_ext",
        exclude=("_drafts/**", "_site/**", "vendor/**", ".jekyll-cache/**"),
    ),
    "hugo": Preset(
        "hugo",
        (
            ("publishDate", "publish_date"),
            ("pubdate", "publish_date"),
            ("date", "publish_date"),
            ("expiryDate", "expiry_date"),
            ("unpublishdate", "expiry_date"),
            ("lastmod", "updated_date"),
            ("summary", "description"),
            ("images", "heroImage"),
            ("cover", "heroImage"),
            ("featured_image", "heroImage"),
            ("authors", "author"),
        ),
        "/:path/",
        exclude=("public/**", "resources/**"),
    ),
    "astro": Preset(
        "astro",
        (
            ("pubDate", "publish_date"),
            ("date", "publish_date"),
            ("updatedDate", "updated_date"),
            ("image", "heroImage"),
            ("cover", "heroImage"),
            ("authors", "author"),
        ),
        "/blog/:path/",
        exclude=("dist/**",),
        templating=False,
    ),
    "eleventy": Preset(
        "eleventy",
        (
            ("date", "publish_date"),
            ("image", "heroImage"),
            ("cover", "heroImage"),
            ("authors", "author"),
        ),
        "/:path/",
        exclude=("_site/**", "_includes/**", "_data/**", "_layouts/**"),
    ),
    "zola": Preset(
        "zola",
        (
            ("date", "publish_date"),
            ("updated", "updated_date"),
            ("authors", "author"),
            ("extra.author", "author"),
            ("extra.image", "heroImage"),
            ("extra.cover", "heroImage"),
            ("extra.cta", "cta"),
            ("extra.subtitle", "subtitle"),
        ),
        "/:path/",
        exclude=("public/**",),
    ),
    "nextjs": Preset(
        "nextjs",
        (
            ("date", "publish_date"),
            ("excerpt", "description"),
            ("coverImage", "heroImage"),
            ("ogImage", "heroImage"),
            ("authors", "author"),
        ),
        "/posts/:slug",
        exclude=(".next/**", "out/**"),
        templating=False,
    ),
}


def preset(name: str | None) -> Preset | None:
    """The named preset (config validation has checked the name), or None for none."""
    return PRESETS[name] if name else None
