"""Who a mail target mails: CSV readers kept in step with the subscriber store, subscriber
lists and segments, VERP bounce addresses. Counted at a real SMTP server on loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import quote

import lxml.html

from syndicate.ledger import LEDGER_FILE
from syndicate.send import send
from syndicate.subscribers import SubscriberStore
from syndicate.tokens import read_token, signing_key

from .conftest import loopback_smtp
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
