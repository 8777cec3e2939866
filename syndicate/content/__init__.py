"""Articles: markdown files with YAML (---) or TOML (+++) frontmatter, normalised.

One module per step: `frontmatter` splits a file, `fields` reads each field into its type,
`markdown` renders the body safely, `excerpt` makes its plain-text teaser, `presets` holds each
site generator's conventions, `permalink` makes URLs, `files` picks which files are articles,
`read` makes one file an `Article`, `load` walks a folder and assembles the `Article`s and
`Problem`s (`article`).
"""

from .article import Article, Loaded, Problem, Severity, display, identity
from .fields import slugify
from .files import MARKDOWN_SUFFIXES
from .load import ArticleCache, load_articles
from .markdown import IMAGE_SCHEMES, LINK_SCHEMES, url_scheme
from .read import read_article

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
