"""Articles: markdown files with YAML (---) or TOML (+++) frontmatter, normalised.

One module per step: `frontmatter` splits a file, `fields` reads each field into its type,
`markdown` renders the body safely, `excerpt` makes its plain-text teaser, `load` walks a
folder and assembles the `Article`s and `Problem`s (`article`).
"""

from .article import Article, Loaded, Problem, Severity, display, identity
from .fields import slugify
from .load import MARKDOWN_SUFFIXES, ArticleCache, load_articles, read_article
from .markdown import IMAGE_SCHEMES, LINK_SCHEMES, url_scheme

__all__ = [
    "IMAGE_SCHEMES",
    "LINK_SCHEMES",
    "MARKDOWN_SUFFIXES",
    "Article",
    "ArticleCache",
    "Loaded",
    "Problem",
    "Severity",
    "display",
    "identity",
    "load_articles",
    "read_article",
    "slugify",
    "url_scheme",
]
