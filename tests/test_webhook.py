"""Webhook targets against a real HTTP server on 127.0.0.1; signatures checked by `standardwebhooks`."""

from __future__ import annotations

import base64
import json
import threading

import pytest
import standardwebhooks.webhooks
from standardwebhooks import Webhook

from syndicate import clock
from syndicate.deliver import Message, MessageKey, make_target
from syndicate.dispatch import dispatch
from syndicate.errors import ConfigError, DeliveryError
from syndicate.ledger import Ledger, sqlite_url

from .conftest import HANG_UP
from .sample_mail import email_for

SECRET = "whsec_" + base64.b64encode(b"a-test-secret-of-24-bytes").decode()
PAYLOAD = {"text": "New article: <Tides> & currents", "link": "https://example.com/articles/tides/"}


def webhook(site, url: str, kind: str = "webhook", **options):
    site.data["targets"]["hook"] = {"type": kind, "url": url, **options}
    target = make_target("hook", site.config())
    target.slept = []
    target.sleep = target.slept.append  # record the waits instead of waiting
    return target


def message(payload=PAYLOAD, recipient: str = "") -> Message:
    return Message(MessageKey("linkedin", "hook", "tides", recipient), "h1", lambda: payload)


def send(target, msg: Message | None = None):
    with target.open() as connection:
        return connection.send(msg or message())


@pytest.fixture(autouse=True)
def _verifier_on_the_seam(monkeypatch) -> None:
    """The receiver checks the signed timestamp's freshness against its own clock: here, as for
    everything in the tests, the SYNDICATE_NOW seam (a real receiver's clock is the real time)."""
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", clock.SeamDatetime)


def test_signed_post_verifies_with_standardwebhooks(site, receiver):
    target = webhook(site, receiver.url, secret=SECRET)
    assert send(target).outcome == "sent"
    assert send(target).outcome == "sent"
    (path, headers, body), (_, again, _) = receiver.requests
    assert path == "/hooks/abc" and headers["Content-Type"] == "application/json"
    assert Webhook(SECRET).verify(body, headers) == PAYLOAD
    assert headers["webhook-id"] == again["webhook-id"]  # receivers deduplicate on it


def test_a_tampered_body_fails_verification(site, receiver):
    send(webhook(site, receiver.url, secret=SECRET))
    _, headers, body = receiver.requests[0]
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(body.replace(b"Tides", b"Tidez"), headers)


def test_5xx_and_429_are_retried_honouring_retry_after(site, receiver):
    receiver.replies.extend([(503, {}), (429, {"Retry-After": "7"}), (200, {})])
    target = webhook(site, receiver.url, secret=SECRET)
    result = send(target)
    assert result.outcome == "sent" and len(receiver.requests) == 3
    first, second = target.slept
    assert 0.5 <= first <= 1.0 and second == 7
    assert len({r[1]["webhook-id"] for r in receiver.requests}) == 1


def test_other_4xx_is_not_retried(site, receiver):
    receiver.replies.append((400, {}))
    target = webhook(site, receiver.url)
    result = send(target)
    assert (result.outcome, result.detail) == ("failed", "HTTP 400 Bad Request")
    assert len(receiver.requests) == 1 and target.slept == []


def test_redirects_are_not_followed(site, receiver):
    receiver.replies.append((302, {"Location": "http://127.0.0.1:9/elsewhere"}))
    result = send(webhook(site, receiver.url))
    assert result.outcome == "failed" and result.detail.startswith("HTTP 302")


def test_gives_up_after_the_retries_and_leaves_it_for_the_next_run(site, receiver):
    receiver.replies.extend([(500, {})] * 3)
    target = webhook(site, receiver.url, retries=2)
    result = send(target)
    assert result.outcome == "retry" and result.detail == "HTTP 500 Internal Server Error after 3 attempts"
    assert len(receiver.requests) == 3 and len(target.slept) == 2


def test_connection_errors_are_retried_and_never_show_the_url(site):
    from .conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/secret-token"
    target = webhook(site, url, kind="slack", retries=2, timeout=2)
    result = send(target)
    assert result.outcome == "retry" and len(target.slept) == 2
    assert "secret-token" not in result.detail and "cannot reach the receiver" in result.detail


def test_slack_preset_escapes_markup(site, receiver):
    assert send(webhook(site, receiver.url, kind="slack")).outcome == "sent"
    _, headers, body = receiver.requests[0]
    assert json.loads(body) == {
        "text": "New article: &lt;Tides&gt; &amp; currents\nhttps://example.com/articles/tides/"
    }
    assert "webhook-signature" not in headers


def test_discord_preset_pings_nobody_and_fits_the_limit(site, receiver):
    long = {"post": {"text": "@everyone " + "x" * 3000, "link": "https://example.com/a/"}}
    assert send(webhook(site, receiver.url, kind="discord"), message(long)).outcome == "sent"
    body = json.loads(receiver.requests[0][2])
    assert body["allowed_mentions"] == {"parse": []} and len(body["content"]) == 2000


