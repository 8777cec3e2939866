"""syndicate: articles in, email digests and social posts out, each sent exactly once.

Everything the CLI does is this importable, typed API (the CLI is a thin layer over it):
load the config and the articles, plan what is due, preview it, send it (the same path the
daemon's jobs take), read back what the ledger holds, and keep subscriber lists beside it
(`SubscriberStore`, `read_subscriber_file`, `write_subscribers`). Target types and social networks are
plugins (`syndicate.targets` / `syndicate.networks` entry points): see `deliver` and
`compose.networks`.
"""

__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402  (after __version__: submodules read it)
from .content import Article, Loaded, Problem, load_articles  # noqa: E402
from .continuity import open_ledger  # noqa: E402
from .daemon import Daemon, Runner  # noqa: E402
from .deliver import (  # noqa: E402
    MailTargetSettings,
    Message,
    MessageKey,
    Result,
    Target,
    TargetSettings,
    make_target,
    target_types,
)
from .dispatch import Report, dispatch  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    ContentError,
    DeliveryError,
    StateError,
    SyndicateError,
    TemplateError,
)
from .gallery import render_preview  # noqa: E402
from .ledger import Ledger  # noqa: E402
from .plan import Send, due_now, plan_articles, upcoming  # noqa: E402
from .preview import preview, preview_table  # noqa: E402
from .send import Outcome, send, send_planned, send_test  # noqa: E402
from .status import Status, article_history, read_status, recipient_history  # noqa: E402
from .subscriber_files import read_subscriber_file, write_subscribers  # noqa: E402
from .subscribers import (  # noqa: E402
    ImportResult,
    Subscriber,
    SubscriberError,
    SubscriberEvent,
    SubscriberRow,
    SubscriberStore,
)

__all__ = [
    "Article",
    "Config",
    "ConfigError",
    "ContentError",
    "Daemon",
    "DeliveryError",
    "ImportResult",
    "Ledger",
    "Loaded",
    "MailTargetSettings",
    "Message",
    "MessageKey",
    "Outcome",
    "Problem",
    "Report",
    "Result",
    "Runner",
    "Send",
    "StateError",
    "Status",
    "Subscriber",
    "SubscriberError",
    "SubscriberEvent",
    "SubscriberRow",
    "SubscriberStore",
    "SyndicateError",
    "Target",
    "TargetSettings",
    "TemplateError",
    "__version__",
    "article_history",
    "dispatch",
    "due_now",
    "load_articles",
    "load_config",
    "make_target",
    "open_ledger",
    "plan_articles",
    "preview",
    "preview_table",
    "read_status",
    "read_subscriber_file",
    "recipient_history",
    "render_preview",
    "send",
    "send_planned",
    "send_test",
    "target_types",
    "upcoming",
    "write_subscribers",
]
