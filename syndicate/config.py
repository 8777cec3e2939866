"""config.yaml: one typed, validated object, paths resolved against the config file's folder.

Every mistake becomes a one-line `ConfigError` naming the key's path, e.g.
`config.yaml: channels.weekly.schedule.at: '25:00' is not a time (expected HH:MM)`.
Secrets are written as `${ENV_VAR}`; error messages quote the text as written in the file,
so an interpolated secret never reaches a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import time, timedelta
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from .config_path import CONFIG_ENV, DEFAULT_CONFIG
from .deliver import TargetSettings, target_types
from .errors import ConfigError
from .language import check_tag
from .validation import Strict, check_http_url, is_loopback, parse_time, short
from .yaml_shape import shape_problem

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
REPO_TEMPLATES = Path(__file__).parent.parent / "templates"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Interpolated values this long are searched for in error messages (shorter ones would garble them).
MIN_HIDDEN_CHARS = 4
# The longest catch-up window: ten years (a larger number would overflow the arithmetic).
CATCH_UP_MAX_DAYS = 3650
# Values a config may hold, YAML aliases counted (inline recipient lists included).
CONFIG_MAX_VALUES = 1_000_000


def default_templates_dir() -> Path:
    """Templates shipped in the wheel, or the repository's own in a source checkout."""
    return PACKAGE_TEMPLATES if PACKAGE_TEMPLATES.is_dir() else REPO_TEMPLATES


class Site(Strict):
    name: str
    base_url: str
    timezone: str = "UTC"
    sender: str
    postal_address: str
    logo: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    # Signs per-recipient unsubscribe tokens; normally ${UNSUBSCRIBE_SECRET}.
    unsubscribe_secret: SecretStr | None = None
    # Where the preview's .html files are published: "view in browser" links point there.
    archive_url: str | None = None
    # The call to action used where an article has none, and where calls to action point when an
    # article gives no cta_url of its own (default: the article).
    cta: str | None = None
    cta_url: str | None = None
    # Web fonts for emails, name -> CSS URL, linked (never fetched) by the rendered HTML.
    fonts: dict[str, str] = Field(default_factory=dict)
    # The envelope sender (SMTP MAIL FROM): where bounces go, instead of the visible From mailbox.
    # With `verp`, each reader's messages bounce to `local+<subscriber id>@domain`, which names
    # the reader even when a bounce report does not.
    return_path: str | None = None
    verp: bool = False
    # The line above each email's articles: a template of the reader's fields (personal.py),
    # rendered per reader. Unset: the template email/greeting.txt.j2, in site.language.
    greeting: str | None = None
    # The emails' language (BCP 47, like en or ar): `<html lang dir>`; unset, they say "und"
    # (undetermined). An article's `lang` wins for its own words.
    language: str | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else check_tag(value)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = check_http_url(value)
        return value if value.endswith("/") else value + "/"

    @field_validator("logo", "unsubscribe_url", "archive_url", "cta_url")
    @classmethod
    def _optional_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("return_path")
    @classmethod
    def _return_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, address = parseaddr(value)
        if address != value.strip() or "@" not in address or any(c in value for c in "\r\n<>"):
            raise ValueError(
                f"{short(value)} is not an email address (expected one like bounces@example.com)"
            )
        return address

    @field_validator("fonts")
    @classmethod
    def _fonts(cls, value: dict[str, str]) -> dict[str, str]:
        for url in value.values():
            check_http_url(url)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{short(value)} is not a time zone (expected an IANA name like Europe/London)"
            ) from None
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError(f'{short(value)} is not an email address (expected "Name <news@example.com>")')
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class Feed(Strict):
    """`content.feed`: an RSS 2.0, Atom or JSON Feed read as articles (`content/feed.py`), from
    an http(s) URL or a local file (relative to the config's folder). A plain string is the url."""

    url: str
    timeout_seconds: float = Field(default=10, gt=0, le=600)
    max_bytes: int = Field(default=10_000_000, gt=0, le=1_000_000_000)

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError(f"{short(value)} is not a feed (expected an http(s) URL or a file path)")
        if _SCHEME.match(value) and not value.lower().startswith(("http://", "https://")):
            raise ValueError(f"{short(value)} is not allowed (expected an http(s) URL or a local file path)")
        return check_http_url(value) if _SCHEME.match(value) else value

    @property
    def is_url(self) -> bool:
        return _SCHEME.match(self.url) is not None


