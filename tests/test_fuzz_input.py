"""Fuzzing the inputs a user writes: frontmatter + markdown, and config files.

No input may raise anything but a `SyndicateError`; every rejection is one line naming its place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.config import config_from_dict
from syndicate.content import read_article
from syndicate.errors import ConfigError

from .conftest import base_config_dict

# A few hundred cases per test in the suite; `SYNDICATE_FUZZ_EXAMPLES=3000 pytest tests/test_fuzz_input.py`
# for a longer run.
FUZZ = settings(
    max_examples=int(os.environ.get("SYNDICATE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

FIELDS = [
    "title",
    "subtitle",
    "description",
    "author",
    "read_time",
    "publish_date",
    "created_date",
    "heroImage",
    "cta",
    "tags",
    "categories",
    "slug",
    "url",
    "canonical_url",
    "draft",
    "date",
    "image",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        ["8 mins", "javascript:alert(1)", "https://x.example/a b", "2024-13-45", "/rel/p.png", "", "\r\n"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
frontmatter_dicts = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=10)

_config = config_from_dict(base_config_dict(), Path(tempfile.gettempdir()) / "config.yaml")
_folder = Path(tempfile.mkdtemp(prefix="syndicate-fuzz-"))


def _check(raw: bytes) -> None:
    path = _folder / "fuzz.md"
    path.write_bytes(raw)
    article, problems = read_article(path, _config)
    errors = [p for p in problems if p.severity == "error"]
    assert (article is None) == bool(errors)
    for problem in problems:
        line = str(problem)
        assert "\n" not in line and "\r" not in line, line
        assert line.startswith(f"{path}: {problem.field}: ")


@FUZZ
@given(frontmatter_dicts, st.text(max_size=300))
def test_any_yaml_frontmatter_never_raises(meta, body):
    try:
        fm = yaml.safe_dump(meta, allow_unicode=True)
    except yaml.YAMLError:
        return
    _check(f"---\n{fm}---\n{body}".encode())


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_never_raise(raw):
    _check(raw)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("-+:'\"[]{}&*!|>#\n \tab01=,")), max_size=200))
def test_any_delimiter_soup_never_raises(text):
    _check(("---\n" + text).encode())


CONFIG_KEYS = {
    "site": ["name", "base_url", "timezone", "sender", "postal_address", "logo", "unsubscribe_url"],
    "content": ["dir", "aliases", "default_time", "max_bytes", "words_per_minute"],
    "channels": ["weekly", "linkedin"],
    "targets": ["mail-outbox", "social-outbox"],
    "schedule": ["catch_up", "unknown"],
}


@FUZZ
@given(st.sampled_from(sorted(CONFIG_KEYS)), st.data(), values)
def test_any_config_value_gives_config_error_or_a_config(section, data, value):
    raw = base_config_dict()
    key = data.draw(st.sampled_from(CONFIG_KEYS[section]))
    raw.setdefault(section, {})[key] = value
    try:
        config_from_dict(raw, Path("config.yaml"))
    except ConfigError as exc:
        for line in str(exc).split("\n"):
            assert line.startswith("config.yaml: "), line
