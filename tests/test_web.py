"""`syndicate serve` over real HTTP: the app in uvicorn on loopback, a SQLite subscriber store in
the test's folder and an aiosmtpd server as the confirmation target."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import quote

import lxml.html
import pytest
import requests

from syndicate import clock
from syndicate.ledger import LEDGER_FILE
from syndicate.send import send as send_api
from syndicate.subscribers import SubscriberStore
from syndicate.tokens import make_token, signing_key

from .conftest import child_env, free_port
from .web_support import Served, confirm_link, links_in, served, text_of, wait_for_mail

ADDRESS = "reader@example.org"


@pytest.fixture
def web(site, smtp_sink):
    with served(site, smtp_sink) as s:
        yield s


def status_of(s: Served, email: str, list_name: str = "weekly") -> str | None:
    with SubscriberStore.from_config(s.config) as store:
        found = store.find(list_name, email)
        return found.status if found else None


def add(s: Served, email: str, status: str = "subscribed", list_name: str = "weekly") -> str:
    with SubscriberStore.from_config(s.config) as store:
        subscriber, _ = store.add(list_name, email, status=status)
        return subscriber.id


def unsubscribe_url(s: Served, subscriber_id: str) -> str:
    return f"{s.url}unsubscribe/{make_token('unsubscribe', subscriber_id, signing_key(s.config))}"


def test_subscribe_by_json_mails_a_link_that_confirms(web):
    answer = requests.post(f"{web.url}subscribe", json={"email": ADDRESS, "name": "Ada"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert status_of(web, ADDRESS) == "unconfirmed"
    [(rcpt, message)] = wait_for_mail(web.sink)
    assert rcpt == ADDRESS
    assert message["From"] == web.config.site.sender
    assert "Confirm your subscription" in message["Subject"]
    link = confirm_link(message)
    assert link.startswith(f"{web.url}confirm/")
    for _ in range(2):  # a mail scanner fetching the link, then the reader opening it
        page = requests.get(link, timeout=10)
        assert page.status_code == 200 and "Confirm my subscription" in page.text
        assert status_of(web, ADDRESS) == "unconfirmed"  # looking is not confirming
    [action] = lxml.html.fromstring(page.text).xpath("//form[@id='confirm']/@action")
    assert action == link
    done = requests.post(action, data={"confirm": "yes"}, allow_redirects=False, timeout=10)
    assert done.status_code == 200 and "You're subscribed" in done.text
    assert status_of(web, ADDRESS) == "subscribed"
    again = requests.get(link, timeout=10)  # the link used: says so, no button
    assert again.status_code == 200 and "You're subscribed" in again.text


def test_subscribe_by_form_to_the_chosen_list(web):
    form = requests.get(f"{web.url}subscribe", timeout=10)
    assert form.status_code == 200
    assert 'name="website"' in form.text  # the honeypot
    assert 'value="monthly"' in form.text  # two lists: a choice
    answer = requests.post(f"{web.url}subscribe", data={"email": ADDRESS, "list": "monthly"}, timeout=10)
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    assert status_of(web, ADDRESS, "monthly") == "unconfirmed"
    assert status_of(web, ADDRESS, "weekly") is None
    wait_for_mail(web.sink)


def test_no_address_in_any_link_of_the_confirmation_email(web):
    requests.post(f"{web.url}subscribe", json={"email": ADDRESS}, timeout=10)
    [(_, message)] = wait_for_mail(web.sink)
    links = links_in(message)
    assert links
    for link in links:
        for form in (ADDRESS, quote(ADDRESS), quote(ADDRESS, safe=""), "reader"):
            assert form not in link


def test_the_same_answer_whatever_the_store_knows(web):
    """New, unconfirmed, subscribed, unsubscribed: one answer, so nobody learns who reads."""
    add(web, "member@example.org")
    add(web, "gone@example.org", status="unsubscribed")
    addresses = ["new@example.org", "new@example.org", "member@example.org", "gone@example.org"]
    json_answers = [requests.post(f"{web.url}subscribe", json={"email": a}, timeout=10) for a in addresses]
    assert {(r.status_code, r.text) for r in json_answers} == {(200, json_answers[0].text)}
    form_answers = [
        requests.post(f"{web.url}subscribe", data={"email": a, "list": "weekly"}, timeout=10)
        for a in addresses
    ]
    assert {(r.status_code, r.text) for r in form_answers} == {(200, form_answers[0].text)}
    # the subscribed reader got no mail; the others each a confirmation per request
    mail = wait_for_mail(web.sink, 6)
    assert "member@example.org" not in {rcpt for rcpt, _ in mail}
    assert status_of(web, "member@example.org") == "subscribed"
    assert status_of(web, "gone@example.org") == "unconfirmed"


def test_a_filled_honeypot_gets_the_same_answer_and_nothing_is_done(web):
    real = requests.post(f"{web.url}subscribe", data={"email": "someone@example.org"}, timeout=10)
    bot = requests.post(
        f"{web.url}subscribe", data={"email": ADDRESS, "website": "http://spam.example"}, timeout=10
    )
    assert (bot.status_code, bot.text) == (real.status_code, real.text)
    assert status_of(web, ADDRESS) is None
    wait_for_mail(web.sink, 1)
    time.sleep(0.5)
    assert [rcpt for rcpt, _ in web.sink.received] == ["someone@example.org"]


def test_an_invalid_address_is_refused_with_its_reason(web):
    answer = requests.post(f"{web.url}subscribe", json={"email": "not an address"}, timeout=10)
    assert answer.status_code == 400
    assert "not a valid email address" in answer.json()["message"]
    page = requests.post(f"{web.url}subscribe", data={"email": "<b>x@@y"}, timeout=10)
    assert page.status_code == 400
    assert "<b>x@@y" not in page.text and "&lt;b&gt;x@@y" in page.text  # escaped, kept in the field
    assert (
        requests.post(f"{web.url}subscribe", json={"email": ADDRESS, "list": "nope"}, timeout=10).status_code
        == 400
    )
    assert (
        requests.post(
            f"{web.url}subscribe", data=b"[1]", headers={"Content-Type": "application/json"}, timeout=10
        ).status_code
        == 400
    )


def test_rate_limited_per_client_ip(site, smtp_sink):
    with served(site, smtp_sink, rate_per_hour=2) as s:
        answers = [
            requests.post(f"{s.url}subscribe", json={"email": f"r{i}@example.org"}, timeout=10)
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert int(answers[2].headers["Retry-After"]) > 0
        assert status_of(s, "r2@example.org") is None


def test_rate_limited_per_address_behind_a_proxy(site, smtp_sink, clock_at):
    """Through a trusted proxy each request comes from another reader's IP: the address limit holds."""
    with served(site, smtp_sink, proxy_headers=True, rate_per_hour=2) as s:

        def post(ip: str, email: str = ADDRESS) -> int:
            headers = {"X-Forwarded-For": ip}
            return requests.post(
                f"{s.url}subscribe", json={"email": email}, headers=headers, timeout=10
            ).status_code

        assert [post("203.0.113.1"), post("203.0.113.2"), post("203.0.113.3")] == [200, 200, 429]
        assert post("203.0.113.3", "other@example.org") == 200  # that IP is under its own limit
        assert post("203.0.113.3", "third@example.org") == 429  # now it is not
        clock_at(clock.now() + timedelta(hours=1, minutes=1))
        assert post("203.0.113.9") == 200  # an hour later: allowed again