class Content(Strict):
    dir: Path = Path("content")
    feed: Feed | None = None
    aliases: dict[str, str] = Field(default_factory=dict)
    # A static-site generator's conventions (content/presets.py): field aliases, which files are
    # posts, the default permalink.
    preset: Literal["jekyll", "hugo", "astro", "eleventy", "zola", "nextjs"] | None = None
    # Where an article lives, relative to site.base_url: `/news/:year/:month/:slug/` (content/permalink.py).
    permalink: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    # Where an excerpt ends, besides <!--more-->: Jekyll's site-wide `excerpt_separator`.
    excerpt_separator: str | None = None
    default_time: time = time(0, 0)
    max_bytes: int = Field(default=2_000_000, gt=0, le=1_000_000_000)
    words_per_minute: int = Field(default=220, gt=0, le=10_000)
    # What a mail client shows of the preheader beside the subject: about 140 characters at most
    # (iOS and Apple Mail, two lines; Gmail fewer after a long subject). Longer is cut, and warned.
    preheader_chars: int = Field(default=140, gt=10, le=1000)

    _time = field_validator("default_time", mode="before")(lambda v: parse_time(v))

    @field_validator("permalink")
    @classmethod
    def _permalink(cls, value: str | None) -> str | None:
        from .content.permalink import TOKENS, unknown_tokens  # content imports config: import when used

        if value is None:
            return None
        unknown = unknown_tokens(value)
        if unknown:
            raise ValueError(
                f"{short(value)} has unknown token(s) {', '.join(':' + u for u in unknown)} "
                f"(expected {', '.join(':' + t for t in TOKENS)})"
            )
        if "://" in value or any(c.isspace() for c in value):
            raise ValueError(f"{short(value)} is not a path pattern (expected like /news/:year/:slug/)")
        return value


class DigestSchedule(Strict):
    every: Literal["day", "week"] = "week"
    weekday: str = "mon"
    at: time = time(8, 0)

    _time = field_validator("at", mode="before")(lambda v: parse_time(v))

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        day = str(value).strip().lower()[:3]
        if day not in _WEEKDAYS:
            raise ValueError(f"{short(value)} is not a weekday (expected one of mon..sun)")
        return day


class Utm(Strict):
    source: str = "newsletter"
    medium: str = "email"
    campaign: str | None = None


class ArticleSegment(Strict):
    """`articles: {tags: [product]}`: a channel that carries only some articles (a segment):
    those with at least one of these tags (case ignored). Empty: every article."""

    tags: list[str] = Field(default_factory=list)

    def accepts(self, tags: Iterable[str]) -> bool:
        if not self.tags:
            return True
        wanted = {t.casefold() for t in self.tags}
        return any(t.casefold() in wanted for t in tags)


# RFC 2919 section 2: a dot-atom with at least one dot, at most 255 characters in all.
_LIST_ID = re.compile(r"(?=.{3,255}$)[a-z0-9_-]+(\.[a-z0-9_-]+)+")


class EmailChannel(Strict):
    kind: Literal["email"]
    mode: Literal["single", "digest"] = "digest"
    schedule: DigestSchedule = Field(default_factory=DigestSchedule)
    subject: str | None = None
    max_articles: int = Field(default=20, gt=0, le=1000)
    template: str | None = None
    utm: Utm | None = None
    clip_limit: int = Field(default=100_000, gt=1000, le=100_000_000)
    # What a single email carries of the article: its teaser (description or excerpt) with a link,
    # or the whole body made email-safe (compose.article_html). Digests carry teasers only.
    body: Literal["teaser", "full"] = "teaser"
    articles: ArticleSegment = Field(default_factory=ArticleSegment)
    # RFC 2919's list identifier in each email's List-Id header (default: <channel>.<sender's domain>).
    list_id: str | None = None
    targets: list[str] = Field(min_length=1)

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().strip("<>").lower()
        if not _LIST_ID.fullmatch(value):
            raise ValueError(
                f"{short(value)} is not a list id (expected a dotted name like weekly.example.com)"
            )
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str, info: ValidationInfo) -> str:
        if value == "full" and info.data.get("mode") == "digest":
            raise ValueError(
                "'full' is not allowed for a digest (expected body: teaser, or mode: single "
                "to send each article whole)"
            )
        return value


