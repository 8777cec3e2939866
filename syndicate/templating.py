"""Every Jinja2 template syndicate renders goes through here: emails, social posts, the gallery.

One place decides what a template can reach and how its mistakes read:
- the environments: HTML (MJML emails, the gallery) is autoescaped, plain text (posts, subjects)
  is not; undefined names are errors (StrictUndefined); all are sandboxed, so a template cannot
  walk from an object it is given (`article.__class__...`) to the rest of the process;
- the search path: the site's templates folder first, then the shipped templates, so a site
  overrides one file and still imports the shipped parts;
- errors: any failure in a template (it is the user's code) becomes one `TemplateError` line
  naming the file and line, e.g. `templates/social/x.txt.j2:3: 'article' has no attribute 'nope'`;
- the site: templates get `site_view(site)`, a whitelist, never the `Site` model, which holds the
  unsubscribe secret.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .config import Config, Site, default_templates_dir
from .errors import TemplateError
from .personal import GREETING_TEMPLATE, default_filter

Kind = Literal["html", "text"]

# The fields of `Site` a template may print. The secret, the unsubscribe endpoints (per-recipient
# links come as placeholders) and the fonts (the composer passes them formatted) stay out.
SITE_FIELDS = ("name", "base_url", "timezone", "logo", "postal_address", "sender", "language")


def site_view(site: Site) -> dict[str, Any]:
    """What every template sees of the site: the whitelisted fields, as a plain mapping."""
    return {name: getattr(site, name) for name in SITE_FIELDS}


def search_path(config: Config, plugins: Iterable[Path] = ()) -> tuple[Path, ...]:
    """The site's templates first, then the ones shipped with syndicate, then a plugin's (each once).

    A plugin's folder comes last so a site overrides its templates the same way as the shipped ones.
    """
    return tuple(dict.fromkeys([config.templates_dir, default_templates_dir(), *plugins]))


def get_template(config: Config, name: str, kind: Kind, plugins: Iterable[Path] = ()) -> jinja2.Template:
    """The template `name` (e.g. "social/x.txt.j2") from the search path, compiled; or a TemplateError."""
    folders = search_path(config, plugins)
    try:
        return _environment(folders, kind).get_template(name)
    except jinja2.TemplateNotFound:
        looked = ", ".join(str(p) for p in folders)
        raise TemplateError(f"{name}: no such template (looked in {looked})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or exc.name or name}:{exc.lineno}: {exc.message}") from None


def greeting_source(config: Config) -> tuple[str, str]:
    """(source, where) of the greeting template: `site.greeting`, else the file
    email/greeting.txt.j2 from the search path (read once per folder set)."""
    if config.site.greeting is not None:
        return config.site.greeting, "site.greeting"
    return _read_source(search_path(config), GREETING_TEMPLATE)


@lru_cache(maxsize=8)
def _read_source(folders: tuple[Path, ...], name: str) -> tuple[str, str]:
    for folder in folders:
        path = folder / name
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
    looked = ", ".join(str(p) for p in folders)
    raise TemplateError(f"{name}: no such template (looked in {looked})")


def render_template(template: jinja2.Template, context: Mapping[str, Any], during: str | None = None) -> str:
    """`template` rendered; any failure inside it is a TemplateError at its file and line.

    `during` says what was being made ("while composing posts/a.md") when the template alone
    does not tell which input broke it.
    """
    try:
        return template.render(context)
    except Exception as exc:  # a template is the user's code: any failure in it is their mistake
        where = _template_frame(exc) or template.filename or template.name or "template"
        suffix = f" ({during})" if during else ""
        raise TemplateError(f"{where}: {_reason(exc)}{suffix}") from None


def render_string(source: str, context: Mapping[str, Any], where: str) -> str:
    """A one-line plain-text template from the config (an email subject); `where` is its key."""
    try:
        return _string_environment().from_string(source).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{where}: line {exc.lineno}: {exc.message} in {source!r}") from None
    except Exception as exc:  # as in `render_template`: the user's code
        raise TemplateError(f"{where}: {_reason(exc)} in {source!r}") from None


@lru_cache(maxsize=16)
def _environment(folders: tuple[Path, ...], kind: Kind) -> jinja2.Environment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(p) for p in folders]),
        autoescape=kind == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = _thousands
    env.filters["default"] = env.filters["d"] = default_filter
    return env


@lru_cache(maxsize=1)
def _string_environment() -> jinja2.Environment:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["default"] = env.filters["d"] = default_filter
    return env


def _thousands(number: int) -> str:
    """12345 -> "12,345" (the gallery's byte counts)."""
    return f"{number:,}"


def _template_frame(exc: BaseException) -> str | None:
    """Jinja rewrites tracebacks so template code shows as template lines: the deepest such frame.

    The deepest, so a mistake in a macro imported from another template names that template.
    """
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if "__jinja_exception__" in frame.f_globals:
            found = f"{frame.f_code.co_filename}:{line}"
    return found


def _reason(exc: BaseException) -> str:
    """Jinja's own errors read as they are; anything else (a TypeError in an expression) says its type."""
    if isinstance(exc, jinja2.TemplateError):
        text = exc.message or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
