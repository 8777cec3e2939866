"""`syndicate serve` in a real browser: Debian's chromium, headless, driven by selenium through
Debian's chromedriver (never one Selenium Manager would download). A reader subscribes with the
form, follows the link the confirmation email brings and presses its button, then opens the unsubscribe page (which
changes nothing by itself) and presses its button. The whole loop: the confirmed reader gets
the next send, the List-Unsubscribe URL of that email takes a one-click POST, the send after
skips them."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import quote

import lxml.html
import pytest
import requests

from syndicate import clock
from syndicate.send import send
from syndicate.subscribers import SubscriberStore
from syndicate.tokens import make_token, signing_key

from .conftest import chromium_driver, loopback_smtp, needs_chromedriver
from .test_send import write_articles
from .web_support import confirm_link, served, wait_for_mail

ADDRESS = "browser.reader@example.org"

pytestmark = needs_chromedriver


@pytest.fixture
def browser(tmp_path):
    with chromium_driver(tmp_path / "profile", 1000, 800) as driver:
        driver.implicitly_wait(15)  # a click that submits a form returns before the next page is there
        yield driver


def status(config, email: str) -> str | None:
    with SubscriberStore.from_config(config) as store:
        found = store.find("weekly", email)
        return found.status if found else None


def test_subscribe_confirm_and_unsubscribe_in_chromium(site, smtp_sink, browser):
    from selenium.webdriver.common.by import By

    with served(site, smtp_sink) as s:
        browser.get(f"{s.url}subscribe")
        assert "Subscribe" in browser.title
        honeypot = browser.find_element(By.ID, "website")
        assert not honeypot.is_displayed()  # out of sight: only a bot fills it in
        browser.find_element(By.ID, "email").send_keys(ADDRESS)
        browser.find_element(By.CSS_SELECTOR, "#subscribe button[type=submit]").click()
        assert browser.find_element(By.ID, "sent").text == "Check your inbox"
        assert status(s.config, ADDRESS) == "unconfirmed"

        [(rcpt, message)] = wait_for_mail(s.sink)
        assert rcpt == ADDRESS
        browser.get(confirm_link(message))
        assert status(s.config, ADDRESS) == "unconfirmed"  # opening the link only asks
        browser.find_element(By.CSS_SELECTOR, "#confirm button[type=submit]").click()
        assert browser.find_element(By.ID, "confirmed").text == "You're subscribed"
        assert status(s.config, ADDRESS) == "subscribed"

        with SubscriberStore.from_config(s.config) as store:
            subscriber = store.find("weekly", ADDRESS)
        assert subscriber is not None
        token = make_token("unsubscribe", subscriber.id, signing_key(s.config))
        browser.get(f"{s.url}unsubscribe/{token}")
        buttons = browser.find_elements(By.CSS_SELECTOR, "button")
        assert [b.text for b in buttons] == ["Unsubscribe"]
        assert status(s.config, ADDRESS) == "subscribed"  # looking is not unsubscribing
        buttons[0].click()
        assert browser.find_element(By.ID, "unsubscribed").text == "You're unsubscribed"
        assert status(s.config, ADDRESS) == "unsubscribed"
        assert browser.get_cookies() == []


def _html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return part.get_content()


def _urls(message: EmailMessage) -> list[str]:
    """Every URL the reader's client sees: in the headers, the text part and the HTML's attributes."""
    text = message.get_body(("plain",))
    assert text is not None
    found = re.findall(
        r"(?:https?|mailto):[^\s<>\"']+", str(message["List-Unsubscribe"]) + text.get_content()
    )
    page = lxml.html.fromstring(_html_of(message))
    return found + [value for value in page.xpath("//@href | //@src") if ":" in value]


def test_the_whole_loop_subscribe_confirm_receive_one_click_and_no_more_mail(site, smtp_sink, browser):
    """The next send reaches the confirmed reader; a one-click POST to the List-Unsubscribe URL of
    that very email (as a mailbox provider makes it) answers 200 and the send after skips them,
    while the reader's browser GETting that URL never unsubscribes. Counted at the SMTP server."""
    from selenium.webdriver.common.by import By

    sink, port = smtp_sink
    now = clock.now()
    site.data["site"]["unsubscribe_url"] = None  # syndicate serve answers it
    site.data["targets"]["newsletter"] = loopback_smtp(port, {"list": "weekly"}, retry_delay=0.01)
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.data["channels"]["weekly"]["schedule"] = {"every": "day", "at": "08:00"}  # a digest a day
    write_articles(site, date=(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with served(site, smtp_sink) as s:
        with SubscriberStore.from_config(s.config) as store:
            store.add("weekly", "steady.reader@example.org")
        browser.get(f"{s.url}subscribe")
        browser.find_element(By.ID, "email").send_keys(ADDRESS)
        browser.find_element(By.CSS_SELECTOR, "#subscribe button[type=submit]").click()
        assert browser.find_element(By.ID, "sent").text == "Check your inbox"
        [(_, confirmation)] = wait_for_mail(s.sink)
        browser.get(confirm_link(confirmation))
        browser.find_element(By.CSS_SELECTOR, "#confirm button[type=submit]").click()
        assert browser.find_element(By.ID, "confirmed").text == "You're subscribed"

        assert send(s.config, select="all", now=now).ok
        assert sink.copies() == {ADDRESS: 2, "steady.reader@example.org": 1}  # confirmation + digest
        [(_, digest)] = [(rcpt, m) for rcpt, m in wait_for_mail(sink, 3) if rcpt == ADDRESS][1:]
        assert str(digest["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        [web] = [link.strip(" <>") for link in str(digest["List-Unsubscribe"]).split(",")]
        assert web.startswith(f"{s.url}unsubscribe/")
        page = lxml.html.fromstring(_html_of(digest))
        assert page.xpath("//a[normalize-space(.)='Unsubscribe']/@href") == [web]
        for url in _urls(digest):
            assert ADDRESS not in url and quote(ADDRESS) not in url and "browser.reader" not in url, url

        browser.get(web)  # what a link scanner or the reader's browser does: look, not act
        assert [b.text for b in browser.find_elements(By.CSS_SELECTOR, "button")] == ["Unsubscribe"]
        assert status(s.config, ADDRESS) == "subscribed"
        answer = requests.post(
            web,
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 200 and "set-cookie" not in answer.headers
        assert status(s.config, ADDRESS) == "unsubscribed"

        site.article(
            "later.md",
            f"---\ntitle: Later\npublish_date: '{(now + timedelta(days=1)).isoformat()}'\n---\nLater on.\n",
        )
        assert send(site.config(), select="all", now=now + timedelta(days=2)).ok
        assert sink.copies() == {ADDRESS: 2, "steady.reader@example.org": 2}