class SocialChannel(Strict):
    kind: Literal["social"]
    network: str = "linkedin"
    at: Literal["publish"] = "publish"
    hashtags: list[str] = Field(default_factory=list)
    max_hashtags: int | None = Field(default=None, ge=0, le=30)
    template: str | None = None
    articles: ArticleSegment = Field(default_factory=ArticleSegment)
    targets: list[str] = Field(min_length=1)
    # A post too long for one becomes a thread of replies (compose/thread.py) instead of being
    # shortened; an article's own `thread:` overrides it. Only on networks that have threads.
    thread: bool = False

    @model_validator(mode="after")
    def _thread_network(self) -> SocialChannel:
        from .compose.networks import network, network_names  # compose imports config

        if self.thread and not network(self.network).replies:
            can = [n for n in network_names() if network(n).replies]
            raise ValueError(
                f"thread: {self.network} posts cannot go on as a thread (expected false, or a network "
                f"with threads: {', '.join(can)})"
            )
        return self

    @field_validator("network")
    @classmethod
    def _network(cls, value: str) -> str:
        """Networks are plugins (compose.networks), so the allowed names are the installed ones."""
        from .compose.networks import network_names  # compose imports config: import when used

        names = network_names()
        if value not in names:
            raise ValueError(f"{short(value)} is not allowed (expected {', '.join(map(repr, names))})")
        return value


Channel = Annotated[EmailChannel | SocialChannel, Field(discriminator="kind")]


class Serve(Strict):
    """`serve:` the readers' web service (`syndicate serve`, serve/): subscribe with double
    opt-in, one-click unsubscribe, the web archive and the bounce webhooks."""

    # Where readers reach it, through the reverse proxy: links in emails start with it.
    public_url: str
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, lt=65536)
    # Lists the subscribe form offers (the first is the default); each must exist in the store.
    lists: list[str] = Field(default_factory=list)
    # The smtp (or outbox) target that mails confirmation requests.
    confirm_target: str | None = None
    confirm_hours: int = Field(default=48, gt=0, le=24 * 30)
    # Subscribe requests allowed per address and per client IP in an hour.
    rate_per_hour: int = Field(default=5, gt=0, le=100_000)
    # Proxy addresses whose X-Forwarded-For is believed (the reverse proxy in front).
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # ESP event webhooks, by provider (ses, postmark, mailgun, sendgrid): each one's settings.
    webhooks: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = check_http_url(value)
        parts = urlsplit(value)
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            # Mailbox providers POST one-click unsubscribes only to https (RFC 8058 section 3.1).
            raise ValueError(f"{short(value)} is plain http (expected https://, or http:// to loopback)")
        return value if value.endswith("/") else value + "/"

    @field_validator("webhooks")
    @classmethod
    def _webhooks(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from .webhooks import check_settings  # the providers' models import config: when used

        for provider, settings in value.items():
            try:
                check_settings(provider, settings)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("serve.webhooks.")) from None
        return value


class Bounces(Strict):
    """The bounce mailbox: where DSNs, ARF complaints and mailed unsubscribes arrive (the
    return_path's mailbox), which `syndicate daemon` reads every `every_seconds` and
    `syndicate bounces read` reads without an argument (intake.py)."""

    # A Maildir folder, an mbox file, or imaps://user@host/INBOX.
    mailbox: str
    # For an mbox: the file remembering which messages were read.
    state: Path | None = None
    # For imaps://: the environment variable holding the password (never the password itself).
    password_env: str | None = None
    ca_file: Path | None = None
    every_seconds: float = Field(default=300, ge=0.05, le=86_400)


