from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syndicate.compose.littletext import (
    RESERVED,
    escape_little_text,
    hashtag_template,
    little_text,
    unescape_little_text,
)


def test_every_reserved_character_is_escaped() -> None:
    assert RESERVED == "|{}@[]()<>#\\*_~"
    escaped = escape_little_text(RESERVED)
    assert escaped == "".join("\\" + c for c in RESERVED)
    assert unescape_little_text(escaped) == RESERVED


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words, no change.", "plain words, no change."),
        ("Costs (about $6M) fell", "Costs \\(about $6M\\) fell"),
        ("mail me@example.com", "mail me\\@example.com"),
        ("snake_case *bold* ~strike~", "snake\\_case \\*bold\\* ~strike~".replace("~", "\\~")),
        ("a\\b", "a\\\\b"),
        ("C# and F#", "C\\# and F\\#"),
    ],
)
def test_escape_examples(text: str, escaped: str) -> None:
    assert escape_little_text(text) == escaped


def test_hashtags_become_templates_and_other_hashes_are_escaped() -> None:
    text = "C# is not a tag, #AI is; #AIsafety is not in the list.\n\n#AI #MachineLearning"
    commentary = little_text(text, ["#AI", "#MachineLearning"])
    assert commentary == (
        "C\\# is not a tag, {hashtag|\\#|AI} is; \\#AIsafety is not in the list.\n\n"
        "{hashtag|\\#|AI} {hashtag|\\#|MachineLearning}"
    )
    assert unescape_little_text(commentary) == text


def test_no_reserved_character_is_left_bare_outside_templates() -> None:
    commentary = little_text("Read (this) @ [docs] <now> | {x} #Tag", ["#Tag"])
    outside = re.sub(r"\{hashtag\|\\#\|\w+\}", "", commentary)
    assert not re.search(r"(?<!\\)[|{}@\[\]()<>#*_~]", re.sub(r"\\\\", "", outside))


def test_template_text_typed_by_a_person_stays_text() -> None:
    text = "write {hashtag|\\#|x} to make a tag"
    assert unescape_little_text(little_text(text)) == text
    assert unescape_little_text(little_text(text, ["#x"])) == text


def test_hashtag_template_shape() -> None:
    assert hashtag_template("#DeepSeek") == "{hashtag|\\#|DeepSeek}"
    assert hashtag_template("日本") == "{hashtag|\\#|日本}"


_TEXT = st.lists(st.sampled_from([*RESERVED, "a", "b", " ", "\n", "日", "é", "hashtag", "#AI"])).map("".join)


@given(_TEXT)
def test_escaping_round_trips(text: str) -> None:
    assert unescape_little_text(escape_little_text(text)) == text


@given(_TEXT, st.lists(st.sampled_from(["#AI", "#b", "#日"]), max_size=3))
def test_commentary_round_trips_with_hashtags(text: str, hashtags: list[str]) -> None:
    assert unescape_little_text(little_text(text, hashtags)) == text
