"""Who a mail target mails: CSV readers kept in step with the subscriber store, subscriber
lists and segments, VERP bounce addresses. Counted at a real SMTP server on loopback."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import SimpleNamespace
from urllib.parse import quote

import lxml.html
import pytest
from sqlalchemy import event

from syndicate.ledger import LEDGER_FILE
from syndicate.send import send
from syndicate.subscribers import SubscriberStore
from syndicate.tokens import read_token, signing_key

from .conftest import free_port, loopback_smtp
from .test_send import write_articles

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _newsletter(site, port: int, recipients) -> None:
    site.data["targets"]["newsletter"] = loopback_smtp(port, recipients, retry_delay=0.01)
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.data["channels"]["weekly"]["schedule"] = {"every": "day", "at": "08:00"}
    site.write_config()


def _unsubscribe_token(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    web = str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")
    return web.rpartition("token=")[2]


def test_a_csv_reader_who_unsubscribes_is_not_mailed_by_the_next_send(site, smtp_sink):
    sink, port = smtp_sink
    csv_file = site.root / "readers.csv"
    csv_file.write_text("email,name\nann@example.org,Ann\nbob@example.org,Bob\n", encoding="utf-8")
    _newsletter(site, port, csv_file)
    write_articles(site, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    config = site.config()
    assert send(config, select="all", now=NOW).ok
    assert sink.copies() == {"ann@example.org": 1, "bob@example.org": 1}
    raw = next(body for rcpt, body in sink.received if rcpt == "bob@example.org")
    assert b"bob%40" not in raw and b"bob@example.org" not in raw.split(b"\r\n\r\n")[0].split(b"To:")[0]
    with SubscriberStore.from_config(config) as store:
        bob = store.find("newsletter", "bob@example.org")
        assert bob is not None and bob.status == "subscribed" and bob.source == "csv"
        assert read_token("unsubscribe", _unsubscribe_token(raw), signing_key(config), NOW) == bob.id
        store.set_status(bob.id, "unsubscribed", reason="one-click")
    site.article("later.md", "---\ntitle: Later\npublish_date: '2026-12-01T09:00:00Z'\n---\nLater on.\n")
    assert send(site.config(), select="all", now=NOW + timedelta(days=2)).ok
    assert sink.copies() == {"ann@example.org": 2, "bob@example.org": 1}


def test_a_subscriber_list_segment_mails_only_matching_subscribed_readers(site, smtp_sink):
    sink, port = smtp_sink
    _newsletter(site, port, {"list": "members", "where": {"plan": ["pro", "team"]}})
    write_articles(site, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    config = site.config()
    with SubscriberStore.from_config(config) as store:
        store.add("members", "pro@example.org", attributes={"plan": "pro"})
        store.add("members", "team@example.org", attributes={"plan": "team"})
        store.add("members", "free@example.org", attributes={"plan": "free"})
        store.add("members", "gone@example.org", attributes={"plan": "pro"}, status="unsubscribed")
        store.request("members", "new@example.org", attributes={"plan": "pro"})  # unconfirmed
        store.add("others", "other@example.org", attributes={"plan": "pro"})
    assert send(config, select="all", now=NOW).ok
    assert sink.copies() == {"pro@example.org": 1, "team@example.org": 1}


def test_verp_sends_each_reader_s_bounces_to_an_address_naming_them(site, smtp_sink):
    sink, port = smtp_sink
    _newsletter(site, port, ["ann@example.org"])
    site.data["site"].update({"return_path": "bounces@mail.example.com", "verp": True})
    write_articles(site, count=1, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    config = site.config()
    assert send(config, select="all", now=NOW).ok
    with SubscriberStore.from_config(config) as store:
        ann = store.find("newsletter", "ann@example.org")
    assert ann is not None
    assert sink.envelope_senders["ann@example.org"] == f"bounces+{ann.id}@mail.example.com"
    raw = sink.received[0][1]
    assert b"From: Test Weekly <news@example.com>" in raw  # the visible From stays the sender


def test_without_verp_bounces_go_to_the_return_path_not_the_from_mailbox(site, smtp_sink):
    sink, port = smtp_sink
    _newsletter(site, port, ["ann@example.org"])
    site.data["site"]["return_path"] = "bounces@mail.example.com"
    write_articles(site, count=1, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    assert send(site.config(), select="all", now=NOW).ok
    assert sink.envelope_senders["ann@example.org"] == "bounces@mail.example.com"


def test_a_dry_run_writes_no_store_and_no_ledger(site, smtp_sink):
    _, port = smtp_sink
    _newsletter(site, port, ["ann@example.org"])
    write_articles(site, count=1, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    config = site.config()
    outcome = send(config, select="all", now=NOW, dry_run=True)
    assert outcome.ok
    assert not (config.state_dir / LEDGER_FILE).exists()


def test_a_channel_segment_carries_only_articles_with_its_tags(site, smtp_sink):
    sink, port = smtp_sink
    _newsletter(site, port, ["ann@example.org"])
    site.data["channels"]["letters"] = {
        "kind": "email",
        "mode": "single",
        "articles": {"tags": ["Product"]},
        "targets": ["newsletter"],
    }
    site.data["channels"]["weekly"]["articles"] = {"tags": ["product"]}
    site.write_config()
    for slug, tags in (("launch", "[product, news]"), ("hiring", "[team]")):
        site.article(
            f"{slug}.md",
            f"---\ntitle: {slug}\ntags: {tags}\npublish_date: '2026-11-29T09:00:00Z'\n---\nText.\n",
        )
    outcome = send(site.config(), select="all", now=NOW, channels=["letters", "weekly"])
    assert outcome.ok
    assert sorted(s.draft_key for s in outcome.sends) == ["letters:launch", "weekly:2026-11-30"]
    assert [a.name for a in outcome.sends[-1].articles] == ["launch"]
    subjects = [message_from_bytes(raw, policy=policy.default)["Subject"] for _, raw in sink.received]
    assert "launch" in subjects and all("hiring" not in s for s in subjects)


READERS = {"ann+news@example.org": "Ann", "o'brien@example.org": "Pat O'Brien", "zoe.reader@example.org": ""}


def _urls(message: EmailMessage) -> list[str]:
    """Every URL a mail client shows or follows: headers, the text part, the HTML's attributes."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    headers = " ".join(str(message[name]) for name in ("List-Unsubscribe", "List-Post") if message[name])
    found = re.findall(r"(?:https?|mailto):[^\s<>\"']+", headers + " " + text.get_content())
    return found + [v for v in lxml.html.fromstring(html.get_content()).xpath("//@href | //@src") if ":" in v]


