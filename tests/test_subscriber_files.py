"""Reading other services' subscriber exports (and our own), writing ours."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from syndicate.errors import DeliveryError
from syndicate.subscriber_files import attribute_key, read_subscriber_file, write_subscribers
from syndicate.subscribers import Subscriber

from .conftest import DATA

FILES = DATA / "subscribers"


def table(path: Path) -> list[tuple]:
    found, problems = read_subscriber_file(path)
    assert problems == []
    return [(r.line, r.email, r.name, dict(r.attributes), r.status) for r in found]


def test_a_mailchimp_export_with_bom_crlf_and_merge_fields():
    found = table(FILES / "mailchimp.csv")
    assert [row[:3] for row in found] == [
        (2, "ada.lovelace@example.org", "Ada Lovelace"),
        (3, "Grace.Hopper@example.org", "Grace Hopper"),
        (4, "alan@example.org", "Alan"),
    ]
    ada = found[0][3]
    assert ada["first_name"] == "Ada" and ada["last_name"] == "Lovelace"
    assert ada["favourite_topic"] == "Engines"  # a merge field, as snake_case
    assert ada["member_rating"] == "4" and ada["optin_time"] == "2024-03-01 09:12:44"
    assert "latitude" not in ada  # empty cells are left out
    assert found[0][4] is None  # the subscribed export does not say


def test_mailchimp_unsubscribed_and_cleaned_files_say_so():
    assert table(FILES / "mailchimp-unsubscribed.csv")[0][4] == "unsubscribed"


def test_a_listmonk_export_with_json_attributes_and_statuses():
    assert table(FILES / "listmonk.csv") == [
        (2, "edsger@example.org", "Edsger Dijkstra", {"city": "Austin", "age": "72"}, "subscribed"),
        (3, "barbara@example.org", "Barbara Liskov", {"city": "Boston"}, "unsubscribed"),
        (4, "donald@example.org", "Donald Knuth", {}, "subscribed"),
    ]


def test_a_substack_export():
    found = table(FILES / "substack.csv")
    assert found[0][1:3] == ("sophie@example.org", "")
    assert found[0][3]["plan"] == "yearly" and found[0][3]["signed_up_at"] == "2023-04-05T10:00:00.000Z"
    assert (found[0][4], found[1][4]) == (None, "unsubscribed")  # email_disabled true


def test_a_buttondown_export_with_metadata_and_subscriber_type():
    found = table(FILES / "buttondown.csv")
    annie = found[0]
    assert annie[1:3] == ("annie@example.org", "Annie")  # first_name from the metadata
    assert annie[3]["notes"] == "met at a conference" and annie[3]["tags"] == "vip"
    assert [row[4] for row in found] == ["subscribed", "unsubscribed", "unconfirmed"]


@pytest.mark.parametrize("name", ["semicolon.csv", "tab.tsv"])
def test_the_delimiter_is_sniffed(name):
    found = table(FILES / name)
    assert len(found) == 2 and all(row[3].keys() == {"city"} and " " in row[2] for row in found)


def test_one_address_a_line_without_a_header():
    assert [(row[0], row[1]) for row in table(FILES / "bare.txt")] == [
        (1, "ken@example.org"),
        (2, "dennis@example.org"),
        (4, "bjarne@example.org"),
    ]


def test_bad_rows_are_named_by_line_and_the_others_read():
    found, problems = read_subscriber_file(FILES / "bad-rows.csv")
    assert [row.email for row in found] == ["good@example.org", "last@example.org"]
    source = str(FILES / "bad-rows.csv")
    assert [(p.source, p.line) for p in problems] == [(source, n) for n in (3, 4, 5, 6, 7, 8)]
    messages = [p.message for p in problems]
    assert "'not-an-address' is not an email address" in messages[0]
    assert messages[1] == "has no email address (expected one in the email column)"
    assert "'sleeping' is not a status syndicate knows (expected subscribed" in messages[2]
    assert "is not a JSON object (expected one like" in messages[3]
    assert messages[4] == "has 5 cells but the header has 4 (expected one cell per column)"
    assert messages[5] == "GOOD@example.org is listed twice (first on line 2); imported once"


def test_a_file_that_cannot_be_used_is_one_error(tmp_path):
    with pytest.raises(DeliveryError, match=r"no-email.csv:1: has no email column \(expected a header row"):
        read_subscriber_file(FILES / "no-email.csv")
    with pytest.raises(DeliveryError, match="no such subscribers file"):
        read_subscriber_file(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,name\nzoe@example.org,Zo\xe9\n".encode("latin-1"))
    with pytest.raises(DeliveryError, match="is not UTF-8 text"):
        read_subscriber_file(latin)
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    assert read_subscriber_file(empty) == ([], [])


def test_line_numbers_count_blank_lines_and_multiline_cells(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('\nemail,notes\na@example.org,"two\nlines"\n\nbad,x\n', encoding="utf-8")
    found, problems = read_subscriber_file(path)
    assert [(r.line, r.attributes["notes"]) for r in found] == [(3, "two\nlines")]
    assert [p.line for p in problems] == [6]


def test_a_cell_the_csv_module_refuses_leaves_only_its_row_out(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text(f'email,notes\na@example.org,"{"x" * 200_000}"\nb@example.org,ok\n', encoding="utf-8")
    found, problems = read_subscriber_file(path)
    assert [r.email for r in found] == ["b@example.org"]
    assert problems[0].line == 2 and "cannot be read as CSV" in problems[0].message


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("First Name", "first_name"),
        ("MEMBER_RATING", "member_rating"),
        ("firstName", "first_name"),
        (" Zip-Code ", "zip_code"),
    ],
)
def test_attribute_keys_are_lower_snake_case(header, key):
    assert attribute_key(header) == key


def test_first_and_last_names_make_the_name_only_without_a_name_column(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("email,name,first_name\na@example.org,,Ann\n", encoding="utf-8")
    (row,), _ = read_subscriber_file(path)
    assert row.name == "" and row.attributes == {"first_name": "Ann"}


def subscriber(email: str, status: str, **attributes: str) -> Subscriber:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return Subscriber(
        id="x" + email[0],
        list="news",
        email=email,
        name=email.split("@")[0].title(),
        attributes=MappingProxyType(attributes),
        status=status,  # type: ignore[arg-type]
        source="cli",
        created_at=at,
        updated_at=at,
        confirmed_at=at,
        ended_at=None,
        reason=None,
        soft_bounces=0,
    )


def test_write_subscribers_and_read_it_back(tmp_path):
    out = io.StringIO()
    count = write_subscribers(
        [
            subscriber("a@example.org", "subscribed", city="Leeds"),
            subscriber("b@example.org", "bounced", zone="Z, 1"),
        ],
        out,
    )
    assert count == 2
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["email", "name", "status", "city", "zone", "created_at"],
        ["a@example.org", "A", "subscribed", "Leeds", "", "2026-01-02T03:04:05+00:00"],
        ["b@example.org", "B", "bounced", "", "Z, 1", "2026-01-02T03:04:05+00:00"],
    ]
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    found = table(path)
    assert [(row[1], row[2], row[4]) for row in found] == [
        ("a@example.org", "A", "subscribed"),
        ("b@example.org", "B", "bounced"),
    ]
    assert found[1][3] == {"zone": "Z, 1", "signed_up_at": "2026-01-02T03:04:05+00:00"}


def test_a_mailchimp_cleaned_file_marks_rows_bounced(tmp_path):
    path = tmp_path / "cleaned.csv"
    path.write_text(
        '"Email Address",CLEAN_TIME,CLEAN_CAMPAIGN_TITLE\nc@example.org,"2024-01-01 00:00:00",Jan\n'
    )
    assert table(path)[0][4] == "bounced"


def test_the_export_neutralises_formulas_and_the_import_restores_them(tmp_path):
    """No CSV injection: a cell a spreadsheet would run starts with `'`; reading takes it off."""
    out = io.StringIO()
    write_subscribers(
        [
            subscriber(
                "=1+1@example.org", "subscribed", city='=HYPERLINK("http://evil.example")', score="-2+3"
            )
        ],
        out,
    )
    cells = list(csv.reader(io.StringIO(out.getvalue())))[1]
    assert cells[:5] == [
        "'=1+1@example.org",
        "'=1+1",
        "subscribed",
        '\'=HYPERLINK("http://evil.example")',
        "'-2+3",
    ]
    assert not any(cell[:1] in "=+-@\t\r" and cell for cell in cells)
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    (row,), problems = read_subscriber_file(path)
    assert problems == []
    assert row.email == "=1+1@example.org" and row.name == "=1+1"
    assert row.attributes["city"] == '=HYPERLINK("http://evil.example")' and row.attributes["score"] == "-2+3"
