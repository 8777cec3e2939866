"""The SMTP target against real aiosmtpd servers on 127.0.0.1 (plain, STARTTLS + AUTH, SSL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.smtp import AuthResult

from syndicate.deliver import make_target
from syndicate.errors import ConfigError, DeliveryError
from syndicate.send import send

from .conftest import SmtpSink, loopback_smtp, running_sink
from .sample_mail import messages_for
from .test_send import write_articles

SEND_NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)

USER, PASSWORD = "mailer", "s3cret-pass-phrase"


def smtp_config(site, port: int, **options):
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["a@example.org"], **{"timeout": 5, **options})
    return site.config()


def send_all(target, addresses):
    with target.open() as connection:
        return [connection.send(m) for m in messages_for(addresses)], connection


def test_plain_send_carries_crlf_and_the_site_sender(site, smtp_sink):
    sink, port = smtp_sink
    target = make_target("newsletter", smtp_config(site, port))
    results, _ = send_all(target, ["one@example.org", "two@example.org"])
    assert [r.outcome for r in results] == ["sent", "sent"]
    assert sorted(sink.copies()) == ["one@example.org", "two@example.org"]
    raw = sink.received[0][1]
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_one_refused_recipient_fails_alone_and_the_connection_goes_on(site, smtp_sink):
    sink, port = smtp_sink
    sink.rcpt_reply = lambda address, attempt: (
        "550 5.1.1 no such user" if address.startswith("gone") else None
    )
    target = make_target("newsletter", smtp_config(site, port))
    results, connection = send_all(target, ["a@example.org", "gone@example.org", "b@example.org"])
    assert [r.outcome for r in results] == ["sent", "failed", "sent"]
    assert results[1].detail.startswith("550 5.1.1")
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}
    assert connection.connects == 1 and sink.rsets >= 1


def test_4xx_is_a_retry_not_a_failure(site, smtp_sink):
    sink, port = smtp_sink
    sink.rcpt_reply = lambda address, attempt: "451 4.7.1 greylisted, try later" if attempt == 1 else None
    target = make_target("newsletter", smtp_config(site, port))
    results, _ = send_all(target, ["a@example.org", "a@example.org"])
    assert [r.outcome for r in results] == ["retry", "sent"]


def test_reconnects_when_the_server_drops_and_every_per_connection_messages(site, smtp_sink):
    sink, port = smtp_sink
    sink.close_after = 4
    target = make_target("newsletter", smtp_config(site, port, per_connection=3))
    addresses = [f"r{n}@example.org" for n in range(10)]
    results, connection = send_all(target, addresses)
    assert all(r.outcome == "sent" for r in results)
    assert sink.copies() == {a: 1 for a in addresses}
    assert connection.connects == 4


def test_no_answer_after_the_data_is_unknown_not_sent_again(site, smtp_sink):
    sink, port = smtp_sink
    sink.stall = lambda command, address, attempt: (
        2.0 if (command, address) == ("DATA", "a@example.org") else 0
    )
    target = make_target("newsletter", smtp_config(site, port, timeout=1))
    results, connection = send_all(target, ["a@example.org", "b@example.org"])
    assert [r.outcome for r in results] == ["unknown", "sent"]
    assert sink.copies() == {"a@example.org": 1, "b@example.org": 1}
    assert connection.connects == 2


def test_unreachable_server_is_a_clear_error(site):
    from .conftest import free_port

    target = make_target("newsletter", smtp_config(site, free_port()))
    with pytest.raises(DeliveryError, match=r"targets.newsletter: cannot connect to 127.0.0.1:\d+"):
        send_all(target, ["a@example.org"])


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_sink(tls):
    context, _ = tls
    sink = SmtpSink()
    options = {
        "tls_context": context,
        "require_starttls": True,
        "auth_required": True,
        "authenticator": _authenticator,
    }
    with running_sink(sink, **options) as controller:
        yield sink, controller.port


def test_starttls_and_auth_with_a_private_ca(site, starttls_sink, tls, monkeypatch):
    sink, port = starttls_sink
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    options = {
        "security": "starttls",
        "username": USER,
        "password": "${SMTP_PASSWORD}",
        "ca_file": str(tls[1]),
    }
    target = make_target("newsletter", smtp_config(site, port, **options))
    results, _ = send_all(target, ["a@example.org"])
    assert [r.outcome for r in results] == ["sent"]
    assert sink.copies() == {"a@example.org": 1}


def test_tls_is_verified_by_default(site, starttls_sink):
    _, port = starttls_sink
    target = make_target(
        "newsletter", smtp_config(site, port, security="starttls", username=USER, password="x")
    )
    with pytest.raises(DeliveryError) as caught:
        send_all(target, ["a@example.org"])
    assert str(caught.value) == (
        f"targets.newsletter: the TLS certificate of 127.0.0.1:{port} is not trusted "
        "(unable to get local issuer certificate; expected one the system trusts, "
        "or targets.newsletter.ca_file naming its CA)"
    )


def test_verify_tls_false_is_an_explicit_opt_out(site, starttls_sink):
    sink, port = starttls_sink
    options = {"security": "starttls", "username": USER, "password": PASSWORD, "verify_tls": False}
    target = make_target("newsletter", smtp_config(site, port, **options))
    results, _ = send_all(target, ["a@example.org"])
    assert [r.outcome for r in results] == ["sent"] and sink.copies() == {"a@example.org": 1}


def test_a_wrong_password_is_one_line_without_the_secret(site, starttls_sink, tls):
    _, port = starttls_sink
    options = {"security": "starttls", "username": USER, "password": "wrong-secret", "ca_file": str(tls[1])}
    target = make_target("newsletter", smtp_config(site, port, **options))
    with pytest.raises(DeliveryError) as caught:
        send_all(target, ["a@example.org"])
    assert "535" in str(caught.value) and "wrong-secret" not in str(caught.value)


def test_refuses_to_send_without_tls_when_starttls_is_required(site, starttls_sink):
    _, port = starttls_sink
    target = make_target("newsletter", smtp_config(site, port, security="none"))
    results, _ = send_all(target, ["a@example.org"])
    assert results[0].outcome == "failed" and "530" in results[0].detail


def test_implicit_tls(site, tls):
    context, ca_file = tls
    sink = SmtpSink()
    with running_sink(sink, ssl_context=context) as controller:
        target = make_target(
            "newsletter", smtp_config(site, controller.port, security="ssl", ca_file=str(ca_file))
        )
        results, _ = send_all(target, ["a@example.org"])
    assert results[0].outcome == "sent" and sink.copies() == {"a@example.org": 1}


def test_a_missing_ca_file_is_a_clear_error(site, smtp_sink, tmp_path):
    _, port = smtp_sink
    target = make_target(
        "newsletter", smtp_config(site, port, security="starttls", ca_file=str(tmp_path / "no.pem"))
    )
    with pytest.raises(DeliveryError, match=r"targets.newsletter.ca_file: cannot load"):
        send_all(target, ["a@example.org"])


def test_international_addresses(site, smtp_sink):
    sink, port = smtp_sink
    target = make_target("newsletter", smtp_config(site, port))
    results, _ = send_all(target, ["anna@bücher.example", "zoë@example.org", "b@example.org"])
    assert [r.outcome for r in results] == ["sent", "failed", "sent"]
    assert sink.copies() == {"anna@xn--bcher-kva.example": 1, "b@example.org": 1}


def test_an_internationalised_domain_goes_out_in_its_ascii_form(site, smtp_sink):
    """An IDN address passes the list check, so it must also be deliverable: envelope and To:
    header carry the punycode domain, which every relay takes."""
    sink, port = smtp_sink
    site.article("a.md", "---\ntitle: T\npublish_date: '2024-01-01'\ncta: Go\ndescription: D\n---\nB.\n")
    site.data["channels"] = {"letters": {"kind": "email", "mode": "single", "targets": ["newsletter"]}}
    site.data["targets"] = {"newsletter": loopback_smtp(port, ["Leser@Bücher.example", "plain@example.org"])}
    site.write_config()
    outcome = send(site.config(), select="all")
    assert outcome.ok, outcome.reports
    # The envelope carries the ledger's reader key (local part folded); the header the list's spelling.
    assert sink.copies() == {"leser@xn--bcher-kva.example": 1, "plain@example.org": 1}
    body = next(content for rcpt, content in sink.received if rcpt.startswith("leser"))
    assert b"To: Leser@xn--bcher-kva.example" in body


def digest_site(site, port: int, **options):
    """Three articles, the weekly digest to one reader through an smtp target on the sink."""
    write_articles(site)
    options = {"timeout": 5, "retry_delay": 0.01, **options}
    site.data["targets"]["newsletter"] = loopback_smtp(port, ["reader@example.org"], **options)
    site.data["channels"]["weekly"]["targets"] = ["newsletter"]
    site.write_config()
    return site.config()


def headers_received(sink) -> list[EmailMessage]:
    return [message_from_bytes(raw, policy=policy.default) for _, raw in sink.received]


def test_list_id_feedback_id_and_ehlo_name_as_the_server_sees_them(site, smtp_sink):
    sink, port = smtp_sink
    config = digest_site(site, port)
    assert send(config, select="all", now=SEND_NOW).ok
    [received] = headers_received(sink)
    assert received["List-Id"] == "Test Weekly weekly <weekly.example.com>"
    assert received["Feedback-ID"] == "2026-11-23:weekly:syndicate"
    assert "Auto-Submitted" not in received  # a newsletter is not an automatic reply (RFC 3834)
    assert sink.ehlo_names == ["example.com"]  # the sender's domain, not [127.0.0.1]

    sink.received.clear()
    site.data["site"]["return_path"] = "bounces@mail.example.net"
    site.data["channels"]["weekly"]["list_id"] = "<Letters.Example.ORG>"
    site.data["targets"]["newsletter"]["ehlo_name"] = "mta1.example.net."
    assert send(site.config(), select="all", now=SEND_NOW, resend=True).ok
    [received] = headers_received(sink)
    assert received["List-Id"] == "Test Weekly weekly <letters.example.org>"
    assert sink.ehlo_names[-1] == "mta1.example.net"


def test_without_ehlo_name_the_envelope_senders_domain_is_given(site, smtp_sink):
    sink, port = smtp_sink
    site.data["site"]["return_path"] = "bounces@mail.example.net"
    config = digest_site(site, port)
    assert send(config, select="all", now=SEND_NOW).ok
    assert sink.ehlo_names == ["mail.example.net"]


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("ehlo_name", "localhost", "is not a fully qualified host name"),
        ("ehlo_name", "mx.example.com\r\nMAIL FROM:<x@y>", "is not a fully qualified host name"),
        ("ehlo_name", "[127.0.0.1]", "is not a fully qualified host name"),
    ],
)
def test_a_bad_ehlo_name_is_a_config_error(site, field, value, problem):
    site.data["targets"]["newsletter"] = loopback_smtp(2525, ["a@example.org"], **{field: value})
    with pytest.raises(ConfigError) as raised:
        site.config()
    assert f"targets.newsletter.{field}" in str(raised.value) and problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_deliberate_resend_gets_a_new_message_id_and_a_retry_keeps_it(site, smtp_sink):
    """`--resend` of a sent message: a new Message-ID each run (a provider would drop a copy with
    the first one's as a duplicate). A message in doubt sent again (`schedule.unknown: resend`)
    keeps its own: the server may hold the first copy, and a duplicate should be dropped."""
    sink, port = smtp_sink
    site.data["schedule"] = {"unknown": "resend"}
    config = digest_site(site, port, timeout=1)
    # The first copy is kept but never answered: `unknown`, then sent again by the next run.
    sink.stall = lambda command, address, attempt: 2.0 if (command, attempt) == ("DATA", 1) else 0
    first = send(config, select="all", now=SEND_NOW)
    assert sum(report.unknown for _, report in first.reports) == 1
    sink.stall = None
    again = send(config, select="all", now=SEND_NOW)
    assert again.totals()["newsletter"]["sent"] == 1
    ids = [m["Message-ID"] for m in headers_received(sink)]
    assert len(ids) == 2 and ids[0] == ids[1]  # the copy in doubt and its retry: one Message-ID

    assert send(config, select="all", now=SEND_NOW).totals()["newsletter"]["skipped"] == 1
    for _ in range(2):
        assert send(config, select="all", now=SEND_NOW, resend=True).totals()["newsletter"]["sent"] == 1
    ids = [m["Message-ID"] for m in headers_received(sink)]
    assert len(ids) == 4 and len(set(ids[1:])) == 3  # each deliberate resend: a new one
    assert all(re.fullmatch(r"<[0-9a-f]{32}@example\.com>", i) for i in ids)
