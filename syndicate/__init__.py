"""syndicate: articles in, email digests and social posts out, each sent exactly once.

The importable API is what the CLI uses: `load_config`, `load_articles`, and the composers,
planner and targets in their modules.
"""

from .config import Config, load_config
from .content import Article, Loaded, Problem, load_articles
from .errors import ConfigError, ContentError, DeliveryError, SyndicateError, TemplateError

__version__ = "0.1.0"

__all__ = [
    "Article",
    "Config",
    "ConfigError",
    "ContentError",
    "DeliveryError",
    "Loaded",
    "Problem",
    "SyndicateError",
    "TemplateError",
    "__version__",
    "load_articles",
    "load_config",
]