def test_confirm_links_expire_and_cannot_be_forged(web, clock_at):
    requests.post(f"{web.url}subscribe", json={"email": ADDRESS}, timeout=10)
    [(_, message)] = wait_for_mail(web.sink)
    link = confirm_link(message)
    token = link.rsplit("/", 1)[1]
    subscriber_id, mac, stamp = token.split(".")
    forged = [
        f"{subscriber_id}.{mac[:-2]}AA.{stamp}",
        f"{subscriber_id}.{mac}.{int(stamp) + 3600}",  # a later expiry
        make_token("unsubscribe", subscriber_id, signing_key(web.config)),  # another purpose
        make_token("confirm", subscriber_id, b"another key", expires=clock.now() + timedelta(hours=1)),
        "garbage",
    ]
    for bad in forged:
        for call in (requests.get, requests.post):
            page = call(f"{web.url}confirm/{bad}", timeout=10)
            assert page.status_code == 400, bad
            assert "not valid" in page.text
    assert status_of(web, ADDRESS) == "unconfirmed"
    clock_at(clock.now() + timedelta(hours=web.config.serve.confirm_hours, minutes=1))
    for call in (requests.get, requests.post):
        expired = call(link, timeout=10)
        assert expired.status_code == 400
        assert "expired" in expired.text
    assert status_of(web, ADDRESS) == "unconfirmed"


