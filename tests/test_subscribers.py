"""The subscriber store on a real SQLite file (and one round trip on PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, make_url, text

from syndicate.cli import cli
from syndicate.errors import DeliveryError
from syndicate.ledger import Ledger, sqlite_url
from syndicate.recipients import Recipient
from syndicate.subscriber_files import iter_subscriber_file, read_subscriber_file
from syndicate.subscribers import (
    ENDED,
    ImportResult,
    Subscriber,
    SubscriberError,
    SubscriberRow,
    SubscriberStore,
)

from .conftest import DATA

FILES = DATA / "subscribers"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path, clock_at):
    clock_at(T0)
    with SubscriberStore(sqlite_url(tmp_path / "state" / "ledger.sqlite")) as opened:
        yield opened


def rows(*emails: str, status=None) -> list[SubscriberRow]:
    return [SubscriberRow(n, email, status=status) for n, email in enumerate(emails, start=2)]


def test_add_is_idempotent_by_address_key_and_ids_are_opaque(store):
    first, created = store.add(
        "news", "Ada@Example.ORG", name=" Ada  Lovelace ", attributes={"city": "Leeds"}
    )
    again, created_again = store.add("news", "ada@example.org")
    assert (created, created_again) == (True, False)
    assert again == first
    assert first.email == "Ada@example.org" and first.name == "Ada Lovelace"
    assert first.status == "subscribed" and first.source == "cli"
    assert first.created_at >= T0 and first.created_at.tzinfo is not None
    assert first.confirmed_at == first.created_at and first.ended_at is None
    assert re.fullmatch("[a-z2-7]{16}", first.id)  # one case: a VERP local part folded still names it
    other, _ = store.add("other", "ada@example.org")  # another list: another row, another id
    assert other.id != first.id
    assert store.get(first.id) == first and store.find("news", "ADA@example.org") == first
    assert store.get("nope") is None and store.find("news", "nobody@example.org") is None


def test_an_older_mixed_case_id_is_found_in_any_case_only_when_asked(store):
    ada, _ = store.add("news", "ada@example.org")
    with store.engine.begin() as conn:  # a row made when ids were secrets.token_urlsafe(12)
        conn.execute(text("UPDATE subscribers SET id = 'Ab-Cd_Ef12GhIjKl' WHERE id = :id"), {"id": ada.id})
    assert store.get("ab-cd_ef12ghijkl") is None
    found = store.get("ab-cd_ef12ghijkl", any_case=True)
    assert found is not None and found.id == "Ab-Cd_Ef12GhIjKl" and found.email == "ada@example.org"
    assert store.get("zz-cd_ef12ghijkl", any_case=True) is None


def test_add_refuses_a_bad_address_or_status(store):
    with pytest.raises(SubscriberError, match="is not an email address"):
        store.add("news", "not-an-address")
    with pytest.raises(SubscriberError, match="is not one of"):
        store.add("news", "a@example.org", status="sleeping")  # type: ignore[arg-type]


@pytest.mark.parametrize("ended", ENDED)
def test_an_ended_row_is_never_revived_by_add_or_import(store, ended):
    made, _ = store.add("news", "gone@example.org")
    store.set_status(made.id, ended, reason="test")
    before = store.get(made.id)
    found, created = store.add("news", "gone@example.org", name="New Name", attributes={"k": "v"})
    assert not created and found == before and found.status == ended
    result = store.import_rows(
        "news", [SubscriberRow(2, "GONE@example.org", "New", {"k": "v"}, "subscribed")]
    )
    assert (result.added, result.updated, result.unchanged) == (0, 0, 1)
    assert store.get(made.id) == before


def test_remove_keeps_the_row_unsubscribed(store, clock_at):
    made, _ = store.add("news", "a@example.org")
    clock_at(T0 + timedelta(hours=1))
    removed = store.remove("news", "A@example.org", reason="asked by email")
    assert removed is not None and removed.status == "unsubscribed" and removed.reason == "asked by email"
    assert removed.ended_at is not None and removed.ended_at >= T0 + timedelta(hours=1)
    assert removed.id == made.id and removed.created_at == made.created_at
    assert store.remove("news", "a@example.org") == removed  # already ended: as it was
    assert store.remove("news", "nobody@example.org") is None
    assert [e.kind for e in store.events(made.id)] == ["subscribe", "unsubscribe"]


def test_request_then_confirm(store, clock_at):
    asked = store.request("news", "new@example.org", name="New")
    assert asked.status == "unconfirmed" and asked.confirmed_at is None and asked.source == "web"
    assert store.request("news", "new@example.org") == asked  # asking twice changes nothing
    clock_at(T0 + timedelta(minutes=10))
    confirmed = store.confirm(asked.id)
    assert confirmed is not None and confirmed.status == "subscribed"
    assert confirmed.confirmed_at is not None and confirmed.confirmed_at >= T0 + timedelta(minutes=10)
    assert store.confirm(asked.id) == confirmed  # only unconfirmed rows move
    assert store.request("news", "new@example.org") == confirmed  # subscribed stays subscribed
    assert store.confirm("missing") is None


def test_request_after_unsubscribing_needs_a_new_confirmation(store):
    made, _ = store.add("news", "back@example.org")
    store.remove("news", "back@example.org")
    again = store.request("news", "back@example.org", attributes={"via": "form"})
    assert again.id == made.id and again.status == "unconfirmed" and again.ended_at is None
    assert again.attributes == {"via": "form"}
    assert store.confirm(again.id).status == "subscribed"  # type: ignore[union-attr]


@pytest.mark.parametrize("ended", ["bounced", "complained"])
def test_request_leaves_a_bounced_or_complained_row_as_it_is(store, ended):
    made, _ = store.add("news", "x@example.org")
    store.set_status(made.id, ended, reason="test")
    assert store.request("news", "x@example.org").status == ended


def test_hard_bounce_and_complaint_end_the_subscription(store):
    a, _ = store.add("news", "a@example.org")
    b, _ = store.add("news", "b@example.org")
    bounced = store.record_bounce(a.id, "hard", "550 no such user", message_id="<m1@example.com>")
    assert bounced is not None and bounced.status == "bounced" and bounced.reason == "550 no such user"
    complained = store.record_bounce(b.id, "complaint", "abuse report")
    assert complained is not None and complained.status == "complained"
    event = store.events(a.id, kinds=["bounce"])[0]
    assert (event.detail, event.message_id) == ("550 no such user", "<m1@example.com>")
    assert store.record_bounce("missing", "hard", "x") is None
    with pytest.raises(SubscriberError):
        store.record_bounce(a.id, "weird", "x")  # type: ignore[arg-type]


def test_soft_bounces_end_it_only_when_enough_fall_in_the_window(store, clock_at):
    made, _ = store.add("news", "full@example.org")
    store.record_bounce(made.id, "soft", "452 mailbox full")
    clock_at(T0 + timedelta(days=15))  # the first one has left the 14-day window
    store.record_bounce(made.id, "soft", "452 mailbox full")
    after = store.record_bounce(made.id, "soft", "452 mailbox full")
    assert after is not None and after.status == "subscribed" and after.soft_bounces == 2
    clock_at(T0 + timedelta(days=16))
    last = store.record_bounce(made.id, "soft", "452 mailbox full")
    assert last is not None and last.status == "bounced" and last.soft_bounces == 3
    assert "3 soft bounces within 14 days" in (last.reason or "")
    assert len(store.events(made.id, kinds=["soft_bounce"])) == 4


def test_import_is_bulk_and_idempotent(store):
    batch = [
        SubscriberRow(2, "a@example.org", "A", {"city": "Leeds"}),
        SubscriberRow(3, "b@example.org", "", {}, "unconfirmed"),
        SubscriberRow(4, "c@example.org", "C", {}, "unsubscribed"),
        SubscriberRow(5, "bad", "Bad"),
    ]
    first = store.import_rows("news", batch)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    assert [str(p) for p in first.problems] == [
        "news:5: 'bad' is not an email address (expected one like name@example.com)"
    ]
    second = store.import_rows("news", batch)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 3)
    statuses = {s.email: s.status for s in store.subscribers("news")}
    assert statuses == {
        "a@example.org": "subscribed",
        "b@example.org": "unconfirmed",
        "c@example.org": "unsubscribed",
    }
    assert len(store.events(kinds=["import"])) == 3


def test_import_updates_names_merges_attributes_and_moves_status_on(store):
    store.import_rows("news", [SubscriberRow(2, "a@example.org", "A", {"city": "Leeds", "plan": "free"})])
    store.import_rows("news", [SubscriberRow(2, "b@example.org", "", {}, "unconfirmed")])
    result = store.import_rows(
        "news",
        [
            SubscriberRow(2, "a@example.org", "", {"plan": "paid"}),  # no name: keeps "A"
            SubscriberRow(3, "b@example.org", "", {}, "subscribed"),  # confirmed by the import
            SubscriberRow(4, "a@example.org", "Ann", {}),  # twice in one import: merged
        ],
    )
    assert (result.added, result.updated, result.unchanged) == (0, 2, 0)
    a = store.find("news", "a@example.org")
    b = store.find("news", "b@example.org")
    assert a is not None and a.name == "Ann" and a.attributes == {"city": "Leeds", "plan": "paid"}
    assert b is not None and b.status == "subscribed" and b.confirmed_at is not None
    unsub = store.import_rows("news", [SubscriberRow(2, "a@example.org", status="unsubscribed")])
    assert unsub.updated == 1 and store.find("news", "a@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    # A subscribed row is not demoted to unconfirmed by a file that says so.
    store.import_rows("news", [SubscriberRow(2, "b@example.org", status="unconfirmed")])
    assert store.find("news", "b@example.org").status == "subscribed"  # type: ignore[union-attr]


def test_a_mailchimp_file_imported_twice_changes_nothing(store):
    found, problems = read_subscriber_file(FILES / "mailchimp.csv")
    assert problems == []
    first = store.import_rows("news", found)
    again = store.import_rows("news", read_subscriber_file(FILES / "mailchimp.csv")[0])
    assert (first.added, again.added, again.updated, again.unchanged) == (3, 0, 0, 3)
    ada = store.find("news", "ada.lovelace@example.org")
    assert ada is not None
    recipient = ada.recipient()
    assert recipient == Recipient("ada.lovelace@example.org", "Ada Lovelace", dict(ada.attributes), id=ada.id)
    assert recipient.fields["first_name"] == "Ada" and recipient.fields["member_rating"] == "4"


def test_subscribers_are_listed_in_insertion_order_and_by_status(store, monkeypatch):
    monkeypatch.setattr("syndicate.subscribers.CHUNK", 7)  # several pages
    emails = [f"r{n:02}@example.org" for n in range(30)]
    store.import_rows("news", rows(*emails))
    store.remove("news", "r03@example.org")
    assert [s.email for s in store.subscribers("news")] == emails
    assert [s.email for s in store.subscribers("news", ["unsubscribed"])] == ["r03@example.org"]
    assert len(list(store.subscribers("news", ["subscribed", "unconfirmed"]))) == 29
    assert list(store.subscribers("empty")) == []
    assert store.lists() == {"news": {"subscribed": 29, "unsubscribed": 1}}


def test_sync_inserts_the_missing_and_returns_every_row_by_address_key(store):
    store.add("news", "old@example.org")
    store.remove("news", "old@example.org")
    keyed = store.sync(
        "news",
        [Recipient("Old@example.org", "Old"), Recipient("New@Example.org", "New", {"city": "Leeds"})],
    )
    assert set(keyed) == {"old@example.org", "new@example.org"}
    assert keyed["old@example.org"].status == "unsubscribed"  # callers skip ENDED rows
    new = keyed["new@example.org"]
    assert new.status == "subscribed" and new.source == "csv" and new.attributes == {"city": "Leeds"}
    assert store.sync("news", [Recipient("new@example.org")]) == keyed  # nothing new the second time


def test_the_store_shares_the_ledger_database_and_file_stays_private(site, tmp_path):
    site.data["state_dir"] = str(tmp_path / "state")
    config = site.config()
    with SubscriberStore.from_config(config) as store:
        store.add("news", "a@example.org")
    with Ledger.from_config(config) as ledger:
        assert {"subscribers", "subscriber_events", "deliveries"} <= ledger.tables | set(
            inspect(ledger.engine).get_table_names()
        )
    path = tmp_path / "state" / "ledger.sqlite"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with SubscriberStore.from_config(config) as store:  # tables made once; reopening keeps rows
        assert store.find("news", "a@example.org") is not None


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    with pytest.raises(SubscriberError, match="cannot open the subscriber store"):
        SubscriberStore(f"sqlite:///{tmp_path}/missing/folder/x.sqlite")


def test_the_cli_imports_lists_exports_and_removes(site, tmp_path):
    site.data["state_dir"] = str(tmp_path / "state")
    config = str(site.write_config())
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, ["subscribers", *args, "--config", config])

    first = run("import", str(FILES / "listmonk.csv"), "--list", "news")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "imported 3 into news (3 new, 0 updated, 0 unchanged)"
    again = run("import", str(FILES / "listmonk.csv"), "--list", "news")
    assert again.stdout.strip() == "imported 3 into news (0 new, 0 updated, 3 unchanged)"
    bad = run("import", str(FILES / "bad-rows.csv"), "--list", "news")
    assert bad.exit_code == 1
    assert bad.stdout.strip() == "imported 2 into news (2 new, 0 updated, 0 unchanged); 6 row(s) left out"
    assert f"{FILES / 'bad-rows.csv'}:3: 'not-an-address' is not an email address" in bad.stderr
    added = run("add", "New@Example.org", "--list", "news", "--name", "New One", "--attr", "Home Town=Leeds")
    assert added.exit_code == 0 and added.stdout.strip() == "added New@example.org to news"
    assert run("add", "new@example.org", "--list", "news").stdout.strip() == (
        "New@example.org is already on news (subscribed)"
    )
    assert run("add", "oops", "--list", "news").exit_code == 2
    assert run("add", "x@example.org", "--list", "news", "--attr", "novalue").exit_code == 2
    removed = run("remove", "new@example.org", "--list", "news")
    assert removed.stdout.strip() == "New@example.org is unsubscribed on news"
    missing = run("remove", "nobody@example.org", "--list", "news")
    assert missing.exit_code == 2 and missing.stderr.strip() == "error: nobody@example.org: not on news"

    listed = run("list", "--list", "news", "--status", "unsubscribed")
    assert listed.stdout.splitlines() == [
        "barbara@example.org\tunsubscribed\tBarbara Liskov",
        "New@example.org\tunsubscribed\tNew One",
        "2 subscriber(s) on news",
    ]
    as_json = [json.loads(line) for line in run("list", "--list", "news", "--json").stdout.splitlines()]
    assert len(as_json) == 6 and as_json[0]["email"] == "edsger@example.org"
    assert as_json[0]["attributes"] == {"age": "72", "city": "Austin"}
    assert as_json[-1]["attributes"] == {"home_town": "Leeds"}

    out = tmp_path / "export.csv"
    exported = run("export", "--list", "news", "-o", str(out))
    assert exported.stdout.strip() == f"exported 6 subscriber(s) of news to {out}"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == "email,name,status,age,city,home_town,created_at"
    copied = run("import", str(out), "--list", "copy")
    assert copied.stdout.strip() == "imported 6 into copy (6 new, 0 updated, 0 unchanged)"
    with SubscriberStore(f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}") as store:
        assert store.lists()["copy"] == store.lists()["news"]
    assert run("export", "--list", "news").stdout.splitlines()[0] == header


def test_the_cli_names_a_missing_file(site, tmp_path):
    site.data["state_dir"] = str(tmp_path / "state")
    result = CliRunner().invoke(
        cli,
        [
            "subscribers",
            "import",
            str(tmp_path / "nope.csv"),
            "--list",
            "n",
            "--config",
            str(site.write_config()),
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such subscribers file"


def test_a_round_trip_on_postgresql(postgres_url, clock_at):
    clock_at(T0)
    name = f"subs_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    database = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        with SubscriberStore(database) as store:
            result = store.import_rows("news", read_subscriber_file(FILES / "buttondown.csv")[0])
            assert result == ImportResult(3, 0, 0, [])
            again = store.import_rows("news", read_subscriber_file(FILES / "buttondown.csv")[0])
            assert (again.added, again.updated) == (0, 0)
            annie = store.find("news", "annie@example.org")
            assert isinstance(annie, Subscriber) and annie.created_at.tzinfo is not None
            assert annie.name == "Annie" and annie.attributes["plan"] == "team"
            bounced = store.record_bounce(annie.id, "hard", "550")
            assert bounced is not None and bounced.status == "bounced"
            assert store.lists() == {"news": {"bounced": 1, "unconfirmed": 1, "unsubscribed": 1}}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_a_long_import_is_written_as_it_goes_and_duplicates_still_merge(store, monkeypatch):
    monkeypatch.setattr("syndicate.subscribers.CHUNK", 2)  # rows written two at a time
    store.add("news", "old@example.org")
    result = store.import_rows(
        "news",
        [
            SubscriberRow(2, "a@example.org", "A"),
            SubscriberRow(3, "b@example.org", "B"),
            SubscriberRow(4, "old@example.org"),  # unchanged...
            SubscriberRow(5, "c@example.org", "C"),
            SubscriberRow(6, "a@example.org", "Ann", {"k": "v"}),  # after a was written
            SubscriberRow(7, "old@example.org", "Old"),  # ...then changed: counted once, as updated
        ],
    )
    assert (result.added, result.updated, result.unchanged) == (3, 1, 0)
    a = store.find("news", "a@example.org")
    assert a is not None and (a.name, dict(a.attributes)) == ("Ann", {"k": "v"})
    assert [s.email for s in store.subscribers("news")] == [
        "old@example.org",
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]


def test_iter_subscriber_file_fails_before_the_first_row(tmp_path):
    with pytest.raises(DeliveryError, match="has no email column"):
        iter_subscriber_file(FILES / "no-email.csv", [])


def test_an_import_racing_another_process_is_undone_whole_and_one_line(store, tmp_path, monkeypatch):
    looked_up = SubscriberStore._known_keys

    def racing(self, conn, list_name, keys):  # another process adds a@ after the import looked
        found = looked_up(self, conn, list_name, keys)
        with SubscriberStore(store.url) as other:
            other.add("news", "a@example.org")
        return found

    monkeypatch.setattr(SubscriberStore, "_known_keys", racing)
    with pytest.raises(SubscriberError, match="another process added some of these addresses"):
        store.import_rows("news", rows("b@example.org", "a@example.org"))
    monkeypatch.undo()
    assert [s.email for s in store.subscribers("news")] == ["a@example.org"]  # b@ undone
    again = store.import_rows("news", rows("b@example.org", "a@example.org"))
    assert (again.added, again.unchanged) == (1, 1)


def test_processes_opening_a_new_postgresql_database_at_once_both_get_the_store(postgres_url):
    """Two sends sharing a new database make the tables at the same moment: the one whose CREATE
    loses the race looks again and finds them, instead of failing its send."""
    opener = (
        "import sys, time; from syndicate.subscribers import SubscriberStore; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); SubscriberStore(sys.argv[1]).close()"
    )
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    names = [f"race_{uuid.uuid4().hex[:12]}" for _ in range(6)]
    try:
        for name in names:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            database = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
            start = str(time.time() + 1.5)  # both processes imported by then: their CREATEs meet
            runs = [
                subprocess.Popen(
                    [sys.executable, "-c", opener, database, start], stderr=subprocess.PIPE, text=True
                )
                for _ in range(3)
            ]
            errors = [run.communicate(timeout=60)[1] for run in runs]
            assert [run.returncode for run in runs] == [0, 0, 0], errors
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
