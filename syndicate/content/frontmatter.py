"""Frontmatter: YAML between --- lines or TOML between +++ lines, read safely."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import BaseHandler, YAMLHandler

from ..yaml_shape import shape_problem
from .article import FieldError


class _TomlHandler(BaseHandler):
    """Hugo-style `+++` TOML frontmatter, read with the standard library's tomllib."""

    FM_BOUNDARY = re.compile(r"^\+{3,}\s*$", re.MULTILINE)

    def load(self, fm: str, **kwargs: object) -> Any:
        return tomllib.loads(fm)


_HANDLERS = (YAMLHandler(), _TomlHandler())


def read_bytes(path: Path, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise FieldError(
                    "file", f"is {size:,} bytes (expected at most {limit:,}; see content.max_bytes)"
                )
            # Its size, and one byte more to see it growing: reading `limit` bytes at once would
            # allocate a buffer of content.max_bytes for every file.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(max(0, limit + 1 - len(data)))
            if len(data) > limit:
                raise FieldError("file", f"grew past {limit:,} bytes while read (see content.max_bytes)")
            return data
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FieldError("file", f"cannot be read: {reason} (expected a readable file)") from None


def split(raw: bytes) -> tuple[dict[str, Any], str]:
    if not raw or raw.isspace():
        raise FieldError("file", "is empty (expected frontmatter and a markdown body)")
    if b"\x00" in raw:
        raise FieldError("file", "contains NUL bytes: looks binary (expected UTF-8 markdown text)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FieldError(
            "file", f"is not UTF-8: bad byte at offset {exc.start} (expected UTF-8 text)"
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    body_text = text.lstrip("\n") if text.startswith("\n") else text
    first = body_text[: body_text.find("\n")].strip() if "\n" in body_text else body_text.strip()
    handler = next((h for h in _HANDLERS if h.detect(body_text)), None)
    if handler is None:
        if first.startswith(("---", "+++")):
            raise FieldError("frontmatter", f"opening {first!r} is not alone on its line")
        raise FieldError("frontmatter", "is missing (expected the file to start with --- or +++)")
    try:
        fm, body = handler.split(body_text)
    except ValueError:
        raise FieldError(
            "frontmatter", f"opened with {first!r} is never closed (expected a closing {first[:3]!r} line)"
        ) from None
    try:
        meta = handler.load(fm)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        message = f"is not valid YAML{where}: {problem} (expected key: value lines)"
        raise FieldError("frontmatter", message) from None
    except tomllib.TOMLDecodeError as exc:
        raise FieldError("frontmatter", f"is not valid TOML: {exc} (expected key = value lines)") from None
    except RecursionError:
        raise FieldError("frontmatter", "is nested too deeply (expected simple key: value pairs)") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise FieldError("frontmatter", f"is a {type(meta).__name__} (expected key: value pairs)")
    check_shape(meta)
    return meta, body


def check_shape(meta: dict[str, Any]) -> None:
    """Refuse YAML alias bombs and absurd nesting before anything walks the values."""
    problem = shape_problem(meta, max_depth=20, max_nodes=10_000, expected="a small set of fields")
    if problem is not None:
        raise FieldError("frontmatter", problem)
