"""`syndicate serve` in a real browser: Debian's chromium, headless, driven by selenium through
Debian's chromedriver (never one Selenium Manager would download). A reader subscribes with the
form, follows the link the confirmation email brings, then opens the unsubscribe page (which
changes nothing by itself) and presses its button."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.subscribers import SubscriberStore
from syndicate.tokens import make_token, signing_key

from .conftest import CHROMIUM_FLAGS
from .web_support import confirm_link, served, wait_for_mail

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
ADDRESS = "browser.reader@example.org"

pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER.exists() and CHROMIUM.exists()),
    reason="chromium and its driver are not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument("--headless=new" if flag == "--headless" else flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_argument("--window-size=1000,800")
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(15)  # a click that submits a form returns before the next page is there
    try:
        yield driver
    finally:
        driver.quit()


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