def test_one_click_unsubscribe(web):
    """RFC 8058: a POST with List-Unsubscribe=One-Click; 200, no redirect, no cookie, idempotent."""
    url = unsubscribe_url(web, add(web, ADDRESS))
    answer = requests.post(url, data={"List-Unsubscribe": "One-Click"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    assert status_of(web, ADDRESS) == "unsubscribed"
    with SubscriberStore.from_config(web.config) as store:
        assert store.find("weekly", ADDRESS).reason == "one-click"
    again = requests.post(
        url, files={"List-Unsubscribe": (None, "One-Click")}, allow_redirects=False, timeout=10
    )
    assert again.status_code == 200  # multipart/form-data, as RFC 8058 also allows; and again
    assert status_of(web, ADDRESS) == "unsubscribed"


def test_get_never_unsubscribes(web):
    url = unsubscribe_url(web, add(web, ADDRESS))
    for _ in range(3):
        page = requests.get(url, timeout=10)
        assert page.status_code == 200
        assert page.text.count("<form") == 1 and 'method="post"' in page.text
        assert requests.head(url, timeout=10).status_code == 200
    assert status_of(web, ADDRESS) == "subscribed"
    assert ADDRESS not in page.text
    # the page's button posts the form: that unsubscribes
    assert requests.post(url, data={"unsubscribe": "yes"}, timeout=10).status_code == 200
    assert status_of(web, ADDRESS) == "unsubscribed"
    with SubscriberStore.from_config(web.config) as store:
        assert store.find("weekly", ADDRESS).reason == "unsubscribe page"


def test_one_click_leaves_a_complaint_as_it_is(web):
    url = unsubscribe_url(web, add(web, ADDRESS, status="complained"))
    answer = requests.post(url, data={"List-Unsubscribe": "One-Click"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 200
    assert status_of(web, ADDRESS) == "complained"


def test_invalid_unsubscribe_tokens_are_400(web):
    subscriber_id = add(web, ADDRESS)
    confirm_token = make_token(
        "confirm", subscriber_id, signing_key(web.config), expires=clock.now() + timedelta(hours=1)
    )
    for token in ("nope", f"{subscriber_id}.AAAA", confirm_token):
        assert requests.get(f"{web.url}unsubscribe/{token}", timeout=10).status_code == 400
        posted = requests.post(
            f"{web.url}unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10
        )
        assert posted.status_code == 400
    assert status_of(web, ADDRESS) == "subscribed"
    assert requests.get(f"{web.url}unsubscribe", timeout=10).status_code == 200  # how to unsubscribe


def test_security_headers_on_every_page(web):
    url = unsubscribe_url(web, add(web, ADDRESS))
    for answer in (
        requests.get(f"{web.url}subscribe", timeout=10),
        requests.post(f"{web.url}subscribe", json={"email": "x@example.org"}, timeout=10),
        requests.get(url, timeout=10),
        requests.get(f"{web.url}confirm/bad", timeout=10),
        requests.get(f"{web.url}no-such-page", timeout=10),
        requests.get(f"{web.url}healthz", timeout=10),
    ):
        headers = answer.headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Set-Cookie" not in headers
        assert "server" not in {name.lower() for name in headers}
    assert requests.get(f"{web.url}subscribe", timeout=10).headers["Cache-Control"] == "no-store"
    assert requests.get(f"{web.url}no-such-page", timeout=10).status_code == 404
    assert requests.get(f"{web.url}healthz", timeout=10).text == "ok"
    style = requests.get(f"{web.url}style.css", timeout=10)
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/css")


def test_templates_are_overridden_by_the_sites_own(site, smtp_sink):
    folder = site.root / "templates" / "web"
    folder.mkdir(parents=True)
    (folder / "error.html").write_text("<p>our own: {{ title }}</p>", encoding="utf-8")
    site.data["templates"] = "templates"
    with served(site, smtp_sink) as s:
        page = requests.get(f"{s.url}confirm/bad", timeout=10)
        assert page.status_code == 400
        assert page.text == "<p>our own: This link does not work</p>"
        assert "Subscribe" in requests.get(f"{s.url}subscribe", timeout=10).text  # the rest: shipped


def test_archive_shows_a_sent_email_without_reader_data(email_site, smtp_sink):
    config = email_site.config()
    outcome = send_api(config, select="all", channels=("weekly",))
    assert outcome.ok
    with sqlite3.connect(config.state_dir / LEDGER_FILE) as db:
        [(channel, draft_key)] = db.execute("select channel, draft_key from draft_bodies").fetchall()
    with served(email_site, smtp_sink) as s:
        page = requests.get(f"{s.url}archive/{channel}/{quote(draft_key)}", timeout=10)
        assert page.status_code == 200, page.text
        assert "__syndicate_" not in page.text
        assert "a@example.com" not in page.text  # the mail target's reader
        assert f'href="{s.url}unsubscribe"' in page.text
        csp = page.headers["Content-Security-Policy"]
        assert "script" not in csp and "form-action 'none'" in csp
        assert requests.get(f"{s.url}archive/{channel}/nope", timeout=10).status_code == 404
        assert requests.get(f"{s.url}archive/linkedin/{quote(draft_key)}", timeout=10).status_code == 404


def _started(*args: str) -> subprocess.Popen[str]:
    """`python -m syndicate ARGS` in its own process, its output kept."""
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", *args],
        env=child_env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _healthy(process: subprocess.Popen[str], port: int) -> None:
    """Wait until the process answers /healthz on `port` (failing with its output if it ends)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            break
        except requests.ConnectionError:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, f"{process.args} did not answer"
            time.sleep(0.1)
    assert answer.text == "ok"


def test_the_serve_command_serves(site, smtp_sink):
    """`syndicate serve --port` in its own process answers until it is stopped."""
    from .web_support import serve_config

    port = free_port()
    serve_config(site, smtp_sink[1], port)
    process = _started("serve", "--config", str(site.config_path), "--port", str(port))
    try:
        _healthy(process, port)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    # uvicorn shuts down cleanly, then lets SIGTERM end the process as the signal would
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output


def test_daemon_serve_runs_the_web_service_beside_the_scheduler(site, smtp_sink):
    """`syndicate daemon --serve`: the readers' pages answer while the daemon runs; SIGTERM
    stops both (the daemon's own clean exit, 0)."""
    from .web_support import serve_config

    port = free_port()
    config = serve_config(site, smtp_sink[1], port, port=port)  # daemon --serve listens at serve.port
    process = _started("--config", str(site.config_path), "daemon", "--serve")
    try:
        _healthy(process, port)
        subscriber = add(Served(f"http://127.0.0.1:{port}/", config, smtp_sink[0]), ADDRESS)
        url = f"http://127.0.0.1:{port}/unsubscribe/{make_token('unsubscribe', subscriber, signing_key(config))}"
        assert requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output
    with SubscriberStore.from_config(config) as store:
        assert store.find("weekly", ADDRESS).status == "unsubscribed"


def test_serve_without_a_serve_section_is_one_line(site):
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "serve", "--config", str(site.config_path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: serve: is missing (expected a serve: section with public_url)"


def test_confirmation_text_names_the_site(web):
    requests.post(f"{web.url}subscribe", json={"email": ADDRESS}, timeout=10)
    [(_, message)] = wait_for_mail(web.sink)
    assert web.config.site.name in text_of(message)
    assert message["Auto-Submitted"] == "auto-generated"


def test_oversized_and_odd_requests_are_refused_unread(web):
    big = {"email": ADDRESS, "name": "x" * 20_000}
    assert requests.post(f"{web.url}subscribe", json=big, timeout=10).status_code == 400
    assert status_of(web, ADDRESS) is None
    assert requests.put(f"{web.url}subscribe", json={"email": ADDRESS}, timeout=10).status_code == 405
    assert requests.post(f"{web.url}subscribe", json={"email": ""}, timeout=10).json()["message"] == (
        "Please enter your email address."
    )


def test_rate_limit_window_and_sweep():
    from syndicate.web.limits import SWEEP_EVERY, RateLimit

    start = clock.now()
    limit = RateLimit(2)
    assert [limit.allow("a", start + timedelta(minutes=m)) for m in (0, 10, 20)] == [True, True, False]
    assert limit.retry_after("a", start + timedelta(minutes=20)) == 40 * 60 + 1
    assert limit.allow("a", start + timedelta(minutes=61))  # the first one left the window
    later = start + timedelta(hours=3)
    for i in range(SWEEP_EVERY):
        limit.allow(f"k{i}", later)
    assert "a" not in limit._hits  # forgotten once all its requests were past the window


def test_a_broken_template_is_a_503_page_and_a_log_line(site, smtp_sink, caplog):
    folder = site.root / "templates" / "web"
    folder.mkdir(parents=True)
    (folder / "subscribe.html").write_text("{{ nope.nothing }}", encoding="utf-8")
    site.data["templates"] = "templates"
    with served(site, smtp_sink) as s:
        page = requests.get(f"{s.url}subscribe", timeout=10)
        assert page.status_code == 503
        assert "try again later" in page.text
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert any("subscribe.html" in record.getMessage() for record in caplog.records)


def test_esp_webhooks_are_verified_then_applied(site, smtp_sink, monkeypatch):
    """`POST /webhooks/postmark`: wrong credentials 403 and nothing done; right ones bounce the reader."""
    monkeypatch.setenv("HOOK_PASSWORD", "hook-password-0123")
    webhooks = {"postmark": {"username": "hook", "password": "${HOOK_PASSWORD}"}}
    with served(site, smtp_sink, webhooks=webhooks) as s:
        add(s, ADDRESS)
        event = {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "Email": ADDRESS,
            "Details": "550 no such user",
        }
        url = f"{s.url}webhooks/postmark"
        refused = requests.post(url, json=event, auth=("hook", "wrong"), timeout=10)
        assert refused.status_code == 403
        assert "hook-password" not in refused.text
        assert status_of(s, ADDRESS) == "subscribed"
        assert requests.post(f"{s.url}webhooks/mailgun", json=event, timeout=10).status_code == 404
        done = requests.post(url, json=event, auth=("hook", "hook-password-0123"), timeout=10)
        assert done.status_code == 200, done.text
        assert status_of(s, ADDRESS) == "bounced"


def test_archive_markers_get_neutral_values(site, smtp_sink):
    from syndicate.compose.email import PLACEHOLDERS
    from syndicate.personal import Field
    from syndicate.web.archive import neutralise

    with served(site, smtp_sink) as s:
        page = " | ".join(
            [
                PLACEHOLDERS["greeting"],
                PLACEHOLDERS["email"],
                Field("first_name", "there & you"),
                Field("city"),
                f'<a href="{PLACEHOLDERS["unsubscribe_url"]}">',
            ]
        )
        assert neutralise(page, s.config) == f'Hello, |  | there &amp; you |  | <a href="{s.url}unsubscribe">'


def test_https_public_url_adds_strict_transport_security():
    import asyncio

    from syndicate.web.app import SecurityHeaders

    async def app(scope, receive, send):
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"cache-control", b"max-age=1")]}
        )
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def call(public_url: str) -> dict[bytes, bytes]:
        sent.clear()
        await SecurityHeaders(app, public_url)({"type": "http"}, None, send)
        return dict(sent[0]["headers"])

    https = asyncio.run(call("https://news.example.com/"))
    assert https[b"strict-transport-security"] == b"max-age=31536000"
    assert b"https://news.example.com" in https[b"content-security-policy"]
    assert https[b"cache-control"] == b"max-age=1"  # the route's own wins
    assert b"strict-transport-security" not in asyncio.run(call("http://127.0.0.1:8080/"))


def test_a_port_in_use_is_a_one_line_config_error(site, smtp_sink):
    import socket

    from syndicate.errors import ConfigError
    from syndicate.web.server import ServerThread, server_config

    from .web_support import serve_config

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = serve_config(site, smtp_sink[1], port)
        with pytest.raises(ConfigError, match=rf"serve: cannot listen on 127\.0\.0\.1:{port} "):
            ServerThread(server_config(config, "127.0.0.1", port, False)).start()
