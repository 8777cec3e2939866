"""The ledger on a real SQLite file: rows, statuses, crash recovery, what `status` shows."""

from __future__ import annotations

import sqlite3
from datetime import UTC

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from syndicate.deliver import MessageKey
from syndicate.errors import DeliveryError
from syndicate.ledger import ADDED_DRAFT_COLUMNS, KnownArticle, Ledger, sqlite_url

KEY = MessageKey("weekly", "newsletter", "digest-2026-11-23", "reader@example.org")


@pytest.fixture
def ledger(tmp_path):
    with Ledger(sqlite_url(tmp_path / "ledger.sqlite")) as ledger:
        yield ledger


def test_lives_in_the_state_folder_in_wal_mode(site):
    with Ledger.from_config(site.config()) as ledger:
        assert (site.root / ".syndicate" / "ledger.sqlite").is_file()
        with ledger.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_database_url_from_config(site, tmp_path):
    site.data["database_url"] = sqlite_url(tmp_path / "elsewhere" / "deliveries.db")
    with Ledger.from_config(site.config()) as ledger:
        ledger.mark_in_flight(KEY, "h1")
    assert (tmp_path / "elsewhere" / "deliveries.db").is_file()
    assert not (site.root / ".syndicate" / "ledger.sqlite").exists()  # only its folder.id is there


def test_an_unusable_database_is_one_clear_line(tmp_path):
    with pytest.raises(
        DeliveryError, match=r"^database_url: cannot open the ledger \(unable to open database"
    ):
        Ledger(f"sqlite:///{tmp_path}/missing-folder/ledger.sqlite")


def test_a_delivery_goes_in_flight_then_sent(ledger):
    ledger.mark_in_flight(KEY, "h1")
    [row] = ledger.recent()
    assert (row.status, row.attempts, row.sent_at) == ("in_flight", 1, None)
    ledger.mark(KEY, "sent")
    [row] = ledger.recent()
    assert row.key == KEY and row.status == "sent" and row.content_hash == "h1"
    assert row.sent_at is not None and row.sent_at.tzinfo == UTC and row.created_at <= row.updated_at


def test_rows_survive_a_new_ledger_and_attempts_add_up(tmp_path):
    url = sqlite_url(tmp_path / "ledger.sqlite")
    with Ledger(url) as first:
        first.mark_in_flight(KEY, "h1")
        first.mark(KEY, "retry", "451 4.7.1 greylisted")
    with Ledger(url) as second:
        assert second.statuses(KEY.channel, KEY.target, KEY.draft_key) == {KEY.recipient: ("retry", "h1")}
        second.mark_in_flight(KEY, "h2")
        second.mark(KEY, "sent")
        [row] = second.recent()
    assert (row.status, row.attempts, row.content_hash, row.last_error) == ("sent", 2, "h2", None)


def test_rows_left_in_flight_are_unknown_only_once_handed_over(ledger):
    handed = MessageKey("weekly", "newsletter", "digest-2026-11-23", "handed@example.org")
    other = MessageKey("weekly", "newsletter", "digest-2026-11-23", "other@example.org")
    ledger.mark_in_flight(KEY, "h1")  # stopped before its data all went out
    ledger.mark_in_flight(handed, "h1")
    ledger.mark_handed(handed)  # stopped after: the server may have it
    ledger.mark_in_flight(other, "h1")
    ledger.mark(other, "sent")
    assert ledger.recover() == 1
    assert [(d.key, d.status) for d in ledger.unknowns()] == [(handed, "unknown")]
    statuses = ledger.statuses(KEY.channel, KEY.target, KEY.draft_key)
    assert statuses[KEY.recipient][0] == "pending" and statuses[other.recipient][0] == "sent"
    assert ledger.recover() == 0