class ScheduleSettings(Strict):
    catch_up: str = "skip"
    unknown: Literal["skip", "resend"] = "skip"
    jobstore_url: str | None = None
    rescan_seconds: float = Field(default=30, ge=0.05, le=86_400)

    @property
    def catch_up_window(self) -> timedelta | None:
        """How late a missed send may still go out: 0 for `skip`, None (no limit) for `send`."""
        if self.catch_up == "send":
            return None
        if self.catch_up == "skip":
            return timedelta(0)
        unit = {"m": "minutes", "h": "hours", "d": "days"}[self.catch_up[-1]]
        return timedelta(**{unit: int(self.catch_up[:-1])})

    @field_validator("catch_up")
    @classmethod
    def _catch_up(cls, value: str) -> str:
        if value in ("skip", "send"):
            return value
        if re.fullmatch(r"\d{1,9}[mhd]", value):
            minutes = int(value[:-1]) * {"m": 1, "h": 60, "d": 1440}[value[-1]]
            if 0 < minutes <= CATCH_UP_MAX_DAYS * 1440:
                return value
            raise ValueError(
                f"{short(value)} is not a catch-up window (expected one from 1m to {CATCH_UP_MAX_DAYS}d)"
            )
        raise ValueError(f"{short(value)} is not a catch-up policy (expected skip, send or a window like 2d)")


class Workers(Strict):
    """Sends split into shards on a task queue (procrastinate, in the ledger's PostgreSQL) that
    `syndicate worker` processes take, on as many machines as needed; the daemon only enqueues.
    Absent: the daemon sends itself, in one process (the default)."""

    # Readers per shard: a keyset range of the subscriber store. A CSV list is one shard.
    shard_size: int = Field(default=1000, ge=10, le=1_000_000)
    # The queue's name: workers of another publication on the same database take other queues.
    queue: str = Field(default="syndicate", pattern=r"^[A-Za-z0-9_.-]{1,60}$")
    # A worker that has not said it is alive for this long is dead: its shard is handed to
    # another worker. Its heartbeat comes every third of this.
    stalled_seconds: float = Field(default=30, ge=1, le=3600)
    # How long a claimed message of a worker on another machine stays its own (whether that
    # process lives cannot be seen from here): past it, the claim is taken to have ended. It
    # must outlast one message's SMTP or HTTP exchange, timeouts included.
    lease_seconds: float = Field(default=600, ge=10, le=86_400)
    # How often a standby daemon asks whether the leader is gone.
    standby_poll_seconds: float = Field(default=5, ge=0.05, le=3600)


def _mismatch(name: str, channel: EmailChannel | SocialChannel, target: TargetSettings) -> str | None:
    """Why a target cannot deliver what a channel makes, or None: each target type says what it
    carries, and the message names the types that would."""
    network = channel.network if isinstance(channel, SocialChannel) else None
    if not target.accepts(network):
        fits = sorted(kind for kind, model in target_types().items() if model.accepts(network))
        drafts = "email" if network is None else f"{network} posts"
        return f"is {target.what} (expected a target that takes {drafts}, of type: {', '.join(fits)})"
    return target.missing(name, network)


class Config(Strict):
    """The whole config. `root` is the folder relative paths were resolved against."""

    site: Site
    content: Content = Field(default_factory=Content)
    templates: Path | None = None
    state_dir: Path = Path(".syndicate")
    database_url: str | None = None
    channels: dict[str, Channel] = Field(default_factory=dict)
    # Each value is the settings model of its `type` (deliver/<type>.py), found through the
    # `syndicate.targets` entry points: `config_model()` validates each as its type's model.
    targets: dict[str, TargetSettings] = Field(default_factory=dict)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    serve: Serve | None = None
    bounces: Bounces | None = None
    workers: Workers | None = None
    root: Path = Path(".")
    # Lines about things that load but are probably not what was meant (a `$VAR` without braces).
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return self._warnings

    @model_validator(mode="after")
    def _targets_exist(self) -> Config:
        for name, channel in self.channels.items():
            for target in channel.targets:
                if target not in self.targets:
                    known = ", ".join(sorted(self.targets)) or "none defined"
                    raise ValueError(
                        f"channels.{name}.targets: {target!r} is not a target (expected one of: {known})"
                    )
                problem = _mismatch(target, channel, self.targets[target])
                if problem:
                    raise ValueError(f"channels.{name}.targets: {target!r} {problem}")
        for name, settings in self.targets.items():
            if settings.mails_readers and not unsubscribe_configured(self):
                # RFC 8058 and the Gmail/Yahoo bulk-sender rules: no email without a working unsubscribe.
                raise ValueError(
                    f"targets.{name}: its emails would carry no way to unsubscribe (expected "
                    "serve.public_url, for syndicate serve to answer, site.unsubscribe_url or "
                    "site.unsubscribe_mailto)"
                )
        if self.workers is not None and not is_postgresql(self.database_url):
            raise ValueError(
                "workers: the queue lives in the ledger's database (expected database_url: "
                "postgresql+psycopg://... beside workers)"
            )
        return self

    @property
    def templates_dir(self) -> Path:
        return self.templates if self.templates is not None else default_templates_dir()


