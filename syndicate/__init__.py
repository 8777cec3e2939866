"""syndicate: articles in, email digests and social posts out, each sent exactly once.

Everything the CLI does is this importable, typed API (the CLI is a thin layer over it):
load the config and the articles, plan what is due, preview it, send it (the same path the
daemon's jobs take), read back what the ledger holds, and keep subscriber lists beside it
(`SubscriberStore`, `read_subscriber_file`, `write_subscribers`). Target types and social networks are
plugins (`syndicate.targets` / `syndicate.networks` entry points): see `deliver` and
`compose.networks`.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers see; at run time each name is imported when first used
    from .config import Config, load_config
    from .content import Article, Loaded, Problem, load_articles
    from .continuity import open_ledger
    from .daemon import Daemon, Runner
    from .deliver import (
        MailTargetSettings,
        Message,
        MessageKey,
        Result,
        Target,
        TargetSettings,
        make_target,
        target_types,
    )
    from .dispatch import Report, dispatch
    from .errors import (
        ConfigError,
        ContentError,
        DeliveryError,
        StateError,
        SyndicateError,
        TemplateError,
    )
    from .gallery import render_preview
    from .ledger import Ledger
    from .plan import Send, due_now, plan_articles, upcoming
    from .preview import preview, preview_table
    from .send import Outcome, send, send_planned, send_test
    from .status import Status, article_history, read_status, recipient_history
    from .subscriber_files import read_subscriber_file, write_subscribers
    from .subscribers import (
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

# Where each name of `__all__` lives (the imports above, for type checkers, say the same). Nothing
# is imported with the package: `import syndicate.config` or `syndicate --version` must not pay
# for the scheduler, the database and the email toolchain; `syndicate.X` imports X's module on
# first use (PEP 562).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "config": ("Config", "load_config"),
    "content": ("Article", "Loaded", "Problem", "load_articles"),
    "continuity": ("open_ledger",),
    "daemon": ("Daemon", "Runner"),
    "deliver": (
        "MailTargetSettings",
        "Message",
        "MessageKey",
        "Result",
        "Target",
        "TargetSettings",
        "make_target",
        "target_types",
    ),
    "dispatch": ("Report", "dispatch"),
    "errors": (
        "ConfigError",
        "ContentError",
        "DeliveryError",
        "StateError",
        "SyndicateError",
        "TemplateError",
    ),
    "gallery": ("render_preview",),
    "ledger": ("Ledger",),
    "plan": ("Send", "due_now", "plan_articles", "upcoming"),
    "preview": ("preview", "preview_table"),
    "send": ("Outcome", "send", "send_planned", "send_test"),
    "status": ("Status", "article_history", "read_status", "recipient_history"),
    "subscriber_files": ("read_subscriber_file", "write_subscribers"),
    "subscribers": (
        "ImportResult",
        "Subscriber",
        "SubscriberError",
        "SubscriberEvent",
        "SubscriberRow",
        "SubscriberStore",
    ),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is not None:
        value = getattr(import_module(f".{module}", __name__), name)
        globals()[name] = value  # once: later look-ups find it without coming here
        return value
    if not name.startswith("_"):  # a submodule (`syndicate.clock`), as when the package loaded them all
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(ModuleType):
    """`syndicate.send`, `.preview` and `.dispatch` are the API's functions, not the submodules
    of the same names: importing a submodule binds it on its package, over the function, so
    that binding is left out (`import_module("syndicate.send")` still gives the module)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in _HOME:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
