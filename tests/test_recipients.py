"""Recipients from config or CSV: validation, line numbers, suppression; never written out as CSV."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.errors import DeliveryError
from syndicate.recipients import (
    Recipient,
    check_address,
    load_recipients,
    load_suppression,
)
from syndicate.send import send

from .conftest import DATA, loopback_smtp


def test_csv_rows_become_recipients_with_their_extra_columns():
    loaded = load_recipients(DATA / "subscribers.csv", DATA / "unsubscribed.csv")
    assert [r.email for r in loaded.recipients] == ["ada@example.org", "BOB@example.org", "carol@example.org"]
    ada, bob, carol = loaded.recipients
    assert ada == Recipient("ada@example.org", "Ada Lovelace", {"city": "London"})
    assert bob.name == "Bob Jones" and carol.fields == {"city": "Multi\nline"}
    assert loaded.suppressed == 1


def test_bad_rows_are_reported_with_their_line_numbers():
    problems = load_recipients(DATA / "subscribers.csv").problems
    lines = [(p.line, p.message) for p in problems]
    assert lines == [
        (4, "'not-an-address' is not an email address (expected one like name@example.com)"),
        (6, "ada@example.org is listed twice (first on line 2); sending once"),
        (10, "has more cells than the header row"),
        (11, "'space @example.org' contains spaces or control characters"),
    ]
    assert str(problems[0]).startswith(f"{DATA / 'subscribers.csv'}:4: ")


def test_inline_lists_take_names_and_number_their_items():
    loaded = load_recipients(
        ["Ada <ada@example.org>", "bob@example.org", "nope"], where="targets.news.recipients"
    )
    assert loaded.recipients == [Recipient("ada@example.org", "Ada"), Recipient("bob@example.org")]
    [problem] = loaded.problems
    assert str(problem).startswith("targets.news.recipients:3: 'nope' is not an email address")


@pytest.mark.parametrize(
    "address",
    [
        "a@b",
        "a@@example.org",
        "a.@example.org",
        "a..b@example.org",
        "a@-example.org",
        "a@example.123",
        "a@exa_mple.org",
        "evil@example.org\r\nBcc: all@example.org",
        "x" * 65 + "@example.org",
        "",
    ],
)
def test_invalid_addresses_are_refused(address):
    with pytest.raises(ValueError):
        check_address(address)


def test_valid_addresses_keep_their_local_part_and_lower_the_domain():
    assert check_address(" O'Brien+news@Mail.Example.ORG ") == "O'Brien+news@mail.example.org"
    assert check_address("anna@bücher.example") == "anna@bücher.example"


def test_suppression_as_a_plain_list_too(tmp_path):
    plain = tmp_path / "bounced.txt"
    plain.write_text("Gone@Example.org\nother@example.org\n", encoding="utf-8")
    assert load_suppression(plain) == {"gone@example.org", "other@example.org"}
    assert load_recipients(["gone@example.org", "ok@example.org"], plain).suppressed == 1


def test_unusable_files_are_one_clear_error(tmp_path):
    with pytest.raises(DeliveryError, match=r"missing.csv: no such recipients file"):
        load_recipients(tmp_path / "missing.csv")
    headless = tmp_path / "headless.csv"
    headless.write_text("ada@example.org,Ada\n", encoding="utf-8")
    with pytest.raises(DeliveryError, match=r"headless.csv: has no email column"):
        load_recipients(headless)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,name\nz@example.org,Zo\xe9\n".encode("latin-1"))
    with pytest.raises(DeliveryError, match=r"latin.csv: is not UTF-8 text"):
        load_recipients(latin)


def test_a_cell_over_the_csv_field_limit_is_one_bad_row_and_the_rest_go_out(site, smtp_sink, tmp_path):
    sink, port = smtp_sink
    huge = tmp_path / "huge.csv"
    rows = [
        "a@example.org,A",
        "b@example.org," + "x" * 200_000,
        "c@example.org,C",
        'd@example.org,"' + "y" * 200_000,
    ]
    huge.write_text("email,name\n" + "\n".join([*rows, "e@example.org,E"]) + "\n", encoding="utf-8")
    loaded = load_recipients(huge)
    assert [r.email for r in loaded.recipients][:2] == ["a@example.org", "c@example.org"]
    [problem, *_] = loaded.problems
    assert str(problem).startswith(f"{huge}:3: cannot be read as CSV (field larger than field limit")
    # A suppression list that cannot be read whole is refused: nobody on it may be mailed.
    with pytest.raises(DeliveryError, match=r"huge.csv:3: cannot be read as CSV \(field larger than"):
        load_suppression(huge)
    site.article("a.md", "---\ntitle: T\npublish_date: '2024-01-01'\ncta: Go\ndescription: D\n---\nB.\n")
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]}}
    site.data["targets"] = {"newsletter": loopback_smtp(port, huge)}
    site.write_config()
    outcome = send(site.config(), select="all")
    assert outcome.ok and {r.email for r in outcome.recipients["newsletter"]} == set(sink.copies())
    assert {"a@example.org", "c@example.org"} <= set(sink.copies()) and "b@example.org" not in sink.copies()


def test_recipient_values_never_reach_an_output_csv(site, tmp_path):
    """syndicate writes no CSV (nor a report a spreadsheet would open): formula cells stay in the input."""
    site.article("a.md", "---\ntitle: T\npublish_date: '2024-01-01'\ncta: Go\ndescription: D\n---\nB.\n")
    formulas = tmp_path / "formulas.csv"
    formulas.write_text(
        "email,name,city\n"
        'a@example.org,"=HYPERLINK(""http://evil.example"")",+cmd\n'
        "b@example.org,@SUM(1+1),-2+3\n"
        "=1+1@example.org,x,y\n"
        '"\tc@example.org","\rname",z\n',
        encoding="utf-8",
    )
    site.data["targets"]["mail-outbox"]["recipients"] = str(formulas)
    site.write_config()
    runner = CliRunner()
    for command in (["preview"], ["send", "--all", "--dry-run", "-v"], ["send", "--all"], ["status"]):
        result = runner.invoke(cli, ["--config", str(site.config_path), *command])
        assert result.exit_code == 0, result.output
    assert "=1+1@example.org" in result.output  # status: text on a terminal, not a spreadsheet
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != formulas]
    assert [p for p in written if p.suffix.lower() in (".csv", ".tsv", ".xls", ".xlsx")] == []
    # The subscriber store (in the ledger's database) keeps readers' attributes as given; its
    # CSV export guards formula cells (test_subscriber_files).
    stored = [p for p in written if p.suffix == ".eml" or p.name.startswith("ledger.sqlite")]
    assert not any(b"HYPERLINK" in p.read_bytes() for p in written if p not in stored)