def is_postgresql(url: str | None) -> bool:
    """Whether a database URL names PostgreSQL (any SQLAlchemy driver of it)."""
    return bool(url) and str(url).split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def unsubscribe_configured(config: Config) -> bool:
    """Whether emails can carry a link that unsubscribes: served by syndicate, the user's own
    page, or a mailto the bounce intake reads. Without one, no link is labelled Unsubscribe."""
    site = config.site
    return bool(config.serve is not None or site.unsubscribe_url or site.unsubscribe_mailto)


def wants_full_body(config: Config) -> bool:
    """Whether any email channel sends whole articles (`body: full`): content loading keeps each
    article's `body_html` only then."""
    return any(isinstance(c, EmailChannel) and c.body == "full" for c in config.channels.values())


def config_model() -> type[Config]:
    """`Config` with the `targets:` schema of the target types installed now: a union of their
    settings models, told apart by `type`. Made on use, not at import (a target module may
    import this one), and made anew when the installed types change (a plugin put on the path)."""
    return _config_model(tuple(target_types().values()))


@lru_cache(maxsize=8)
def _config_model(models: tuple[type[TargetSettings], ...]) -> type[Config]:
    union = Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    return create_model(
        "Config",
        __base__=Config,
        __module__=__name__,
        targets=(dict[str, union], Field(default_factory=dict)),
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, interpolate and validate a config file (default: $SYNDICATE_CONFIG or ./config.yaml)."""
    path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (expected a config.yaml; see --config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({_reason(exc)})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    return config_from_dict(raw, path)


def config_from_dict(raw: Any, path: Path) -> Config:
    """Validate an already-parsed config; `path` names it in errors and anchors relative paths."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: is {_kind(raw)} (expected a mapping with a site: section)")
    problem = shape_problem(raw, max_depth=50, max_nodes=CONFIG_MAX_VALUES, expected="a config file")
    if problem is not None:
        raise ConfigError(f"{path}: {problem}")
    used: dict[str, str] = {}
    data = _interpolate(raw, path, (), used)
    root = path.resolve().parent
    try:
        config = config_model().model_validate({**data, "root": root})
    except ValidationError as exc:
        raise ConfigError(_hide_values(_format_validation(exc, raw, data, path), used)) from None
    resolved = _resolve_paths(config, root)
    resolved.warnings.extend(_bare_variables(raw, path, ()))
    return resolved


_BARE_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _bare_variables(node: Any, path: Path, where: tuple) -> list[str]:
    """A value `$NAME` without braces is taken literally (a password of "$SMTP_PASSWORD" would
    go out as written): a warning that shows the spelling that reads the variable."""
    if isinstance(node, dict):
        return [line for k, v in node.items() for line in _bare_variables(v, path, (*where, k))]
    if isinstance(node, list):
        return [line for i, v in enumerate(node) for line in _bare_variables(v, path, (*where, i))]
    match = _BARE_REF.fullmatch(node.strip()) if isinstance(node, str) else None
    if match is None:  # only a whole value: part of a literal secret is never quoted back
        return []
    return [
        f"{path}: {_dotted(where)}: ${match.group(1)} is used as written "
        f"(expected ${{{match.group(1)}}} to read the environment variable)"
    ]