def test_a_ledger_from_before_the_hand_over_mark_keeps_its_in_flight_rows_in_doubt(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(sqlite_url(path)) as ledger:
        ledger.mark_in_flight(KEY, "h1")
    with sqlite3.connect(path) as db:  # as an earlier version left it, after a crash
        db.execute("ALTER TABLE deliveries DROP COLUMN handed_at")
    with Ledger(sqlite_url(path)) as ledger:
        assert ledger.recover() == 1  # it may have gone out: never a duplicate
        assert [d.key for d in ledger.unknowns()] == [KEY]


def test_failures_carry_their_errors_and_counts_group_by_target(ledger):
    keys = [MessageKey("weekly", "newsletter", "d1", f"r{n}@example.org") for n in range(4)]
    outcomes = [
        ("sent", None),
        ("failed", "550 5.1.1 no such user"),
        ("retry", "450 too much mail"),
        ("sent", None),
    ]
    for key, (status, error) in zip(keys, outcomes, strict=True):
        ledger.mark_in_flight(key, "h")
        ledger.mark(key, status, error)
    assert {(d.key.recipient, d.last_error) for d in ledger.failures()} == {
        ("r1@example.org", "550 5.1.1 no such user"),
        ("r2@example.org", "450 too much mail"),
    }
    assert ledger.counts() == {("weekly", "newsletter"): {"sent": 2, "failed": 1, "retry": 1}}


def test_marking_an_unknown_message_is_a_bug(ledger):
    with pytest.raises(KeyError):
        ledger.mark(KEY, "sent")


def test_draft_states_say_how_far_each_run_got(tmp_path):
    with Ledger(sqlite_url(tmp_path / "ledger.sqlite")) as ledger:
        started, skipped = ("weekly", "mail", "weekly:2026-11-23"), ("linkedin", "posts", "linkedin:fog")
        assert ledger.draft_state(started) is None
        ledger.set_draft_state(started, "started")
        ledger.set_draft_state(skipped, "skipped", "missed by 2d 0h")
        assert ledger.draft_states() == {started: "started", skipped: "skipped"}
        assert ledger.settled_draft_keys("weekly", "mail") == set()  # started is not settled
        ledger.set_draft_state(started, "finished")
        assert ledger.draft_state(started) == "finished"
        assert ledger.settled_draft_keys("weekly", "mail") == {"weekly:2026-11-23"}
        assert ledger.skipped_drafts() == [(skipped, "missed by 2d 0h")]


def test_a_database_url_is_never_quoted_and_a_missing_driver_is_one_line():
    for url in ("postgresql://u:pw-s3cret@127.0.0.1:1/db", "post gres://u:pw-s3cret@h/db"):
        with pytest.raises(DeliveryError, match=r"^database_url: cannot open the ledger \(") as caught:
            Ledger(url)
        assert "pw-s3cret" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_reader_creates_nothing_and_writes_nothing(site):
    config = site.config()
    assert Ledger.reader(config) is None
    assert not (site.root / ".syndicate").exists()  # not even the state folder
    with Ledger.from_config(config) as ledger:
        ledger.mark_in_flight(KEY, "h1")
        ledger.mark(KEY, "sent")
    path = site.root / ".syndicate" / "ledger.sqlite"
    before = path.read_bytes()
    reader = Ledger.reader(config)
    assert reader is not None and reader.read_only
    with reader:
        assert reader.statuses(KEY.channel, KEY.target, KEY.draft_key) == {KEY.recipient: ("sent", "h1")}
        with pytest.raises(RuntimeError, match="opened read-only"):
            reader.set_draft_state(("weekly", "newsletter", KEY.draft_key), "finished")
        with reader.engine.connect() as conn, pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM deliveries"))  # the connection itself cannot write
    assert path.read_bytes() == before


def test_a_ledger_from_before_the_added_columns_reads_as_it_is_and_gains_them(tmp_path):
    url = sqlite_url(tmp_path / "ledger.sqlite")
    draft = ("weekly", "newsletter", "weekly:2026-11-23")
    with Ledger(url) as ledger:
        ledger.set_draft_state(draft, "started")
        with ledger.engine.begin() as conn:  # the drafts table as syndicate 0.1 made it
            for name in ADDED_DRAFT_COLUMNS:
                conn.execute(text(f"ALTER TABLE drafts DROP COLUMN {name}"))
    old = Ledger(url, read_only=True)
    with old:
        [row] = old.drafts()
        assert (row.draft, row.state, row.planned, row.articles) == (draft, "started", None, None)
    with Ledger(url) as ledger:  # a read-write open adds them; the old row keeps NULL
        assert [(r.planned, r.articles) for r in ledger.drafts()] == [(None, None)]
        ledger.set_draft_state(draft, "started", planned=40, articles=["fog", "tide"])
        ledger.set_draft_state(draft, "started", "stopped before the end of the list")
        [row] = ledger.drafts("started")
    assert (row.planned, row.articles, row.detail) == (
        40,
        ("fog", "tide"),
        "stopped before the end of the list",
    )


def test_messages_left_are_counted_per_draft(ledger):
    draft = ("weekly", "newsletter", "d1")
    for n, (status, error) in enumerate([("sent", None), ("retry", "451 later"), ("unknown", "lost")]):
        key = MessageKey(*draft, f"r{n}@example.org")
        ledger.mark_in_flight(key, "h")
        ledger.mark(key, status, error)
    ledger.mark_in_flight(MessageKey("linkedin", "posts", "linkedin:fog", ""), "h")
    assert ledger.message_counts(draft) == {"retry": 1, "sent": 1, "unknown": 1}
    assert ledger.unsettled_drafts() == {draft, ("linkedin", "posts", "linkedin:fog")}
    assert ledger.last_error(draft) == "lost"
    assert [d.key.recipient for d in ledger.deliveries_to("R1@Example.org")] == ["r1@example.org"]
    assert [d.status for d in ledger.deliveries_of(draft)] == ["sent", "retry", "unknown"]


def test_articles_are_remembered_one_row_per_stem(tmp_path):
    url = sqlite_url(tmp_path / "ledger.sqlite")
    first = KnownArticle("tide-tables", "slug:tide-tables", "tide-tables.md", "h1")
    other = KnownArticle("fog", "id:7", "2024/fog.md", "h2")
    with Ledger(url) as ledger:
        assert ledger.known_articles() == []
        ledger.remember_articles([first, other])
        moved = KnownArticle("tide-tables", "slug:harbour-notes", "harbour-notes.md", "h1")
        ledger.remember_articles([moved])  # the same stem: updated, not added
    with Ledger(url) as again:
        assert again.known_articles() == [moved, other]


def test_known_articles_near_some_keys_are_only_those(ledger):
    rows = [
        KnownArticle("a", "slug:a", "a.md", "h1"),
        KnownArticle("a~2", "slug:a", "new/a.md", "h2"),
        KnownArticle("ab", "slug:ab", "ab.md", "h3"),
        KnownArticle("b", "id:7", "b.md", "h4"),
        KnownArticle("c", "slug:c", "c.md", "h9"),
        KnownArticle("d", "url:https://x.example/d", "d.md", "h5"),
    ]
    ledger.remember_articles(rows)
    assert ledger.known_articles() == rows
    assert [k.stem for k in ledger.known_articles(({"id:7"}, {"h9"}, {"a"}))] == ["a", "a~2", "b", "c"]
    assert ledger.known_articles((set(), set(), {"a%"})) == []  # a stem is matched as written


def test_a_ledger_from_before_the_articles_table_gains_it_and_keeps_its_rows(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(sqlite_url(path)) as ledger:
        ledger.mark_in_flight(KEY, "h1")
        ledger.mark(KEY, "sent")
        ledger.engine.dispose()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE articles")  # as an earlier version left it
    with Ledger(sqlite_url(path)) as ledger:
        assert ledger.known_articles() == []
        assert ledger.sent_draft_keys(KEY.channel, KEY.target) == {KEY.draft_key}
        ledger.remember_articles([KnownArticle("x", "slug:x", "x.md", "h")])
        assert [k.stem for k in ledger.known_articles()] == ["x"]


def test_recovery_leaves_rows_another_live_process_is_sending(tmp_path):
    """On a ledger several state folders share, a run starting recovers only what ended runs
    left in flight: a row another live process claimed is being sent right now, and making it
    pending would let this run send it too (a duplicate)."""
    import socket
    import subprocess
    import sys

    url = sqlite_url(tmp_path / "ledger.sqlite")
    keys = {name: MessageKey("weekly", "newsletter", "d1", f"{name}@example.org") for name in "abcdefg"}
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname().replace(" ", "_")
    claimants = {
        "a": f"other-folder {host} {alive.pid}",  # another folder's live process here: sending now
        "b": f"other-folder {host} {gone.pid}",  # another folder's process here that is gone
        "c": f"other-folder elsewhere.example {alive.pid}",  # another machine: cannot tell, left
        "d": f"mine elsewhere.example {alive.pid}",  # this folder, on another machine: its run ended
        "e": None,  # claimed before claims were marked
    }
    try:
        with Ledger(url, folder="mine") as ledger:
            for key in keys.values():
                ledger.mark_in_flight(key, "h1")
            # f: this ledger's own claim (a run starts with nothing of its own in flight);
            # g: handed over by an ended run, so in doubt
            ledger.mark_handed(keys["g"])
            for name, claimant in claimants.items():
                ledger._conn.execute(
                    text("UPDATE deliveries SET claimed_by = :who WHERE recipient = :r"),
                    {"who": claimant, "r": keys[name].recipient},
                )
            ledger._conn.commit()
            assert ledger.recover() == 1
            statuses = {r: s for r, (s, _) in ledger.statuses("weekly", "newsletter", "d1").items()}
        assert statuses == {
            "a@example.org": "in_flight",
            "b@example.org": "pending",
            "c@example.org": "in_flight",
            "d@example.org": "pending",
            "e@example.org": "pending",
            "f@example.org": "pending",
            "g@example.org": "unknown",
        }
        alive.kill()
        alive.wait()
        with Ledger(url, folder="mine") as ledger:
            ledger.recover()
            statuses = {r: s for r, (s, _) in ledger.statuses("weekly", "newsletter", "d1").items()}
        assert statuses["a@example.org"] == "pending"  # its process is gone now
        assert statuses["c@example.org"] == "in_flight"  # still another machine's to settle
    finally:
        alive.kill()
        alive.wait()


def test_claims_carry_the_state_folder_that_made_them(site):
    from syndicate.state import folder_id

    config = site.config()
    with Ledger.from_config(config) as ledger:
        ledger.mark_in_flight(KEY, "h1")
        (claimed,) = ledger._conn.execute(text("SELECT claimed_by FROM deliveries")).one()
    assert claimed.split(" ")[0] == folder_id(config) == folder_id(config)  # made once, then read
    assert len(folder_id(config)) == 32


def test_statuses_of_answers_for_one_chunk_and_keeps_only_what_may_go_out(ledger):
    draft = (KEY.channel, KEY.target, KEY.draft_key)
    keys = [MessageKey(*draft, f"r{n}@example.org") for n in range(6)]
    for key in keys[:4]:
        ledger.mark_in_flight(key, "h1")
        ledger.mark(key, "sent" if key != keys[2] else "retry")
    old = MessageKey(*draft, "R9@Example.org")  # a row from before keys were normalised
    ledger.mark_in_flight(old, "h0")
    ledger.mark(old, "sent")
    ledger._ids.clear()
    chunk = [keys[1].recipient, keys[2].recipient, keys[4].recipient, "r9@example.org"]
    assert ledger.statuses_of(*draft, chunk) == {
        keys[1].recipient: ("sent", "h1"),
        keys[2].recipient: ("retry", "h1"),
        "r9@example.org": ("sent", "h0"),
    }
    assert set(ledger._ids) == {keys[2]}  # a sent row's id is not kept: it is skipped
    assert ledger._absent == {keys[4]}  # no row yet: its claim inserts without a lookup
    assert ledger.mark_in_flight(keys[4], "h1") and ledger._absent == set()
    assert ledger.mark_in_flight(keys[2], "h1")
    assert not ledger.mark_in_flight(keys[1], "h1")  # found by its key, sent: not claimed again
    assert ledger.mark_in_flight(keys[5], "h1")  # a recipient of no chunk read: looked up, new