def test_an_email_goes_out_as_its_parts(site, receiver):
    msg = Message(
        MessageKey("weekly", "hook", "d1", "a@example.org"), "h", lambda: email_for("a@example.org")
    )
    send(webhook(site, receiver.url), msg)
    body = json.loads(receiver.requests[0][2])
    assert body["subject"] == "digest-1 for a@example.org" and body["html"].startswith("<p>Line 0")


def test_plain_http_is_a_config_error_unless_local(site):
    site.data["targets"]["hook"] = {"type": "webhook", "url": "http://hooks.example.com/x/secret-path"}
    with pytest.raises(ConfigError) as caught:
        site.config()
    assert str(caught.value).startswith(f"{site.config_path}: targets.hook.url: is not https (expected")
    assert "secret-path" not in str(caught.value)  # incoming-webhook URLs are secrets
    site.data["targets"]["hook"]["local"] = True
    assert site.config().targets["hook"].local


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"])
def test_plain_http_to_a_loopback_host_needs_no_flag(site, host):
    site.data["targets"]["hook"] = {"type": "slack", "url": f"http://{host}:8080/x"}
    assert site.config().targets["hook"].url.startswith("http://")


def test_an_untrusted_certificate_fails_on_one_line_without_retries(site, tls_receiver):
    target = webhook(site, tls_receiver.url)
    result = send(target)
    assert result.outcome == "retry" and tls_receiver.requests == [] and target.slept == []
    assert result.detail.startswith("TLS certificate not trusted (expected") and "\n" not in result.detail


def test_ca_file_trusts_a_private_ca(site, tls_receiver, tls):
    assert send(webhook(site, tls_receiver.url, ca_file=str(tls[1]))).outcome == "sent"
    assert len(tls_receiver.requests) == 1


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_tls_false_is_an_explicit_opt_out(site, tls_receiver):
    assert send(webhook(site, tls_receiver.url, verify_tls=False)).outcome == "sent"


def test_a_missing_ca_file_is_named(site, tls_receiver, tmp_path):
    with pytest.raises(DeliveryError, match=r"^targets.hook.ca_file: .*no.pem is not a file"):
        webhook(site, tls_receiver.url, ca_file=str(tmp_path / "no.pem"))


def test_a_malformed_secret_is_named_but_not_shown(site, receiver):
    with pytest.raises(
        DeliveryError, match=r"targets.hook.secret: is not a Standard Webhooks secret"
    ) as caught:
        webhook(site, receiver.url, secret="whsec_not*base64!")
    assert "not*base64" not in str(caught.value)


def test_dispatch_records_webhook_deliveries_once(site, receiver, tmp_path):
    target = webhook(site, receiver.url, secret=SECRET)
    with Ledger(sqlite_url(tmp_path / "ledger.sqlite")) as ledger:
        assert dispatch([message()], target, ledger).sent == 1
        assert dispatch([message()], target, ledger).skipped == 1
    assert len(receiver.requests) == 1


# -- an answer lost after the request went out: `unknown`, never posted again -----------------


def test_an_answer_later_than_the_timeout_is_unknown_and_not_retried(site, receiver):
    receiver.delay = 2.0  # keeps the request, answers after the client gave up
    target = webhook(site, receiver.url, secret=SECRET, timeout=1, retries=3)
    result = send(target)
    assert (result.outcome, result.detail) == (
        "unknown",
        "no answer after the request was sent (ReadTimeout: none within 1 s): the receiver may have it",
    )
    assert len(receiver.requests) == 1 and target.slept == []


def test_a_hang_up_after_the_request_is_unknown_and_not_retried(site, receiver):
    receiver.replies.append(HANG_UP)
    target = webhook(site, receiver.url, retries=3)
    result = send(target)
    assert result.outcome == "unknown" and result.detail.startswith(
        "no answer after the request was sent (RemoteDisconnected)"
    )
    assert len(receiver.requests) == 1 and target.slept == []


def test_a_failure_before_the_request_went_out_is_still_retried(site):
    from .conftest import free_port

    target = webhook(site, f"http://127.0.0.1:{free_port()}/hook", retries=1)
    result = send(target)
    assert result.outcome == "retry" and len(target.slept) == 1


def test_webhook_id_is_the_idempotency_key_signed_or_not(site, receiver):
    receiver.replies.extend([(503, {}), (200, {})])
    target = webhook(site, receiver.url)  # no secret: no signature, still the id
    send(target)
    send(target)
    send(target, message(recipient="someone@example.org"))
    ids = [headers["webhook-id"] for _, headers, _ in receiver.requests]
    assert "webhook-signature" not in receiver.requests[0][1]
    assert ids[0] == ids[1] == ids[2] != ids[3]  # every attempt and every run; one per message


def test_a_stop_during_the_wait_before_a_retry_ends_it_as_retry(site, receiver):
    receiver.replies.extend([(503, {"Retry-After": "30"})] * 3)
    target = webhook(site, receiver.url, retries=2)
    target.sleep = None  # really wait, on the stop event
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with target.open(stop) as connection:
        result = connection.send(message())
    assert (result.outcome, result.detail) == (
        "retry",
        "HTTP 503 Service Unavailable after 1 attempts (stopped before the next)",
    )
    assert len(receiver.requests) == 1