def _interpolate(node: Any, path: Path, where: tuple, used: dict[str, str]) -> Any:
    """`${NAME}` -> the variable's value; `used` collects NAME -> value to keep out of messages."""
    if isinstance(node, dict):
        return {k: _interpolate(v, path, (*where, k), used) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, path, (*where, i), used) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if not os.environ.get(name):
                state = "is not set" if name not in os.environ else "is empty"
                raise ConfigError(
                    f"{path}: {_dotted(where)}: environment variable {name} {state} "
                    f"(expected it to hold the value)"
                )
            used[name] = os.environ[name]
            return os.environ[name]

        return _ENV_REF.sub(value, node)
    return node


def _resolve_paths(config: Config, root: Path) -> Config:
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else root / p

    targets = {name: t.model_copy(update=_path_fields(t, absolute)) for name, t in config.targets.items()}
    return config.model_copy(
        update={
            "content": config.content.model_copy(update={"dir": absolute(config.content.dir)}),
            "templates": None if config.templates is None else absolute(config.templates),
            "state_dir": absolute(config.state_dir),
            "targets": targets,
            "bounces": None if config.bounces is None else _resolve_mailbox(config.bounces, absolute),
        }
    )


def _resolve_mailbox(bounces: Bounces, absolute) -> Bounces:
    mailbox = bounces.mailbox if "://" in bounces.mailbox else str(absolute(Path(bounces.mailbox)))
    return bounces.model_copy(update={"mailbox": mailbox, **_path_fields(bounces, absolute)})


def _path_fields(model: BaseModel, absolute) -> dict[str, Path]:
    return {name: absolute(value) for name, value in model.__dict__.items() if isinstance(value, Path)}


def _hide_values(text: str, used: dict[str, str]) -> str:
    """The last guard: any interpolated value still in a message is shown as its `${NAME}`."""
    for name, value in sorted(used.items(), key=lambda item: -len(item[1])):
        if len(value) >= MIN_HIDDEN_CHARS:
            text = text.replace(value, f"${{{name}}}")
    return text


def _format_validation(exc: ValidationError, raw: Any, data: Any, path: Path) -> str:
    """One line per error, quoting values as written in the file: `${VAR}`, never what it held."""
    lines = []
    for err in exc.errors():
        loc = _without_union_tag(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        written = _lookup(raw, loc)
        if err["type"] == "missing":
            message = "is missing (expected a value)"
        elif err["type"] == "extra_forbidden":
            message = "is not a known key (check the spelling)"
        elif err["type"] == "union_tag_invalid":
            loc = (*loc, err["ctx"]["discriminator"].strip("'"))
            message = f"{short(err['ctx']['tag'])} is not allowed (expected {err['ctx']['expected_tags']})"
        elif err["type"] == "union_tag_not_found":
            message = f"has no {err['ctx']['discriminator']} (expected one)"
        elif err["type"] == "literal_error":
            message = f"{short(written)} is not allowed (expected {err['ctx']['expected']})"
        elif err["type"] not in ("value_error", "assertion_error"):
            message = f"{short(written)}: {message.lower()}"
        given, written = _lookup(data, loc), _lookup(raw, loc)
        if isinstance(written, str) and given != written:  # interpolated: quote the ${VAR} instead
            message = message.replace(short(given), short(written))
        lines.append(f"{path}: {_dotted(loc)}: {message}" if loc else f"{path}: {message}")
    return "\n".join(lines)


def _without_union_tag(loc: tuple) -> tuple:
    """Pydantic puts a discriminated union's tag in the path (channels.weekly.email.at)."""
    if len(loc) > 2 and loc[0] in ("channels", "targets"):
        return loc[:2] + loc[3:]
    return tuple(loc)


def _lookup(raw: Any, loc: tuple) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _dotted(loc: tuple) -> str:
    """A key path for one line: keys with control or odd characters are shown quoted."""
    return ".".join(str(p) if str(p).isprintable() else repr(p) for p in loc) or "(top)"


def _kind(value: Any) -> str:
    return "empty" if value is None else f"a {type(value).__name__}"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__
