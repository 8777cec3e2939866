"""Fuzzing the inputs a user writes: frontmatter + markdown, config files, recipient CSVs, and the
article text that templates and mail headers carry.

No input may raise anything but a `SyndicateError`; every rejection is one line naming its place.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.compose.email import compose_single
from syndicate.compose.mime import build_message, message_bytes
from syndicate.compose.social import compose_post
from syndicate.config import config_from_dict
from syndicate.content import read_article
from syndicate.errors import ConfigError, DeliveryError, SyndicateError
from syndicate.recipients import Recipient, check_address, load_recipients

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
    "id",
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


# --- recipient CSVs: recipients, or one-line problems with a line number -------------------------

CSV_SOUP = st.text(
    alphabet=st.sampled_from(list('email,name"\r\n\t=+-@ ab.x\x00;\u202e\ufeff')), max_size=200
)
CSV_CELLS = st.lists(st.lists(st.text(max_size=30), min_size=1, max_size=4), max_size=6)
HEADERS = st.sampled_from(["", "email,name\n", "email,name,city\n", "Email, Name\n", "name;email\n"])


def _check_recipients(raw: bytes) -> None:
    path = _folder / "recipients.csv"
    path.write_bytes(raw)
    try:
        loaded = load_recipients(path, suppression=path)
    except DeliveryError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc) and str(exc).startswith(f"{path}:"), str(exc)
        return
    for problem in loaded.problems:
        line = str(problem)
        assert problem.line >= 1 and line.startswith(f"{path}:{problem.line}: "), line
        assert "\n" not in line and "\r" not in line, line
    for recipient in loaded.recipients:
        assert check_address(recipient.email) == recipient.email


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_as_a_recipients_csv(raw):
    _check_recipients(raw)


@FUZZ
@given(HEADERS, CSV_SOUP)
def test_csv_delimiter_soup_as_recipients(header, text):
    _check_recipients((header + text).encode("utf-8", "surrogatepass"))


@FUZZ
@given(HEADERS, CSV_CELLS)
def test_any_cells_as_recipients(header, rows):
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    _check_recipients((header + out.getvalue()).encode("utf-8", "surrogatepass"))


# --- template variables: an email, or a one-line problem; headers stay one line ------------------

_letters = config_from_dict(
    {
        **base_config_dict(),
        "channels": {
            "letters": {"kind": "email", "mode": "single", "targets": ["mail-outbox"]},
            "x": {"kind": "social", "network": "x", "targets": ["social-outbox"]},
        },
    },
    Path(tempfile.gettempdir()) / "config.yaml",
)


def _plain_article():
    path = _folder / "plain.md"
    path.write_text("---\ntitle: T\npublish_date: '2024-01-01'\n---\nBody.\n", encoding="utf-8")
    return read_article(path, _letters)[0]


_plain = _plain_article()
# Any code point (surrogates aside), weighted towards the ones that break things.
HOSTILE_TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
        st.sampled_from(
            ["\x00", "\r", "\n", "\r\n", "\u202e", "\u2028", "\x85", "\ufeff", "<b>", "&", "{{ x }}", "=?"]
        ),
    ),
    max_size=10,
).map("".join)


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "title": HOSTILE_TEXT.filter(str.strip),
            "subtitle": st.none() | HOSTILE_TEXT,
            "description": st.none() | HOSTILE_TEXT,
            "author": st.none() | HOSTILE_TEXT,
            "cta": st.none() | HOSTILE_TEXT,
            "tags": st.lists(HOSTILE_TEXT, max_size=3).map(tuple),
        }
    ),
    HOSTILE_TEXT,
)
def test_any_article_text_composes_an_email_with_one_line_headers(fields, name):
    article = dataclasses.replace(_plain, **fields)
    try:
        draft = compose_single(article, "letters", _letters)
        message = build_message(draft, Recipient("r@example.org", name), _letters)
    except SyndicateError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    head = message_bytes(message).split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b""), head  # no bare CR or LF inside the headers
    for line in head.split(b"\r\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line, line  # each line a header or its folding
    assert "\r" not in str(message["Subject"]) and "\n" not in str(message["Subject"])
    assert "\r" not in draft.subject and "\n" not in draft.subject and "\x00" not in draft.html
    _, problems = compose_post(article, "x", _letters)
    assert all("\n" not in str(p) and "\r" not in str(p) for p in problems), problems


@FUZZ
@given(st.lists(HOSTILE_TEXT, max_size=5))
def test_any_inline_recipient_list(entries):
    loaded = load_recipients(entries, where="targets.t.recipients")
    for problem in loaded.problems:
        line = str(problem)
        assert (
            line.startswith(f"targets.t.recipients:{problem.line}: ")
            and "\n" not in line
            and "\r" not in line
        )
    assert all(check_address(r.email) == r.email for r in loaded.recipients)