def test_every_email_through_smtp_unsubscribes_in_one_click_and_no_url_holds_an_address(site, smtp_sink):
    """Digests and single emails to readers with awkward addresses: each message the server got has
    List-Unsubscribe (https and mailto) with List-Unsubscribe-Post, its footer link labelled
    Unsubscribe is that https URL, and no URL anywhere in it carries the reader's address."""
    sink, port = smtp_sink
    csv_file = site.root / "readers.csv"
    csv_file.write_text(
        "email,name\n" + "".join(f'{address},"{name}"\n' for address, name in READERS.items()),
        encoding="utf-8",
    )
    _newsletter(site, port, csv_file)
    site.data["site"]["unsubscribe_mailto"] = "leave@example.com"
    site.data["channels"]["letters"] = {"kind": "email", "mode": "single", "targets": ["newsletter"]}
    site.write_config()
    write_articles(site, count=2, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    assert send(site.config(), select="all", now=NOW, channels=["letters", "weekly"]).ok
    assert sink.copies() == dict.fromkeys(READERS, 3)  # a digest and two single emails each
    for rcpt, raw in sink.received:
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        web, mailto = (link.strip(" <>") for link in str(message["List-Unsubscribe"]).split(","))
        assert web.startswith("https://example.com/unsubscribe?token=")
        assert mailto.startswith("mailto:leave@example.com?subject=unsubscribe%20")
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",))
        assert html is not None
        page = lxml.html.fromstring(html.get_content())
        assert page.xpath("//a[normalize-space(.)='Unsubscribe']/@href") == [web], rcpt
        local = rcpt.partition("@")[0]
        for url in _urls(message):
            assert local not in url and quote(local) not in url and quote(rcpt, safe="") not in url, url


# -- a long list, read in chunks ------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4: a list of a few dozen readers spans many, as a million spans 1,000-reader
    ones. Records every page the store is read in, every chunk the ledger is asked about, and
    refuses the whole-draft `Ledger.statuses` and any OFFSET query."""
    from syndicate import readers, subscribers
    from syndicate.ledger import Ledger

    monkeypatch.setattr(readers, "CHUNK", 4)
    monkeypatch.setattr(sys.modules["syndicate.dispatch"], "CHUNK", 4)
    seen = SimpleNamespace(pages=[], asked=[], statements=[])
    pages, statuses_of = subscribers.SubscriberStore.pages, Ledger.statuses_of

    def counted_pages(self, *args, **kwargs):
        for page in pages(self, *args, **kwargs):
            seen.pages.append(len(page))
            yield page

    def counted_statuses_of(self, channel, target, draft_key, recipients):
        if target == "newsletter":
            seen.asked.append(sorted(recipients))
        return statuses_of(self, channel, target, draft_key, recipients)

    def whole_draft(*_args, **_kwargs):
        raise AssertionError("a send asked for every row of a draft at once")

    def watch(conn, cursor, statement, parameters, context, executemany):
        if "FROM subscribers" in statement:
            seen.statements.append((statement, parameters))

    real_init = subscribers.SubscriberStore.__init__

    def init(self, url):
        real_init(self, url)
        event.listen(self.engine, "before_cursor_execute", watch)

    monkeypatch.setattr(subscribers.SubscriberStore, "pages", counted_pages)
    monkeypatch.setattr(subscribers.SubscriberStore, "__init__", init)
    monkeypatch.setattr(Ledger, "statuses_of", counted_statuses_of)
    monkeypatch.setattr(Ledger, "statuses", whole_draft)
    return seen


def _list_site(site, port: int, count: int) -> None:
    _newsletter(site, port, {"list": "members", "where": {"plan": ["pro"]}})
    write_articles(site, count=1, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    with SubscriberStore.from_config(site.config()) as store:
        for n in range(count):
            store.add("members", f"r{n:03d}@example.org", attributes={"plan": "pro" if n % 5 else "free"})
        store.add("members", "gone@example.org", attributes={"plan": "pro"}, status="unsubscribed")


def test_a_list_of_many_chunks_reaches_every_reader_once_and_a_rerun_sends_nothing(
    site, smtp_sink, small_chunks
):
    sink, port = smtp_sink
    _list_site(site, port, 37)
    suppression = site.root / "suppressed.csv"
    suppression.write_text("email\nR001@example.org\n", encoding="utf-8")
    site.data["targets"]["newsletter"]["suppression"] = str(suppression)
    site.write_config()
    expected = {f"r{n:03d}@example.org" for n in range(37) if n % 5} - {"r001@example.org"}
    outcome = send(site.config(), select="all", now=NOW)
    assert outcome.ok and outcome.totals()["newsletter"]["sent"] == len(expected) == 28
    assert sink.copies() == dict.fromkeys(expected, 1)
    readers = outcome.recipients["newsletter"]
    assert len(readers) == 28 and readers.suppressed == 1 and readers.problems == []
    # The store was read in keyset pages of 4 (the survey, then the send), never with OFFSET.
    assert max(small_chunks.pages) == 4 and sum(small_chunks.pages) == 2 * 37
    listing = [(s, p) for s, p in small_chunks.statements if "subscribers.seq >" in s]
    assert len(listing) == 2 * 10  # 10 pages a pass: 9 full, then one of 1 that ends it
    # SQLite's dialect always writes `LIMIT ? OFFSET ?`: the offset is 0, the keyset moves on.
    assert all(s.endswith("LIMIT ? OFFSET ?") and p[-2:] == (4, 0) for s, p in listing)
    assert [p[1] for s, p in listing[:10]] == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
    # The ledger was asked about each chunk of the draft, never about the whole draft.
    asked = small_chunks.asked
    assert max(map(len, asked)) <= 4 and len(asked) >= 7
    assert sorted(who for chunk in asked for who in chunk) == sorted(expected)

    small_chunks.asked.clear()
    again = send(site.config(), select="all", now=NOW)
    assert again.ok and again.totals()["newsletter"]["sent"] == 0
    assert again.totals()["newsletter"]["skipped"] == 28
    assert sink.copies() == dict.fromkeys(expected, 1)
    assert max(map(len, small_chunks.asked)) <= 4


def test_a_csv_address_listed_again_chunks_later_gets_one_message(site, smtp_sink, small_chunks):
    sink, port = smtp_sink
    rows = [f"reader{n}@example.org,Reader {n}" for n in range(10)]
    rows.insert(9, "READER1@Example.org,Again")  # line 11, two chunks after its first, on line 3
    rows.insert(4, "not an address,Nobody")  # line 6
    csv_file = site.root / "readers.csv"
    csv_file.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    _newsletter(site, port, csv_file)
    write_articles(site, count=1, date=(NOW - timedelta(days=1)).strftime("%Y-%m-%d") + "T0{n}:00:00Z")
    config = site.config()

    dry = send(config, select="all", now=NOW, dry_run=True)
    assert len(dry.recipients["newsletter"]) == 10 and sink.copies() == {}
    assert not (config.state_dir / LEDGER_FILE).exists()  # read, never written

    outcome = send(config, select="all", now=NOW)
    assert outcome.ok and sink.copies() == {f"reader{n}@example.org": 1 for n in range(10)}
    problems = [str(p) for p in outcome.recipient_problems]  # each once: the survey's
    assert problems == [
        f"{csv_file}:6: 'not an address' contains spaces or control characters",
        f"{csv_file}:12: READER1@example.org is listed twice (first on line 3); sending once",
    ]
    with SubscriberStore.from_config(config) as store:  # recorded on the real send
        assert len(list(store.subscribers("newsletter"))) == 10
        gone = store.find("newsletter", "reader7@example.org")
        assert gone is not None
        store.set_status(gone.id, "bounced", reason="550")
    site.article("later.md", "---\ntitle: Later\npublish_date: '2026-12-01T09:00:00Z'\n---\nLater on.\n")
    later = send(site.config(), select="all", now=NOW + timedelta(days=2))
    assert later.ok and later.recipients["newsletter"].suppressed == 1
    assert sink.copies() == {f"reader{n}@example.org": 1 if n == 7 else 2 for n in range(10)}


def test_readers_are_read_as_they_are_iterated_not_all_at_once(site, small_chunks):
    from syndicate.readers import Readers

    _list_site(site, free_port(), 40)
    config = site.config()
    readers = Readers("newsletter", config.targets["newsletter"], config, write=False)
    assert len(readers) == 32  # the survey read every page
    small_chunks.pages.clear()
    stream = iter(readers)
    first = [next(stream) for _ in range(4)]
    assert [r.email for r in first][:1] == ["r001@example.org"]
    assert len(small_chunks.pages) <= 2  # one page, and the next only when it is needed
    rest = list(stream)
    assert len(first) + len(rest) == 32 and len(small_chunks.pages) == 10


def test_seen_addresses_remembers_each_first_line_past_growing():
    from syndicate.recipients import SeenAddresses

    seen = SeenAddresses(expected=8)
    assert [seen.add(f"a{n}@example.org", n + 2) for n in range(5000)] == [None] * 5000
    assert seen.add("a4321@example.org", 9999) == 4323 and len(seen) == 5000
    assert seen.first_line("a17@example.org") == 19 and seen.first_line("b@example.org") is None


def test_a_whole_list_is_counted_by_the_database_and_read_once(site, small_chunks):
    from syndicate.readers import Readers

    _list_site(site, free_port(), 10)
    site.data["targets"]["newsletter"]["recipients"] = {"list": "members"}
    site.write_config()
    config = site.config()
    readers = Readers("newsletter", config.targets["newsletter"], config, write=False)
    assert len(readers) == 10 and small_chunks.pages == []  # no segment: a COUNT, no page read
    assert len(list(readers)) == 10 and small_chunks.pages == [4, 4, 2]
